"""Tests for evaluation.replay: running sums by hand, agreement with the batch reference, no peeking."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation.events import prepare_events
from evaluation.replay import Replay
from operators.reference import reference_interests
from operators.threshold import DEFAULT_THRESHOLD_RULE, FixedThreshold

FAST = settings(max_examples=40, deadline=None)
MAX_WATCH_MS = 86_400_000.0
ALPHA_PER_S = 0.5

AXES_3D = {1: np.array([1.0, 0.0, 0.0]), 2: np.array([0.0, 1.0, 0.0]), 3: np.array([0.0, 0.0, 1.0])}

# Two interleaved users on the plane embeddings (video 1 = [1, 0], 2 = [0, 1], 3 = [0.6, 0.8]).
INTERLEAVED_ROWS = (
    # user, video, time_ms, play_time_ms, long_view
    (1, 1, 100, 5_000, 0),  # row 0
    (2, 2, 150, 5_000, 0),  # row 1
    (1, 2, 200, 5_000, 0),  # row 2
    (1, 3, 300, 5_000, 0),  # row 3
    (2, 1, 400, 5_000, 0),  # row 4
)
INTERLEAVED_WEIGHTS = np.array([1.0, 2.0, 0.5, 2.0, 1.0])

# User 1 watches two videos at 200 ms, and user 2 one video at that millisecond.
SIMULTANEOUS_ROWS = (
    (1, 1, 100, 12_000, 0),  # row 0
    (1, 2, 200, 15_000, 0),  # row 1, the event whose watch time the tests change
    (1, 3, 200, 9_000, 0),  # row 2, same millisecond as row 1
    (2, 1, 200, 30_000, 1),  # row 3, same millisecond, other user
    (1, 4, 300, 22_000, 1),  # row 4
    (1, 1, 400, 3_000, 0),  # row 5
)

MakeReplay = Callable[..., Replay]


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def test_running_sums_plain(make_replay: MakeReplay) -> None:
    replay = make_replay(INTERLEAVED_ROWS)

    sums = replay.running_sums(INTERLEAVED_WEIGHTS)

    expected = np.array([
        [1.0, 0.0],  # user 1: 1 x [1, 0]
        [0.0, 2.0],  # user 2: 2 x [0, 1]
        [1.0, 0.5],  # user 1: [1, 0] + 0.5 x [0, 1]
        [2.2, 2.1],  # user 1: [1, 0.5] + 2 x [0.6, 0.8]
        [1.0, 2.0],  # user 2: [0, 2] + 1 x [1, 0]
    ])
    np.testing.assert_allclose(sums, expected, rtol=1e-15)


def test_running_sums_half_life(make_replay: MakeReplay) -> None:
    rows = [(1, 1, 0, 5_000, 0), (1, 2, 1_000, 5_000, 0), (1, 3, 3_000, 5_000, 0)]
    replay = make_replay(rows)

    sums = replay.running_sums(np.ones(3), half_life_ms=1_000.0)

    # At 1000 ms: 2^-1 x [1, 0] + [0, 1].
    # At 3000 ms: 2^-3 x [1, 0] + 2^-2 x [0, 1] + [0.6, 0.8] = [0.725, 1.05].
    np.testing.assert_allclose(sums[0], [1.0, 0.0], rtol=1e-15)
    np.testing.assert_allclose(sums[1], [0.5, 1.0], rtol=1e-15)
    np.testing.assert_allclose(sums[2], [0.725, 1.05], rtol=1e-14)


def test_running_sums_across_stretches(make_replay: MakeReplay) -> None:
    # With a 1 ms half-life, 400 ms is 400 halvings, so these events span more than one stretch of
    # at most 500 halvings. Orthogonal vectors keep each event's decayed weight in its own component.
    rows = [(1, 1, 0, 5_000, 0), (1, 2, 400, 5_000, 0), (1, 3, 800, 5_000, 0)]
    replay = make_replay(rows, AXES_3D)

    sums = replay.running_sums(np.ones(3), half_life_ms=1.0)

    np.testing.assert_allclose(sums[1], [2.0 ** -400, 1.0, 0.0], rtol=1e-12)
    np.testing.assert_allclose(sums[2], [2.0 ** -800, 2.0 ** -400, 1.0], rtol=1e-12)


def test_running_sums_stretch_boundary(make_replay: MakeReplay) -> None:
    # 500 halvings after the first event is the last time inside its stretch, and 501 starts a new one.
    rows = [(1, 1, 0, 5_000, 0), (1, 2, 500, 5_000, 0), (1, 3, 501, 5_000, 0)]
    replay = make_replay(rows, AXES_3D)

    sums = replay.running_sums(np.ones(3), half_life_ms=1.0)

    np.testing.assert_allclose(sums[1], [2.0 ** -500, 1.0, 0.0], rtol=1e-12)
    np.testing.assert_allclose(sums[2], [2.0 ** -501, 0.5, 1.0], rtol=1e-12)


def test_running_sums_weights_of_each_row(make_replay: MakeReplay) -> None:
    # Weights follow the rows of the prepared events, whatever the user.
    replay = make_replay(INTERLEAVED_ROWS)
    weights = np.zeros(5)
    weights[1] = 3.0

    sums = replay.running_sums(weights)

    np.testing.assert_array_equal(sums[[0, 2, 3]], np.zeros((3, 2)))
    np.testing.assert_allclose(sums[1], [0.0, 3.0])
    np.testing.assert_allclose(sums[4], [0.0, 3.0])


@pytest.mark.parametrize("half_life_ms", [0.0, -5.0, math.nan])
def test_running_sums_rejects_half_life(make_replay: MakeReplay, half_life_ms: float) -> None:
    replay = make_replay(INTERLEAVED_ROWS)

    with pytest.raises(ValueError, match="half_life_ms must be > 0"):
        replay.running_sums(INTERLEAVED_WEIGHTS, half_life_ms)


def test_preference_weights_follow_rule(make_replay: MakeReplay) -> None:
    rows = [(1, 1, 100, 10_000, 0), (1, 2, 200, 11_000, 0)]
    replay = make_replay(rows)

    weights = replay.preference_weights(1.0, FixedThreshold(10_000.0))

    # At the threshold the weight is 0.5, and one second past it 1 / (1 + e^-1).
    assert weights[0] == pytest.approx(0.5, rel=1e-15)
    assert weights[1] == pytest.approx(1.0 / (1.0 + math.exp(-1.0)), rel=1e-15)


def test_rows_of_user_oldest_first(make_replay: MakeReplay) -> None:
    replay = make_replay(INTERLEAVED_ROWS)

    assert replay.rows_of_user(0).tolist() == [0, 2, 3]
    assert replay.rows_of_user(1).tolist() == [1, 4]


def final_rows(replay: Replay) -> dict[int, int]:
    """Return the row of each user's last event, by user id."""
    events = replay.events
    return {int(events.user_ids[rows[-1]]): int(rows[-1])
            for rows in (replay.rows_of_user(user) for user in range(events.user_count))}


