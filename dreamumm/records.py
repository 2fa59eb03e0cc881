"""Conversion of the sample's tables into the pipeline's Kafka records."""

from __future__ import annotations

import time
from typing import Iterator, Mapping

import numpy as np
import pandas as pd

from schemas import VIDEO_EMBEDDING, WATCH_EVENT, AvroCodec

# Columns of the KuaiRand event log kept as free-form attributes of each event.
EVENT_ATTRIBUTE_COLUMNS = ("long_view", "tab", "is_click", "is_like")


def watch_event_records(events: pd.DataFrame, sort_by_time: bool = True) -> Iterator[tuple[bytes, bytes, int]]:
    """Yield (key, value, timestamp) WatchEvent records of a KuaiRand event table.

    The key is the user id, so that one user's events stay in one partition and in order. The
    record timestamp is the event time, as if each event had reached Kafka when it happened: the
    job's lateness rule compares the two.
    By default rows are sorted by ``time_ms`` first, because the KuaiRand log is sorted by user,
    not by time. With ``sort_by_time=False`` they keep the table's order, which is how a
    synthetic stream keeps its arrival disorder.
    """
    codec = AvroCodec.for_schema(WATCH_EVENT)
    ordered = events.sort_values(["time_ms", "user_id"], kind="stable") if sort_by_time else events
    attribute_columns = [column for column in EVENT_ATTRIBUTE_COLUMNS if column in ordered.columns]
    for row in ordered.itertuples(index=False):
        user_id = str(row.user_id)
        duration = row.duration_ms
        record = {
            "user_id": user_id,
            "video_id": str(row.video_id),
            "watch_time_ms": float(row.play_time_ms),
            "duration_ms": None if pd.isna(duration) else int(duration),
            "event_time_ms": int(row.time_ms),
            "event_id": f"kuairand-1k:{user_id}:{row.video_id}:{row.time_ms}",
            "attributes": {column: str(getattr(row, column)) for column in attribute_columns},
        }
        yield user_id.encode("utf-8"), codec.encode(record), int(row.time_ms)


def video_embedding_records(
    vectors: Mapping[int, np.ndarray], model_version: str, produced_time_ms: int | None = None,
    valid_from_ms: int | None = None,
) -> Iterator[tuple[bytes, bytes]]:
    """Yield (key, value) VideoEmbedding records, keyed by video id.

    ``valid_from_ms`` None makes each vector valid for every event time.
    """
    codec = AvroCodec.for_schema(VIDEO_EMBEDDING)
    produced = int(time.time() * 1000) if produced_time_ms is None else produced_time_ms
    for video_id in sorted(vectors):
        record = {
            "video_id": str(video_id),
            "vector": np.asarray(vectors[video_id], dtype=np.float32).tolist(),
            "model_version": model_version,
            "produced_time_ms": produced,
            "valid_from_ms": valid_from_ms,
        }
        yield str(video_id).encode("utf-8"), codec.encode(record)
