"""Tests for evaluation.windows.split_windows on a hand-made log."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from evaluation.replay import Replay
from evaluation.windows import Window, split_windows

# Users 1 to 4 get the numbers 0 to 3. floor(0.25 x 12) = 3 puts the validation start at row 3
# (400 ms), and floor(0.85 x 12) = 10 the test start at row 10 (800 ms).
LOG_ROWS = (
    # user, video, time_ms, play_time_ms, long_view, is_rand
    (1, 1, 100, 5_000, 0, 1),  # row 0: history of user 1
    (2, 2, 200, 5_000, 0, 1),  # row 1: history of user 2
    (1, 3, 300, 5_000, 0, 1),  # row 2: history of user 1
    (3, 1, 400, 5_000, 0, 1),  # row 3: first event of user 3, at the validation start
    (3, 2, 400, 5_000, 0, 1),  # row 4: same millisecond as user 3's first event
    (1, 4, 500, 5_000, 1, 1),  # row 5
    (2, 1, 550, 5_000, 0, 1),  # row 6
    (2, 2, 600, 5_000, 1, 0),  # row 7: not randomly exposed
    (1, 2, 650, 5_000, 0, 1),  # row 8
    (3, 3, 700, 5_000, 1, 1),  # row 9: user 3 has an earlier event now, but none before the start
    (1, 1, 800, 5_000, 0, 1),  # row 10: test window
    (4, 2, 900, 5_000, 1, 1),  # row 11: user 4's only event
)
VALIDATION_START = 0.25
TEST_START = 0.85


@pytest.fixture
def windows(make_replay: Callable[..., Replay]) -> tuple[Window, Window]:
    return split_windows(make_replay(LOG_ROWS), VALIDATION_START, TEST_START)


def test_window_bounds(windows: tuple[Window, Window]) -> None:
    validation, test = windows

    assert (validation.name, validation.start_ms, validation.end_ms) == ("validation", 400, 800)
    assert (test.name, test.start_ms, test.end_ms) == ("test", 800, None)


def test_event_rows_need_earlier_event(windows: tuple[Window, Window]) -> None:
    validation, test = windows

    # Rows 3 and 4 are at user 3's first millisecond, and row 9 has row 3 before it.
    assert validation.event_rows.tolist() == [5, 6, 7, 8, 9]
    # Row 11 is user 4's first event.
    assert test.event_rows.tolist() == [10]


def test_candidates_random_with_history(windows: tuple[Window, Window]) -> None:
    validation, _ = windows

    # User 1 has rows 5 and 8, and user 2 row 6 (row 7 was not shown at random).
    # User 3 has no history before the start.
    assert validation.candidate_rows.tolist() == [5, 8, 6]


def test_cold_users_counted(windows: tuple[Window, Window]) -> None:
    validation, test = windows

    assert validation.cold_users == 1  # user 3
    assert test.cold_users == 1  # user 4


def test_requests_match_candidates(windows: tuple[Window, Window]) -> None:
    validation, _ = windows

    assert validation.request_users.tolist() == [0, 1]
    assert validation.request_bounds.tolist() == [0, 2, 3]
    assert validation.candidate_users.tolist() == [0, 0, 1]
    assert validation.request_rows(0).tolist() == [5, 8]
    assert validation.request_rows(1).tolist() == [6]


def test_test_window_requests(windows: tuple[Window, Window]) -> None:
    _, test = windows

    assert test.candidate_rows.tolist() == [10]
    assert test.request_users.tolist() == [0]
    assert test.request_bounds.tolist() == [0, 1]


def test_candidate_users_own_rows(make_replay: Callable[..., Replay], windows: tuple[Window, Window]) -> None:
    replay = make_replay(LOG_ROWS)

    for window in windows:
        users_of_rows = replay.events.users[window.candidate_rows]
        assert users_of_rows.tolist() == window.candidate_users.tolist()
        assert replay.events.randomly_exposed[window.candidate_rows].all()


def test_all_random_rows_candidates(make_replay: Callable[..., Replay]) -> None:
    # With every row shown at random, row 7 of user 2 becomes a candidate too.
    rows = [row[:5] + (1,) for row in LOG_ROWS]
    validation, _ = split_windows(make_replay(rows), VALIDATION_START, TEST_START)

    assert validation.candidate_rows.tolist() == [5, 8, 6, 7]
    assert validation.request_bounds.tolist() == [0, 2, 4]


@pytest.mark.parametrize(("validation_start", "test_start"), [
    (0.5, 0.5),
    (0.7, 0.3),
    (0.0, 0.5),
    (0.5, 1.0),
    (-0.1, 0.5),
])
def test_invalid_shares_raise(make_replay: Callable[..., Replay], validation_start: float,
                              test_start: float) -> None:
    replay = make_replay(LOG_ROWS)

    with pytest.raises(ValueError, match="0 < validation_start < test_start < 1"):
        split_windows(replay, validation_start, test_start)


def test_empty_validation_window_raises(make_replay: Callable[..., Replay]) -> None:
    # Five events share 100 ms, so the 20% and 50% points are both 100 ms.
    rows = [(user, 1, 100, 5_000, 0) for user in range(1, 6)] + [(1, 2, 200, 5_000, 0)]
    replay = make_replay(rows)

    with pytest.raises(ValueError, match="has no events"):
        split_windows(replay, 0.2, 0.5)


def test_window_rows_sorted(windows: tuple[Window, Window]) -> None:
    for window in windows:
        assert np.all(np.diff(window.event_rows) > 0)
