"""The events an evaluation replays, prepared the way the feature job treats them.

The job dead-letters events with an implausible watch time or a video without an embedding,
and sums an event with the same user, video and event time as an earlier one only once. The
evaluation leaves out the same events and counts each reason, so every input row is accounted for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from embeddings import EVENT_COLUMNS
from embeddings.video_table import check_columns
from operators.interest import normalise_rows

__all__ = ["EventAccounting", "EvaluationEvents", "prepare_events"]

RANDOM_EXPOSURE_COLUMN = "is_rand"
"""KuaiRand's flag of a video inserted at random into the feed, not chosen by a recommender."""


@dataclass(frozen=True)
class EventAccounting:
    """Counts of the input rows by outcome: used, or left out for one reason."""

    read: int
    duplicates: int
    """Rows with the user, video and event time of an earlier row, which the job sums once."""
    implausible_watch_time: int
    """Rows whose watch time exceeds preference.max_watch_time_ms, which the job dead-letters."""
    without_embedding: int
    """Rows whose video has no embedding, which the job dead-letters as missing_embedding."""
    used: int

    @property
    def balanced(self) -> bool:
        """Whether the used and left-out rows add up to the rows read."""
        return self.read == self.duplicates + self.implausible_watch_time + self.without_embedding + self.used


@dataclass(frozen=True)
class EvaluationEvents:
    """Usable events in event-time order, with each video's unit embedding.

    Events at the same time keep the order of user id and then input row. ``users`` numbers the
    users 0 to ``user_count - 1`` in ascending order of ``user_ids``.
    """

    user_ids: NDArray[np.int64]
    users: NDArray[np.intp]
    video_ids: NDArray[np.int64]
    time_ms: NDArray[np.int64]
    play_time_ms: NDArray[np.float64]
    duration_ms: NDArray[np.float64]
    """Video length as logged with the event: 0 for image posts, which the threshold rules treat as missing."""
    labels: NDArray[np.int8]
    """The log's ``long_view`` label, 0 or 1."""
    randomly_exposed: NDArray[np.bool_]
    """Events whose video was shown at random; only these are candidates of the ranking metrics."""
    vectors: NDArray[np.float64]
    """(n, d) unit embedding of each event's video."""
    user_count: int
    accounting: EventAccounting
    has_random_exposure_column: bool
    """False when the file has no ``is_rand`` column, so every event counts as randomly exposed."""

    def __len__(self) -> int:
        return len(self.time_ms)

    @property
    def dimension(self) -> int:
        """Embedding dimension."""
        return int(self.vectors.shape[1])


def prepare_events(
    events: pd.DataFrame,
    embeddings: Mapping[int, ArrayLike],
    max_watch_time_ms: float,
) -> EvaluationEvents:
    """Sort the events by time, leave out what the job would not sum, and attach unit embeddings.

    ``events`` needs the columns of ``embeddings.EVENT_COLUMNS`` as ``load_events`` returns them;
    ``is_rand`` is optional. ``embeddings`` maps integer video ids to vectors of one dimension.

    Raises:
        ValueError: if a column is missing, ``long_view`` or ``is_rand`` is not 0 or 1, an embedding
            has no direction, or no event is left.
    """
    check_columns(events, EVENT_COLUMNS, "events")
    read = len(events)
    for column in ("long_view", RANDOM_EXPOSURE_COLUMN):
        if column in events.columns and not events[column].isin((0, 1)).all():
            bad = events.loc[~events[column].isin((0, 1)), column].iloc[0]
            raise ValueError(f"events column {column!r} must be 0 or 1, got {bad!r}")

    ordered = events.assign(_input_row=np.arange(read)).sort_values(
        ["time_ms", "user_id", "_input_row"], kind="stable")
    # The job dead-letters invalid events before its sum, which then skips a repeat of an event it
    # already summed. So only valid events with an embedding can be, or have, duplicates.
    implausible = ordered["play_time_ms"].to_numpy(dtype=np.float64) > max_watch_time_ms
    known = ordered["video_id"].map(lambda video_id: int(video_id) in embeddings).to_numpy(dtype=bool)
    without_embedding = ~implausible & ~known
    summable = ~implausible & known
    duplicate = np.zeros(read, dtype=bool)
    duplicate[summable] = ordered.loc[summable].duplicated(["user_id", "video_id", "time_ms"], keep="first").to_numpy()
    used_rows = ordered.loc[summable & ~duplicate]
    if len(used_rows) == 0:
        raise ValueError(
            f"none of the {read} events is usable: {int(duplicate.sum())} duplicates, "
            f"{int(implausible.sum())} with an implausible watch time, {int(without_embedding.sum())} "
            "without a video embedding; check that the video table covers the events' videos")

    video_ids = used_rows["video_id"].to_numpy(dtype=np.int64)
    vectors = _unit_vectors(video_ids, embeddings)
    user_ids = used_rows["user_id"].to_numpy(dtype=np.int64)
    distinct_users, users = np.unique(user_ids, return_inverse=True)
    has_flag = RANDOM_EXPOSURE_COLUMN in used_rows.columns
    randomly_exposed = (used_rows[RANDOM_EXPOSURE_COLUMN].to_numpy() == 1 if has_flag
                        else np.ones(len(used_rows), dtype=bool))
    return EvaluationEvents(
        user_ids=user_ids,
        users=users.astype(np.intp),
        video_ids=video_ids,
        time_ms=used_rows["time_ms"].to_numpy(dtype=np.int64),
        play_time_ms=used_rows["play_time_ms"].to_numpy(dtype=np.float64),
        duration_ms=used_rows["duration_ms"].to_numpy(dtype=np.float64),
        labels=used_rows["long_view"].to_numpy(dtype=np.int8),
        randomly_exposed=np.asarray(randomly_exposed, dtype=bool),
        vectors=vectors,
        user_count=len(distinct_users),
        accounting=EventAccounting(
            read=read,
            duplicates=int(duplicate.sum()),
            implausible_watch_time=int(implausible.sum()),
            without_embedding=int(without_embedding.sum()),
            used=len(used_rows),
        ),
        has_random_exposure_column=has_flag,
    )


def _unit_vectors(video_ids: NDArray[np.int64], embeddings: Mapping[int, ArrayLike]) -> NDArray[np.float64]:
    distinct, inverse = np.unique(video_ids, return_inverse=True)
    matrix = np.vstack([np.asarray(embeddings[int(video_id)], dtype=np.float64) for video_id in distinct])
    units, valid = normalise_rows(matrix, dtype=np.float64)
    if not valid.all():
        bad = int(distinct[np.flatnonzero(~valid)[0]])
        raise ValueError(f"embedding of video {bad} is all zeros or not finite; every embedding needs a direction")
    return units[inverse]
