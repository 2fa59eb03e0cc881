"""Tests for compute_features in ranking.long_view.features, on hand-computed 2-d examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from operators import FixedThreshold
from ranking.long_view import WatchHistory
from ranking.long_view.features import FEATURE_NAMES, FeatureContext, compute_features
from ranking.long_view.video_stats import CandidateStatistics

CONTEXT = FeatureContext(
    alpha_per_s=1.0,
    threshold_rule=FixedThreshold(10_000.0),
    history_limit=10,
    prior_long_view_rate=0.1,
    prior_strength=10.0,
)


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def two_item_history() -> WatchHistory:
    """Return item "a" along x, watched 20 s (a long view), then item "b" along y, watched 0 s."""
    return WatchHistory(
        video_ids=("a", "b"),
        vectors=np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32),
        play_time_ms=np.array([20_000.0, 0.0]),
        duration_ms=np.array([30_000.0, math.nan]),
        time_ms=np.array([1, 2], dtype=np.int64),
    )


def two_candidates() -> tuple[np.ndarray, CandidateStatistics]:
    """Return candidate 1 along x, a 5 s video with 1 long view in 3 exposures, and an unknown
    candidate 2 along (3, 4)."""
    vectors = np.array([[1.0, 0.0], [3.0, 4.0]], dtype=np.float32)
    statistics = CandidateStatistics(
        duration_ms=np.array([5_000.0, math.nan]),
        exposures=np.array([3.0, 0.0]),
        long_views=np.array([1.0, 0.0]),
        known=np.array([True, False]),
    )
    return vectors, statistics


def as_dict(row: np.ndarray) -> dict[str, float]:
    return dict(zip(FEATURE_NAMES, row.tolist()))


def test_features_hand_computed_first_candidate() -> None:
    vectors, statistics = two_candidates()
    row = as_dict(compute_features(two_item_history(), vectors, statistics, CONTEXT)[0])

    # Preference weights: sigmoid(1/s * (20 s - 10 s)) for "a" and sigmoid(-10) for "b".
    weight_a, weight_b = sigmoid(10.0), sigmoid(-10.0)
    assert row["similarity_interest"] == pytest.approx(weight_a / math.hypot(weight_a, weight_b), rel=1e-12)
    assert row["similarity_mean"] == pytest.approx(1.0 / math.sqrt(2.0), rel=1e-12)
    assert row["similarity_max"] == pytest.approx(1.0, rel=1e-12)
    assert row["similarity_last"] == pytest.approx(0.0, abs=1e-12)
    assert row["similarity_long_viewed_max"] == pytest.approx(1.0, rel=1e-12)
    assert row["history_long_view_share"] == 0.5
    assert row["history_length_log"] == pytest.approx(math.log(3.0), rel=1e-12)
    assert row["history_play_time_log"] == pytest.approx(math.log(21.0) / 2.0, rel=1e-12)
    assert row["duration_log"] == pytest.approx(math.log(6.0), rel=1e-12)
    assert row["is_image"] == 0.0
    assert row["unknown_video"] == 0.0
    assert row["popularity_log"] == pytest.approx(math.log(4.0), rel=1e-12)
    # (1 long view + 10 * 0.1) / (3 exposures + 10)
    assert row["video_long_view_rate"] == pytest.approx(2.0 / 13.0, rel=1e-12)
    assert row["similarity_interest_x_share"] == pytest.approx(row["similarity_interest"] * 0.5, rel=1e-12)


def test_features_hand_computed_unknown_candidate() -> None:
    vectors, statistics = two_candidates()
    row = as_dict(compute_features(two_item_history(), vectors, statistics, CONTEXT)[1])

    # The candidate (3, 4) has unit vector (0.6, 0.8).
    weight_a, weight_b = sigmoid(10.0), sigmoid(-10.0)
    expected_interest = (0.6 * weight_a + 0.8 * weight_b) / math.hypot(weight_a, weight_b)
    assert row["similarity_interest"] == pytest.approx(expected_interest, rel=1e-12)
    assert row["similarity_mean"] == pytest.approx(1.4 / math.sqrt(2.0), rel=1e-12)
    assert row["similarity_max"] == pytest.approx(0.8, rel=1e-12)
    assert row["similarity_last"] == pytest.approx(0.8, rel=1e-12)
    assert row["similarity_long_viewed_max"] == pytest.approx(0.6, rel=1e-12)
    assert math.isnan(row["duration_log"])
    assert math.isnan(row["is_image"])
    assert row["unknown_video"] == 1.0
    assert row["popularity_log"] == 0.0
    assert row["video_long_view_rate"] == pytest.approx(0.1, rel=1e-12)


def test_features_image_post() -> None:
    vectors = np.array([[1.0, 0.0]], dtype=np.float32)
    statistics = CandidateStatistics(duration_ms=np.array([0.0]), exposures=np.array([0.0]),
                                     long_views=np.array([0.0]), known=np.array([True]))
    row = as_dict(compute_features(two_item_history(), vectors, statistics, CONTEXT)[0])

    assert row["is_image"] == 1.0
    assert row["duration_log"] == 0.0


def test_features_empty_history_keeps_candidate_features() -> None:
    vectors, statistics = two_candidates()
    with_history = compute_features(two_item_history(), vectors, statistics, CONTEXT)
    without = compute_features(WatchHistory.empty(2), vectors, statistics, CONTEXT)

    candidate_only = ["duration_log", "is_image", "unknown_video", "popularity_log", "video_long_view_rate"]
    for name in candidate_only:
        column = FEATURE_NAMES.index(name)
        np.testing.assert_array_equal(without[:, column], with_history[:, column], err_msg=name)
    assert (without[:, FEATURE_NAMES.index("history_length_log")] == 0.0).all()
    history_dependent = [name for name in FEATURE_NAMES if name not in candidate_only and name != "history_length_log"]
    for name in history_dependent:
        assert np.isnan(without[:, FEATURE_NAMES.index(name)]).all(), name


def test_features_no_long_view_in_history() -> None:
    item = WatchHistory(video_ids=("a",), vectors=np.array([[1.0, 0.0]], dtype=np.float32),
                        play_time_ms=np.array([0.0]), duration_ms=np.array([30_000.0]))
    vectors, statistics = two_candidates()
    row = as_dict(compute_features(item, vectors, statistics, CONTEXT)[0])

    assert math.isnan(row["similarity_long_viewed_max"])
    assert row["history_long_view_share"] == 0.0
    assert row["similarity_max"] == pytest.approx(1.0, rel=1e-12)


def test_features_zero_candidate_vector_has_no_similarity() -> None:
    vectors = np.zeros((1, 2), dtype=np.float32)
    statistics = CandidateStatistics(duration_ms=np.array([5_000.0]), exposures=np.array([0.0]),
                                     long_views=np.array([0.0]), known=np.array([True]))
    row = as_dict(compute_features(two_item_history(), vectors, statistics, CONTEXT)[0])

    for name in ("similarity_interest", "similarity_mean", "similarity_max", "similarity_last",
                 "similarity_long_viewed_max"):
        assert math.isnan(row[name]), name
    assert row["history_long_view_share"] == 0.5


def test_features_zero_history_vector_is_skipped() -> None:
    item = WatchHistory(
        video_ids=("a", "zero"),
        vectors=np.array([[1.0, 0.0], [0.0, 0.0]], dtype=np.float32),
        play_time_ms=np.array([20_000.0, 20_000.0]),
        duration_ms=np.array([30_000.0, 30_000.0]),
    )
    vectors, statistics = two_candidates()
    row = as_dict(compute_features(item, vectors, statistics, CONTEXT)[1])

    # The zero vector is skipped, so "last" is item "a" and the mean is along x.
    assert row["similarity_last"] == pytest.approx(0.6, rel=1e-12)
    assert row["similarity_mean"] == pytest.approx(0.6, rel=1e-12)
    assert row["history_length_log"] == pytest.approx(math.log(3.0), rel=1e-12)


def test_features_use_only_most_recent_items() -> None:
    context = FeatureContext(alpha_per_s=1.0, threshold_rule=FixedThreshold(10_000.0), history_limit=1,
                             prior_long_view_rate=0.1, prior_strength=10.0)
    vectors, statistics = two_candidates()
    full = compute_features(two_item_history(), vectors, statistics, context)
    last_only = compute_features(two_item_history().most_recent(1), vectors, statistics, context)

    np.testing.assert_array_equal(full, last_only)
    assert full[0, FEATURE_NAMES.index("history_length_log")] == pytest.approx(math.log(2.0), rel=1e-12)


def test_features_no_candidates() -> None:
    _, statistics = two_candidates()
    empty_statistics = CandidateStatistics(duration_ms=statistics.duration_ms[:0], exposures=statistics.exposures[:0],
                                           long_views=statistics.long_views[:0], known=statistics.known[:0])
    features = compute_features(two_item_history(), np.zeros((0, 2), dtype=np.float32), empty_statistics, CONTEXT)

    assert features.shape == (0, len(FEATURE_NAMES))