def check_against_reference(table: pd.DataFrame, embeddings: dict[int, np.ndarray],
                            half_life_ms: float | None) -> None:
    events = prepare_events(table, embeddings, MAX_WATCH_MS)
    replay = Replay(events)
    weights = replay.preference_weights(ALPHA_PER_S, DEFAULT_THRESHOLD_RULE)
    sums = replay.running_sums(weights, half_life_ms)
    reference = reference_interests(table, embeddings, ALPHA_PER_S, DEFAULT_THRESHOLD_RULE, half_life_ms)

    assert sorted(reference) == sorted(final_rows(replay))
    for user_id, row in final_rows(replay).items():
        expected = reference[user_id].vector
        assert expected is not None
        cosine = float(unit(sums[row]) @ expected)
        assert cosine > 1.0 - 1e-9, f"user {user_id}: cosine {cosine}"

    for user in range(events.user_count):
        user_id = int(events.user_ids[replay.rows_of_user(user)[0]])
        state, total_weight = replay.state_of_rows(replay.rows_of_user(user), weights, half_life_ms)
        assert total_weight == pytest.approx(reference[user_id].total_weight, rel=1e-9)
        assert float(unit(state) @ reference[user_id].vector) > 1.0 - 1e-9


@FAST
@given(seed=st.integers(min_value=0, max_value=2**32 - 1),
       half_life_ms=st.sampled_from([None, 1.0, 3.5, 50.0, 300.0, 86_400_000.0]))
