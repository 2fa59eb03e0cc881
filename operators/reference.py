"""Float64 batch reference of DreamUMM interest vectors, computed from an events table.

Tests compare the streaming state against this, and the demo summary reports it.
It applies the formula directly: weights from ``preference_weights``, each video
embedding L2-normalised in float64, and per user ``sum_j a_j x_j`` scaled to unit
length. It keeps nothing in float32.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from operators.interest import normalise
from operators.preference import preference_weights
from operators.threshold import DEFAULT_THRESHOLD_RULE, ThresholdRule

__all__ = ["REFERENCE_EVENT_COLUMNS", "ReferenceInterest", "reference_interests"]

REFERENCE_EVENT_COLUMNS = ("user_id", "video_id", "play_time_ms", "duration_ms", "time_ms")
"""Event columns that ``reference_interests`` reads."""


@dataclass(frozen=True)
class ReferenceInterest:
    """Reference interest of one user.

    ``event_count``, ``total_weight`` and ``last_event_time_ms`` cover only events
    whose video has an embedding. ``events_without_embedding`` counts the rest.
    ``vector`` is None when the user has no such event or the weighted sum has no
    direction (all weights 0).
    """

    vector: NDArray[np.float64] | None
    total_weight: float
    event_count: int
    last_event_time_ms: int | None
    events_without_embedding: int


def _unit_embedding_matrix(
    video_ids: NDArray[np.int64], embeddings: Mapping[int, ArrayLike]
) -> NDArray[np.float64]:
    """Stack the float64 unit embeddings of ``video_ids`` into an (n, d) matrix."""
    rows: list[NDArray[np.float64]] = []
    for video_id in video_ids:
        unit = normalise(embeddings[int(video_id)], dtype=np.float64)
        if unit is None:
            raise ValueError(
                f"embedding of video {int(video_id)} is all zeros or not finite; "
                "every embedding must have a direction"
            )
        if rows and unit.shape != rows[0].shape:
            raise ValueError(
                f"embedding of video {int(video_id)} has shape {unit.shape}, "
                f"but earlier embeddings have shape {rows[0].shape}"
            )
        rows.append(unit)
    return np.vstack(rows)


def reference_interests(
    events: pd.DataFrame,
    embeddings: Mapping[int, ArrayLike],
    alpha_per_s: float,
    threshold_rule: ThresholdRule = DEFAULT_THRESHOLD_RULE,
    half_life_ms: float | None = None,
) -> dict[int, ReferenceInterest]:
    """Compute every user's reference interest from an events table.

    With ``half_life_ms``, each weight is multiplied by ``2 ** (-(T - t_j) / half_life_ms)``,
    where T is the user's latest embedded event time, and ``total_weight`` sums the
    discounted weights.

    ``events`` needs the columns in ``REFERENCE_EVENT_COLUMNS``. A NaN or 0 in
    ``duration_ms`` means the video has no duration, and the threshold rule gives
    it its no-duration threshold. ``embeddings`` maps video id to vector. Events
    whose video is not in it are excluded and counted per user.

    Returns a mapping from user id to ``ReferenceInterest`` that contains every user
    in ``events``, including users without any embedded event.

    Raises:
        ValueError: if a column is missing, a value is invalid for the threshold
            rule or the preference weight, or an embedding has no direction.
    """
    missing = [column for column in REFERENCE_EVENT_COLUMNS if column not in events.columns]
    if missing:
        raise ValueError(
            f"events table is missing column(s) {missing}; it needs {list(REFERENCE_EVENT_COLUMNS)}"
        )

    durations = events["duration_ms"].to_numpy(dtype=np.float64, na_value=np.nan)
    thresholds = threshold_rule.thresholds_ms(durations)
    play_times = events["play_time_ms"].to_numpy(dtype=np.float64, na_value=np.nan)
    weights = preference_weights(play_times, thresholds, alpha_per_s)

    video_ids = events["video_id"].to_numpy(dtype=np.int64)
    event_times = events["time_ms"].to_numpy(dtype=np.int64)
    has_embedding = np.fromiter(
        (int(video_id) in embeddings for video_id in video_ids), dtype=bool, count=len(video_ids)
    )

    embedded_ids = np.unique(video_ids[has_embedding])
    matrix = (
        _unit_embedding_matrix(embedded_ids, embeddings) if len(embedded_ids) else np.empty((0, 0))
    )
    row_of_event = np.searchsorted(embedded_ids, video_ids)

    results: dict[int, ReferenceInterest] = {}
    for user_id, positions in events.groupby("user_id", sort=True).indices.items():
        embedded = positions[has_embedding[positions]]
        skipped = len(positions) - len(embedded)
        if len(embedded) == 0:
            results[int(user_id)] = ReferenceInterest(None, 0.0, 0, None, skipped)
            continue

        user_weights = weights[embedded]
        if half_life_ms is not None:
            ages = (event_times[embedded].max() - event_times[embedded]).astype(np.float64)
            user_weights = user_weights * np.exp2(-ages / half_life_ms)
        vector_sum = user_weights @ matrix[row_of_event[embedded]]
        total_weight = math.fsum(user_weights.tolist())
        vector = normalise(vector_sum, dtype=np.float64) if total_weight > 0.0 else None
        results[int(user_id)] = ReferenceInterest(
            vector=vector,
            total_weight=total_weight,
            event_count=len(embedded),
            last_event_time_ms=int(event_times[embedded].max()),
            events_without_embedding=skipped,
        )
    return results
