"""Features of (history, candidate) pairs, computed the same way in training and at serving.

``compute_features`` is the only place features are computed. Training calls it once per
event, with the user's earlier events as the history, and ``predict`` calls it once per
request for all candidates. A NaN entry means the feature is undefined for that pair (no
usable history, a candidate vector of zeros, a video not in the statistics table), and the
model replaces it with the training mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from operators import ThresholdRule, normalise, normalise_rows, preference_weights
from ranking.long_view.history import WatchHistory
from ranking.long_view.video_stats import CandidateStatistics

__all__ = ["DEFAULT_FEATURES", "FEATURE_NAMES", "FeatureContext", "compute_features"]

FEATURE_NAMES: tuple[str, ...] = (
    # Similarity of the candidate to the history, cosine of unit vectors.
    "similarity_interest",  # to the DreamUMM vector: preference-weighted sum of the history vectors
    "similarity_mean",  # to the unweighted mean of the history vectors
    "similarity_max",  # max over the history items
    "similarity_last",  # to the most recent history item with a non-zero vector
    "similarity_long_viewed_max",  # max over the long-viewed history items, NaN when there is none
    # The user's engagement.
    "history_long_view_share",  # share of history items watched at least to the threshold
    "history_length_log",  # log1p(number of history items), 0 for an empty history
    "history_play_time_log",  # mean of log1p(play time in s)
    # The candidate.
    "duration_log",  # log1p(duration in s), NaN when unknown
    "is_image",  # 1 for an image post (duration 0), NaN when unknown
    "unknown_video",  # 1 when the video is not in the statistics table
    "popularity_log",  # log1p(exposures in the statistics window)
    "video_long_view_rate",  # (long views + strength * prior) / (exposures + strength)
    # Interaction, not in the default model because it did not raise the validation AUC.
    "similarity_interest_x_share",  # similarity_interest * history_long_view_share
)
"""Every feature ``compute_features`` returns, in column order."""

DEFAULT_FEATURES: tuple[str, ...] = FEATURE_NAMES[:-1]
"""Features of the default model: all but the interaction."""

_MS_PER_S = 1000.0
_COLUMN = {name: position for position, name in enumerate(FEATURE_NAMES)}


@dataclass(frozen=True)
class FeatureContext:
    """Settings that the features depend on, stored with the model."""

    alpha_per_s: float
    """Sensitivity of the DreamUMM preference weight, in 1/s. The history vector is the method's plain
    weighted sum, without the job's optional recency decay."""
    threshold_rule: ThresholdRule
    """Long-view threshold t(duration) for the preference weight and the long-view share."""
    history_limit: int
    """Only this many most recent history items are used."""
    prior_long_view_rate: float
    """Long-view rate that a video without exposures gets."""
    prior_strength: float
    """Pseudo-exposures at the prior rate added to each video's counts."""


def compute_features(
    history: WatchHistory,
    candidate_vectors: NDArray[np.float32],
    candidates: CandidateStatistics,
    context: FeatureContext,
) -> NDArray[np.float64]:
    """Return the (m, len(FEATURE_NAMES)) raw features of m candidates for one history.

    The caller validates that ``candidate_vectors`` is (m, d) with the history's d. History
    items beyond ``context.history_limit`` most recent ones are ignored.
    """
    count = candidate_vectors.shape[0]
    features = np.full((count, len(FEATURE_NAMES)), np.nan, dtype=np.float64)
    recent = history.most_recent(context.history_limit)

    _set_candidate_features(features, candidates, context)
    features[:, _COLUMN["history_length_log"]] = np.log1p(len(recent))
    if len(recent) > 0:
        _set_history_features(features, recent, candidate_vectors, context)

    features[:, _COLUMN["similarity_interest_x_share"]] = (
        features[:, _COLUMN["similarity_interest"]] * features[:, _COLUMN["history_long_view_share"]]
    )
    return features


def _set_candidate_features(
    features: NDArray[np.float64], candidates: CandidateStatistics, context: FeatureContext
) -> None:
    duration_ms = candidates.duration_ms
    known_duration = ~np.isnan(duration_ms)
    features[:, _COLUMN["duration_log"]] = np.log1p(np.where(known_duration, duration_ms, 0.0) / _MS_PER_S)
    features[~known_duration, _COLUMN["duration_log"]] = np.nan
    features[:, _COLUMN["is_image"]] = np.where(known_duration, (duration_ms == 0.0).astype(np.float64), np.nan)
    features[:, _COLUMN["unknown_video"]] = (~candidates.known).astype(np.float64)
    features[:, _COLUMN["popularity_log"]] = np.log1p(candidates.exposures)
    features[:, _COLUMN["video_long_view_rate"]] = (
        candidates.long_views + context.prior_strength * context.prior_long_view_rate
    ) / (candidates.exposures + context.prior_strength)


def _set_history_features(
    features: NDArray[np.float64],
    history: WatchHistory,
    candidate_vectors: NDArray[np.float32],
    context: FeatureContext,
) -> None:
    """Fill the history-dependent columns for a non-empty history."""
    thresholds_ms = context.threshold_rule.thresholds_ms(history.duration_ms)
    long_viewed = history.play_time_ms >= thresholds_ms
    features[:, _COLUMN["history_long_view_share"]] = float(long_viewed.mean())
    features[:, _COLUMN["history_play_time_log"]] = float(np.log1p(history.play_time_ms / _MS_PER_S).mean())

    history_units, history_valid = normalise_rows(history.vectors, dtype=np.float64)
    if not history_valid.any():
        return
    candidate_units, candidate_valid = normalise_rows(candidate_vectors, dtype=np.float64)
    # Rows of zeros stay zero in both unit matrices, so they are masked below.
    similarities = candidate_units @ history_units.T
    similarities[:, ~history_valid] = np.nan
    similarities[~candidate_valid, :] = np.nan

    valid_similarities = similarities[:, history_valid]
    features[:, _COLUMN["similarity_max"]] = valid_similarities.max(axis=1)
    features[:, _COLUMN["similarity_last"]] = valid_similarities[:, -1]
    usable_long_views = long_viewed & history_valid
    if usable_long_views.any():
        features[:, _COLUMN["similarity_long_viewed_max"]] = similarities[:, usable_long_views].max(axis=1)

    weights = preference_weights(history.play_time_ms, thresholds_ms, context.alpha_per_s)
    features[:, _COLUMN["similarity_interest"]] = _similarity_to(weights @ history_units, candidate_units,
                                                                 candidate_valid)
    features[:, _COLUMN["similarity_mean"]] = _similarity_to(history_units[history_valid].mean(axis=0),
                                                             candidate_units, candidate_valid)


def _similarity_to(
    direction: NDArray[np.float64], candidate_units: NDArray[np.float64], candidate_valid: NDArray[np.bool_]
) -> NDArray[np.float64]:
    """Cosine of each candidate with ``direction``, or NaN when either has no direction."""
    unit = normalise(direction, dtype=np.float64)
    if unit is None:
        return np.full(candidate_units.shape[0], np.nan)
    return np.where(candidate_valid, candidate_units @ unit, np.nan)
