"""Tests for evaluation.methods on a 2-D toy log whose scores are computed by hand."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from evaluation.methods import interest_scores, last_watched_scores, popularity_scores, random_scores
from evaluation.replay import Replay
from evaluation.windows import Window, split_windows

# Plane embeddings: video 1 = [1, 0], 2 = [0, 1], 3 = [0.6, 0.8], 4 = [0.28, 0.96].
# floor(0.45 x 7) = 3 starts the validation window at row 3 (400 ms), and floor(0.9 x 7) = 6
# starts the test window at row 6 (700 ms). Validation: event rows [3, 4, 5], candidate rows [3, 5, 4]
# (grouped by user: user 1 has rows 3 and 5, user 2 row 4).
TOY_ROWS = (
    # user, video, time_ms, play_time_ms, long_view
    (1, 1, 100, 5_000, 1),  # row 0
    (1, 2, 200, 5_000, 0),  # row 1
    (2, 3, 300, 5_000, 1),  # row 2
    (1, 3, 400, 5_000, 1),  # row 3
    (2, 4, 500, 5_000, 0),  # row 4
    (1, 3, 600, 5_000, 0),  # row 5
    (2, 2, 700, 5_000, 1),  # row 6
)
TOY_WEIGHTS = np.array([1.0, 3.0, 2.0, 0.5, 1.0, 1.0, 1.0])


@pytest.fixture
def replay(make_replay: Callable[..., Replay]) -> Replay:
    return make_replay(TOY_ROWS)


@pytest.fixture
def validation(replay: Replay) -> Window:
    window, _ = split_windows(replay, 0.45, 0.9)
    return window


def test_toy_window_layout(validation: Window) -> None:
    # Guard for the hand computations below.
    assert validation.start_ms == 400
    assert validation.event_rows.tolist() == [3, 4, 5]
    assert validation.candidate_rows.tolist() == [3, 5, 4]


def test_interest_event_scores(replay: Replay, validation: Window) -> None:
    scores = interest_scores(replay, validation, TOY_WEIGHTS, None)

    expected = [
        # Row 3, user 1 before it: 1 x [1, 0] + 3 x [0, 1] = [1, 3], so <[0.6, 0.8], [1, 3]> / sqrt(10).
        3.0 / math.sqrt(10.0),
        # Row 4, user 2 before it: 2 x [0.6, 0.8], so <[0.28, 0.96], [0.6, 0.8]> = 0.168 + 0.768.
        0.936,
        # Row 5: [1, 3] + 0.5 x [0.6, 0.8] = [1.3, 3.4], so (0.78 + 2.72) / sqrt(1.69 + 11.56).
        3.5 / math.sqrt(13.25),
    ]
    np.testing.assert_allclose(scores.event_scores, expected, rtol=1e-14)
    assert scores.events_without_vector == 0


def test_interest_request_scores(replay: Replay, validation: Window) -> None:
    scores = interest_scores(replay, validation, TOY_WEIGHTS, None)

    # At 400 ms user 1's vector is [1, 3] / sqrt(10), so rows 3 and 5 (both video 3) score 3 / sqrt(10).
    # User 2's vector is [0.6, 0.8], so row 4 scores 0.936.
    expected = [3.0 / math.sqrt(10.0), 3.0 / math.sqrt(10.0), 0.936]
    np.testing.assert_allclose(scores.request_scores, expected, rtol=1e-14)
    assert scores.candidates_without_vector == 0


def test_interest_scores_half_life(replay: Replay, validation: Window) -> None:
    scores = interest_scores(replay, validation, TOY_WEIGHTS, 100.0)

    # Row 3: at 200 ms, 2^-1 x [1, 0] + 3 x [0, 1] = [0.5, 3], so (0.3 + 2.4) / sqrt(9.25).
    # Row 5: at 400 ms, 2^-3 x [1, 0] + 2^-2 x 3 x [0, 1] + 0.5 x [0.6, 0.8] = [0.425, 1.15],
    # so (0.255 + 0.92) / sqrt(0.180625 + 1.3225).
    expected = [2.7 / math.sqrt(9.25), 0.936, 1.175 / math.sqrt(1.503125)]
    np.testing.assert_allclose(scores.event_scores, expected, rtol=1e-14)


def test_interest_mean_of_history(replay: Replay, validation: Window) -> None:
    scores = interest_scores(replay, validation, np.ones(7), None)

    # Row 3 with unit weights: [1, 0] + [0, 1] = [1, 1], so (0.6 + 0.8) / sqrt(2).
    assert scores.event_scores[0] == pytest.approx(1.4 / math.sqrt(2.0), rel=1e-14)


def test_interest_without_vector(replay: Replay, validation: Window) -> None:
    weights = TOY_WEIGHTS.copy()
    weights[2] = 0.0  # user 2's only earlier event

    scores = interest_scores(replay, validation, weights, None)

    assert scores.event_scores[1] == 0.0
    assert scores.request_scores[2] == 0.0
    assert scores.events_without_vector == 1
    assert scores.candidates_without_vector == 1
    assert scores.event_scores[0] == pytest.approx(3.0 / math.sqrt(10.0), rel=1e-14)


def test_last_watched_event_scores(replay: Replay, validation: Window) -> None:
    scores = last_watched_scores(replay, validation)

    # Row 3 follows row 1 (video 2): <[0.6, 0.8], [0, 1]> = 0.8.
    # Row 4 follows row 2 (video 3): <[0.28, 0.96], [0.6, 0.8]> = 0.936.
    # Row 5 follows row 3 (video 3 again): 1.
    np.testing.assert_allclose(scores.event_scores, [0.8, 0.936, 1.0], rtol=1e-14)


def test_last_watched_request_scores(replay: Replay, validation: Window) -> None:
    scores = last_watched_scores(replay, validation)

    # At 400 ms, user 1 last watched row 1 (video 2) and user 2 row 2 (video 3).
    np.testing.assert_allclose(scores.request_scores, [0.8, 0.8, 0.936], rtol=1e-14)
    assert scores.events_without_vector == 0


def test_popularity_event_scores(replay: Replay, validation: Window) -> None:
    scores = popularity_scores(replay, validation, prior_strength=2.0)

    # Prior p: labels 1, 0, 1 before 400 ms, so 2/3, and m x p = 4/3.
    # Row 3 (video 3): one earlier view, long: (1 + 4/3) / (1 + 2) = 7/9.
    # Row 4 (video 4): never shown before: (0 + 4/3) / (0 + 2) = 2/3.
    # Row 5 (video 3): rows 2 and 3 before it, both long: (2 + 4/3) / (2 + 2) = 5/6.
    np.testing.assert_allclose(scores.event_scores, [7 / 9, 2 / 3, 5 / 6], rtol=1e-14)


def test_popularity_request_scores(replay: Replay, validation: Window) -> None:
    scores = popularity_scores(replay, validation, prior_strength=2.0)

    # Counts before 400 ms only: video 3 has row 2 (7/9), video 4 nothing (2/3).
    # Row 3 in the window does not count for row 5's request.
    np.testing.assert_allclose(scores.request_scores, [7 / 9, 7 / 9, 2 / 3], rtol=1e-14)


def test_popularity_same_millisecond(make_replay: Callable[..., Replay]) -> None:
    rows = [
        # user, video, time_ms, play_time_ms, long_view
        (1, 2, 100, 5_000, 1),
        (2, 2, 200, 5_000, 0),
        (1, 1, 300, 5_000, 1),  # validation start: floor(0.5 x 6) = 3, at 300 ms
        (2, 1, 300, 5_000, 1),  # same video, same millisecond, other user
        (1, 1, 400, 5_000, 0),
        (2, 2, 500, 5_000, 0),  # test start: floor(0.9 x 6) = 5
    ]
    replay = make_replay(rows)
    window, _ = split_windows(replay, 0.5, 0.9)

    scores = popularity_scores(replay, window, prior_strength=1.0)

    # Prior 1/2 from the two events before 300 ms. Rows 2 and 3 do not count each other: 0.5 / 1.
    # Row 4 counts both long views at 300 ms: (2 + 0.5) / (2 + 1) = 5/6.
    assert window.event_rows.tolist() == [2, 3, 4]
    np.testing.assert_allclose(scores.event_scores, [0.5, 0.5, 5 / 6], rtol=1e-14)


def test_random_scores_all_tied(validation: Window) -> None:
    scores = random_scores(validation)

    assert scores.event_scores.tolist() == [0.0, 0.0, 0.0]
    assert scores.request_scores.tolist() == [0.0, 0.0, 0.0]