def test_final_sums_match_reference(make_random_log: Callable, seed: int, half_life_ms: float | None) -> None:
    table, embeddings = make_random_log(seed)

    check_against_reference(table, embeddings, half_life_ms)


@pytest.mark.parametrize("seed", range(3))
def test_reference_over_many_stretches(make_random_log: Callable, seed: int) -> None:
    # 2000 ms at a 1 ms half-life is 2000 halvings, four stretches or more.
    table, embeddings = make_random_log(seed, users=3, events_per_user=60, span_ms=2_000)
    assert table["time_ms"].max() - table["time_ms"].min() > 1_500

    check_against_reference(table, embeddings, 1.0)


def test_state_of_rows_plain(make_replay: MakeReplay) -> None:
    replay = make_replay(INTERLEAVED_ROWS)

    state, total_weight = replay.state_of_rows(np.array([0, 2, 3]), INTERLEAVED_WEIGHTS)

    # User 1's rows: [1, 0] + 0.5 x [0, 1] + 2 x [0.6, 0.8] = [2.2, 2.1], total weight 1 + 0.5 + 2.
    np.testing.assert_allclose(state, [2.2, 2.1], rtol=1e-15)
    assert total_weight == pytest.approx(3.5, rel=1e-15)


def test_state_of_rows_any_order(make_replay: MakeReplay) -> None:
    replay = make_replay(INTERLEAVED_ROWS)

    in_order = replay.state_of_rows(np.array([0, 2, 3]), INTERLEAVED_WEIGHTS, 50.0)
    shuffled = replay.state_of_rows(np.array([3, 0, 2]), INTERLEAVED_WEIGHTS, 50.0)

    np.testing.assert_allclose(shuffled[0], in_order[0], rtol=1e-15)
    assert shuffled[1] == pytest.approx(in_order[1], rel=1e-15)


def test_state_of_rows_subset(make_replay: MakeReplay) -> None:
    replay = make_replay(INTERLEAVED_ROWS)

    state, total_weight = replay.state_of_rows(np.array([0, 3]), INTERLEAVED_WEIGHTS)

    # Row 2 is left out: [1, 0] + 2 x [0.6, 0.8] = [2.2, 1.6], total weight 3.
    np.testing.assert_allclose(state, [2.2, 1.6], rtol=1e-15)
    assert total_weight == pytest.approx(3.0, rel=1e-15)


def test_state_of_rows_half_life(make_replay: MakeReplay) -> None:
    rows = [(1, 1, 0, 5_000, 0), (1, 2, 1_000, 5_000, 0), (1, 3, 3_000, 5_000, 0)]
    replay = make_replay(rows)

    state, total_weight = replay.state_of_rows(np.arange(3), np.ones(3), 1_000.0)

    # At 3000 ms the weights are 2^-3, 2^-2 and 1, which add up to 1.375.
    np.testing.assert_allclose(state, [0.725, 1.05], rtol=1e-14)
    assert total_weight == pytest.approx(1.375, rel=1e-15)


def test_state_of_rows_empty(make_replay: MakeReplay) -> None:
    replay = make_replay(INTERLEAVED_ROWS)

    state, total_weight = replay.state_of_rows(np.array([], dtype=np.intp), INTERLEAVED_WEIGHTS)

    np.testing.assert_array_equal(state, [0.0, 0.0])
    assert total_weight == 0.0


