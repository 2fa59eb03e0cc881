"""Training examples from an event log: each event is a candidate, scored against the user's past.

For an event at time t, the history is the same user's events at times strictly before t, the
most recent ``history_limit`` of them, and only those whose video has an embedding. The
candidate is the event's video and the label its ``long_view``. Features come from
``features.compute_features``, the function ``predict`` calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from embeddings.sample_data import EVENT_COLUMNS
from embeddings.video_table import check_columns
from ranking.long_view.features import FEATURE_NAMES, FeatureContext, compute_features
from ranking.long_view.history import WatchHistory
from ranking.long_view.video_stats import CandidateStatistics

__all__ = ["EventTable", "example_features", "histories_of_events"]


@dataclass(frozen=True)
class EventTable:
    """Events whose video has an embedding, sorted by event time, with their vectors.

    Ties in time are ordered by user id and then by the input order.
    """

    user_ids: NDArray[np.int64]
    video_ids: tuple[str, ...]
    time_ms: NDArray[np.int64]
    play_time_ms: NDArray[np.float64]
    duration_ms: NDArray[np.float64]
    """Duration as logged with the event: 0 for image posts."""
    labels: NDArray[np.int64]
    vectors: NDArray[np.float32]
    """(n, d) embedding of each event's video."""
    dropped_without_embedding: int
    """Input events left out because their video has no embedding."""

    @classmethod
    def from_events(cls, events: pd.DataFrame, embeddings: Mapping[int, NDArray[np.float32]]) -> EventTable:
        """Sort the events by time and attach each video's embedding.

        ``events`` needs the columns of ``embeddings.EVENT_COLUMNS`` (as ``load_events`` returns
        them) and ``embeddings`` maps integer video ids to vectors of one length.

        Raises:
            ValueError: if a column is missing, ``long_view`` is not 0 or 1, or no event has an
                embedding.
        """
        check_columns(events, EVENT_COLUMNS, "events")
        labels = events["long_view"].to_numpy()
        if not np.isin(labels, (0, 1)).all():
            bad = labels[~np.isin(labels, (0, 1))][0]
            raise ValueError(f"events column 'long_view' must be 0 or 1, got {bad!r}")
        has_embedding = events["video_id"].map(lambda video_id: int(video_id) in embeddings).to_numpy(dtype=bool)
        kept = events.loc[has_embedding]
        if len(kept) == 0:
            raise ValueError(f"none of the {len(events)} events has a video with an embedding")
        ordered = kept.assign(_input_order=np.arange(len(kept))).sort_values(
            ["time_ms", "user_id", "_input_order"], kind="stable"
        )
        video_ids = ordered["video_id"].to_numpy(dtype=np.int64)
        vectors = np.stack([np.asarray(embeddings[int(video_id)], dtype=np.float32) for video_id in video_ids])
        return cls(
            user_ids=ordered["user_id"].to_numpy(dtype=np.int64),
            video_ids=tuple(str(video_id) for video_id in video_ids),
            time_ms=ordered["time_ms"].to_numpy(dtype=np.int64),
            play_time_ms=ordered["play_time_ms"].to_numpy(dtype=np.float64),
            duration_ms=ordered["duration_ms"].to_numpy(dtype=np.float64),
            labels=ordered["long_view"].to_numpy(dtype=np.int64),
            vectors=vectors,
            dropped_without_embedding=int((~has_embedding).sum()),
        )

    def __len__(self) -> int:
        return len(self.video_ids)


def histories_of_events(table: EventTable, history_limit: int) -> list[WatchHistory]:
    """Return, for each event of the table, the user's history just before it.

    The history contains the user's events at strictly earlier times, at most ``history_limit``
    of them, oldest first. Its arrays are views into the table.
    """
    if history_limit < 1:
        raise ValueError(f"history_limit must be >= 1, got {history_limit}")
    histories: list[WatchHistory | None] = [None] * len(table)
    order = np.argsort(table.user_ids, kind="stable")  # events of each user stay in time order
    boundaries = np.flatnonzero(np.diff(table.user_ids[order])) + 1
    for rows in np.split(order, boundaries):
        user_times = table.time_ms[rows]
        earlier_counts = np.searchsorted(user_times, user_times, side="left")
        for row, end in zip(rows, earlier_counts):
            history_rows = rows[max(0, end - history_limit):end]
            histories[row] = WatchHistory(
                video_ids=tuple(table.video_ids[position] for position in history_rows),
                vectors=table.vectors[history_rows],
                play_time_ms=table.play_time_ms[history_rows],
                duration_ms=table.duration_ms[history_rows],
                time_ms=table.time_ms[history_rows],
            )
    return [history for history in histories if history is not None]


def example_features(
    table: EventTable,
    histories: list[WatchHistory],
    candidates: CandidateStatistics,
    context: FeatureContext,
) -> NDArray[np.float64]:
    """Return the (n, len(FEATURE_NAMES)) features of every event, one ``compute_features`` call each.

    ``candidates`` contains the statistics of each event's video, aligned with the table.
    """
    if len(histories) != len(table) or candidates.exposures.shape != (len(table),):
        raise ValueError(
            f"expected {len(table)} histories and candidate statistics, got {len(histories)} and "
            f"{candidates.exposures.shape[0]}"
        )
    features = np.empty((len(table), len(FEATURE_NAMES)), dtype=np.float64)
    for row, history in enumerate(histories):
        one = slice(row, row + 1)
        candidate = CandidateStatistics(
            duration_ms=candidates.duration_ms[one],
            exposures=candidates.exposures[one],
            long_views=candidates.long_views[one],
            known=candidates.known[one],
        )
        features[row] = compute_features(history, table.vectors[one], candidate, context)[0]
    return features
