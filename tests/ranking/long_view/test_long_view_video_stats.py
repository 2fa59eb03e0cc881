"""Tests for the per-video statistics in ranking.long_view.video_stats."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ranking.long_view.video_stats import VideoStatistics, exposures_before

VIDEOS = pd.DataFrame({"video_id": [1, 2, 3], "video_duration": [30_000.0, math.nan, 8_000.0]})


def test_exposures_before_counts_strictly_earlier() -> None:
    video_ids = np.array([7, 7, 8, 7, 7])
    times_ms = np.array([10, 20, 20, 20, 30])
    labels = np.array([1, 0, 1, 1, 1])

    exposures, long_views = exposures_before(video_ids, times_ms, labels)

    # Video 7 has nothing before time 10. Both events at 20 count only the one at 10, and the
    # one at 30 counts all three.
    assert exposures.tolist() == [0.0, 1.0, 0.0, 1.0, 3.0]
    assert long_views.tolist() == [0.0, 1.0, 0.0, 1.0, 2.0]


def test_exposures_before_ignores_input_order() -> None:
    video_ids = np.array([5, 5, 5])
    times_ms = np.array([30, 10, 20])
    labels = np.array([0, 1, 1])

    exposures, long_views = exposures_before(video_ids, times_ms, labels)

    assert exposures.tolist() == [2.0, 0.0, 1.0]
    assert long_views.tolist() == [2.0, 0.0, 1.0]


def test_exposures_before_rejects_length_mismatch() -> None:
    with pytest.raises(ValueError, match="same length"):
        exposures_before(np.array([1, 2]), np.array([1]), np.array([0, 1]))


def test_statistics_from_window() -> None:
    events = pd.DataFrame({"video_id": [1, 1, 3, 9], "long_view": [1, 0, 0, 1]})
    statistics = VideoStatistics.from_window(VIDEOS, events, prior_strength=4.0)

    assert len(statistics) == 4  # the three table videos and video 9, seen only in the events
    assert statistics.prior_long_view_rate == 0.5
    found = statistics.lookup(["1", "2", "3", "9", "404"])
    assert found.exposures.tolist() == [2.0, 0.0, 1.0, 1.0, 0.0]
    assert found.long_views.tolist() == [1.0, 0.0, 0.0, 1.0, 0.0]
    # A missing duration in the video table is an image post (0). A video outside the table is unknown (NaN).
    assert found.duration_ms[:3].tolist() == [30_000.0, 0.0, 8_000.0]
    assert math.isnan(found.duration_ms[3])
    assert math.isnan(found.duration_ms[4])
    assert found.known.tolist() == [True, True, True, True, False]


def test_statistics_round_trip() -> None:
    events = pd.DataFrame({"video_id": [1, 9], "long_view": [1, 0]})
    statistics = VideoStatistics.from_window(VIDEOS, events, prior_strength=4.0)

    restored = VideoStatistics.from_dict(statistics.to_dict())

    assert restored.to_dict() == statistics.to_dict()
    ids = ["1", "2", "3", "9"]
    np.testing.assert_array_equal(restored.lookup(ids).duration_ms, statistics.lookup(ids).duration_ms)


def test_statistics_empty_window_rejected() -> None:
    with pytest.raises(ValueError, match="empty event window"):
        VideoStatistics.from_window(VIDEOS, pd.DataFrame({"video_id": [], "long_view": []}), prior_strength=1.0)


def test_statistics_reject_more_long_views_than_exposures() -> None:
    with pytest.raises(ValueError, match="at most the exposures"):
        VideoStatistics(["1"], np.array([1.0]), np.array([1.0]), np.array([2.0]), 0.1, 1.0)


def test_statistics_reject_repeated_ids() -> None:
    with pytest.raises(ValueError, match="1 repeated ids"):
        VideoStatistics(["1", "1"], np.zeros(2), np.zeros(2), np.zeros(2), 0.1, 1.0)


def test_statistics_reject_zero_prior_strength() -> None:
    with pytest.raises(ValueError, match="prior_strength"):
        VideoStatistics(["1"], np.zeros(1), np.zeros(1), np.zeros(1), 0.1, 0.0)


def test_statistics_reject_negative_duration() -> None:
    videos = pd.DataFrame({"video_id": [1, 2], "video_duration": [30_000.0, -5.0]})
    events = pd.DataFrame({"video_id": [1], "long_view": [1]})
    with pytest.raises(ValueError, match="'video_duration' must be >= 0 ms or empty, got -5.0 for video_id 2"):
        VideoStatistics.from_window(videos, events, prior_strength=1.0)