def simultaneous_states(make_events: Callable, plane_embeddings: dict, play_time_of_row_1: int,
                        half_life_ms: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Return the states before every event of ``SIMULTANEOUS_ROWS`` with row 1's watch time replaced."""
    table = make_events(SIMULTANEOUS_ROWS)
    table.loc[1, "play_time_ms"] = play_time_of_row_1
    replay = Replay(prepare_events(table, plane_embeddings, MAX_WATCH_MS))
    weights = replay.preference_weights(ALPHA_PER_S, DEFAULT_THRESHOLD_RULE)
    sums = replay.running_sums(weights, half_life_ms)
    states = replay.states_before_events(sums, np.arange(len(table)))
    return states.vectors, states.defined


@pytest.mark.parametrize("half_life_ms", [None, 100.0])
def test_states_never_peek(make_events: Callable, plane_embeddings: dict, half_life_ms: float | None) -> None:
    before, defined = simultaneous_states(make_events, plane_embeddings, 15_000, half_life_ms)
    after, _ = simultaneous_states(make_events, plane_embeddings, 60_000, half_life_ms)

    # Rows 0 to 3 are at or before row 1's millisecond, so row 1 is not part of their states.
    np.testing.assert_array_equal(after[:4], before[:4])
    # Rows 4 and 5 come later and see the new weight, which shows the change matters.
    assert not np.allclose(after[4], before[4])
    assert not np.allclose(after[5], before[5])
    assert defined.tolist() == [False, True, True, False, True, True]


def test_states_exclude_same_millisecond(make_replay: MakeReplay) -> None:
    replay = make_replay(SIMULTANEOUS_ROWS)
    sums = replay.running_sums(np.ones(6))

    states = replay.states_before_events(sums, np.array([1, 2, 4]))

    # Rows 1 and 2 (200 ms) see only row 0, video 1 = [1, 0].
    np.testing.assert_allclose(states.vectors[0], [1.0, 0.0])
    np.testing.assert_allclose(states.vectors[1], [1.0, 0.0])
    # Row 4's state includes rows 0, 1 and 2: [1, 0] + [0, 1] + [0.6, 0.8] = [1.6, 1.8].
    np.testing.assert_allclose(states.vectors[2], unit(np.array([1.6, 1.8])), rtol=1e-14)


def test_first_events_undefined(make_replay: MakeReplay) -> None:
    replay = make_replay(INTERLEAVED_ROWS)
    sums = replay.running_sums(INTERLEAVED_WEIGHTS)

    states = replay.states_before_events(sums, np.arange(5))

    assert states.defined.tolist() == [False, False, True, True, True]
    np.testing.assert_array_equal(states.vectors[:2], np.zeros((2, 2)))


def test_zero_weights_undefined(make_replay: MakeReplay) -> None:
    replay = make_replay(INTERLEAVED_ROWS)
    sums = replay.running_sums(np.zeros(5))

    states = replay.states_before_events(sums, np.array([2, 3, 4]))

    assert not states.defined.any()
    np.testing.assert_array_equal(states.vectors, np.zeros((3, 2)))


def test_previous_rows_hand_case(make_replay: MakeReplay) -> None:
    replay = make_replay(SIMULTANEOUS_ROWS)

    previous = replay.previous_rows(np.arange(6))

    # Rows 1 and 2 share 200 ms, so both go back to row 0, and row 4 to row 2, the last at 200 ms.
    assert previous.tolist() == [-1, 0, 0, -1, 2, 4]


def test_states_at_per_user(make_replay: MakeReplay) -> None:
    replay = make_replay(INTERLEAVED_ROWS)
    sums = replay.running_sums(INTERLEAVED_WEIGHTS)

    states = replay.states_at(sums, 200)

    # Before 200 ms, user 1 has row 0 ([1, 0]) and user 2 row 1 (2 x [0, 1]).
    # Row 2 is at 200 ms, so it is left out.
    assert states.defined.tolist() == [True, True]
    np.testing.assert_allclose(states.vectors, [[1.0, 0.0], [0.0, 1.0]])


def test_states_at_after_all_events(make_replay: MakeReplay) -> None:
    replay = make_replay(INTERLEAVED_ROWS)
    sums = replay.running_sums(INTERLEAVED_WEIGHTS)

    states = replay.states_at(sums, 10_000)

    np.testing.assert_allclose(states.vectors[0], unit(np.array([2.2, 2.1])), rtol=1e-14)
    np.testing.assert_allclose(states.vectors[1], unit(np.array([1.0, 2.0])), rtol=1e-14)


def test_states_at_before_user_starts(make_replay: MakeReplay) -> None:
    replay = make_replay(INTERLEAVED_ROWS)
    sums = replay.running_sums(INTERLEAVED_WEIGHTS)

    states = replay.states_at(sums, 150)

    # User 2's first event is at 150 ms, which is not strictly before 150.
    assert states.defined.tolist() == [True, False]
    np.testing.assert_array_equal(states.vectors[1], [0.0, 0.0])


def test_last_rows_before_hand_case(make_replay: MakeReplay) -> None:
    replay = make_replay(INTERLEAVED_ROWS)

    assert replay.last_rows_before(100).tolist() == [-1, -1]
    assert replay.last_rows_before(301).tolist() == [3, 1]
    assert replay.last_rows_before(401).tolist() == [3, 4]
