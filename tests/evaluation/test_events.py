"""Tests for evaluation.events.prepare_events: accounting, order, exposure flag and unit vectors."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from evaluation.events import prepare_events

MAX_WATCH_MS = 100_000.0

EMBEDDINGS = {
    1: np.array([1.0, 0.0]),
    2: np.array([0.0, 2.0]),
    3: np.array([3.0, 4.0]),
}

MakeEvents = Callable[..., pd.DataFrame]


def test_duplicates_counted_and_left_out(make_events: MakeEvents) -> None:
    table = make_events([
        # user, video, time_ms, play_time_ms, long_view
        (1, 1, 100, 1_000, 0),
        (1, 1, 100, 2_000, 1),  # same user, video and time as the row above
        (1, 2, 100, 3_000, 0),  # same time, other video: not a duplicate
        (2, 1, 100, 4_000, 0),  # same video and time, other user: not a duplicate
    ])

    events = prepare_events(table, EMBEDDINGS, MAX_WATCH_MS)

    assert events.accounting.duplicates == 1
    assert events.accounting.used == 3
    assert len(events) == 3
    assert 2_000.0 not in events.play_time_ms.tolist()


def test_duplicate_keeps_first_input_row(make_events: MakeEvents) -> None:
    table = make_events([
        (1, 1, 100, 7_000, 0),
        (1, 1, 100, 2_000, 1),
        (1, 1, 100, 3_000, 1),
    ])

    events = prepare_events(table, EMBEDDINGS, MAX_WATCH_MS)

    assert events.play_time_ms.tolist() == [7_000.0]
    assert events.labels.tolist() == [0]
    assert events.accounting.duplicates == 2


def test_implausible_watch_time_counted(make_events: MakeEvents) -> None:
    table = make_events([
        (1, 1, 100, MAX_WATCH_MS + 1, 0),
        (1, 2, 200, MAX_WATCH_MS, 0),  # at the limit: plausible, as in the job's validation
        (1, 3, 300, 5_000, 0),
    ])

    events = prepare_events(table, EMBEDDINGS, MAX_WATCH_MS)

    assert events.accounting.implausible_watch_time == 1
    assert events.video_ids.tolist() == [2, 3]


def test_videos_without_embedding_counted(make_events: MakeEvents) -> None:
    table = make_events([
        (1, 1, 100, 5_000, 0),
        (1, 99, 200, 5_000, 0),
        (2, 98, 300, 5_000, 0),
    ])

    events = prepare_events(table, EMBEDDINGS, MAX_WATCH_MS)

    assert events.accounting.without_embedding == 2
    assert events.video_ids.tolist() == [1]
    assert events.user_count == 1


def test_accounting_balanced(make_events: MakeEvents) -> None:
    table = make_events([
        (1, 1, 100, 5_000, 0),
        (1, 1, 100, 5_000, 0),  # duplicate
        (1, 2, 200, MAX_WATCH_MS * 2, 0),  # implausible
        (2, 99, 300, 5_000, 0),  # without embedding
        (2, 3, 400, 5_000, 1),
    ])

    accounting = prepare_events(table, EMBEDDINGS, MAX_WATCH_MS).accounting

    assert accounting.read == 5
    assert accounting.duplicates == 1
    assert accounting.implausible_watch_time == 1
    assert accounting.without_embedding == 1
    assert accounting.used == 2
    assert accounting.balanced


def test_one_reason_per_row(make_events: MakeEvents) -> None:
    # The job dead-letters both rows for their watch time before its sum could see the repeat,
    # so each counts once, as implausible, and neither as a duplicate or as missing an embedding.
    table = make_events([
        (1, 99, 100, MAX_WATCH_MS * 2, 0),
        (1, 99, 100, MAX_WATCH_MS * 2, 0),
        (1, 1, 200, 5_000, 0),
    ])

    accounting = prepare_events(table, EMBEDDINGS, MAX_WATCH_MS).accounting

    assert accounting.duplicates == 0
    assert accounting.implausible_watch_time == 2
    assert accounting.without_embedding == 0
    assert accounting.balanced


def test_duplicate_of_implausible_row_used(make_events: MakeEvents) -> None:
    table = make_events([
        (1, 1, 100, MAX_WATCH_MS * 2, 0),  # dead-lettered by the job's validation
        (1, 1, 100, 5_000, 0),  # same key, valid: the job sums it, because no event with this key was summed
        (1, 2, 200, 5_000, 0),
    ])

    events = prepare_events(table, EMBEDDINGS, MAX_WATCH_MS)

    assert events.accounting.duplicates == 0
    assert events.accounting.implausible_watch_time == 1
    assert events.accounting.used == 2


def test_sorted_by_time_user_row(make_events: MakeEvents) -> None:
    table = make_events([
        # user, video, time_ms, play_time_ms, long_view
        (2, 1, 300, 1_000, 0),  # input row 0
        (5, 1, 100, 2_000, 0),  # input row 1
        (2, 3, 100, 3_000, 0),  # input row 2
        (2, 2, 100, 4_000, 0),  # input row 3: ties row 2 on time and user
        (1, 2, 200, 5_000, 0),  # input row 4
    ])

    events = prepare_events(table, EMBEDDINGS, MAX_WATCH_MS)

    # Time 100: user 2 (rows 2 and 3 in input order), then user 5, then times 200 and 300.
    assert events.time_ms.tolist() == [100, 100, 100, 200, 300]
    assert events.user_ids.tolist() == [2, 2, 5, 1, 2]
    assert events.play_time_ms.tolist() == [3_000.0, 4_000.0, 2_000.0, 5_000.0, 1_000.0]


def test_users_numbered_by_id(make_events: MakeEvents) -> None:
    table = make_events([
        (20, 1, 100, 5_000, 0),
        (5, 2, 200, 5_000, 0),
        (20, 3, 300, 5_000, 0),
        (7, 1, 400, 5_000, 0),
    ])

    events = prepare_events(table, EMBEDDINGS, MAX_WATCH_MS)

    # Ascending ids 5, 7, 20 get the numbers 0, 1, 2.
    assert events.users.tolist() == [2, 0, 2, 1]
    assert events.user_count == 3


def test_missing_flag_means_random(make_events: MakeEvents) -> None:
    table = make_events([(1, 1, 100, 5_000, 0), (1, 2, 200, 5_000, 1)], with_random_flag=False)

    events = prepare_events(table, EMBEDDINGS, MAX_WATCH_MS)

    assert events.randomly_exposed.tolist() == [True, True]
    assert not events.has_random_exposure_column


def test_random_flag_read(make_events: MakeEvents) -> None:
    table = make_events([
        # user, video, time_ms, play_time_ms, long_view, is_rand
        (1, 1, 100, 5_000, 0, 1),
        (1, 2, 200, 5_000, 1, 0),
        (1, 3, 300, 5_000, 1, 1),
    ])

    events = prepare_events(table, EMBEDDINGS, MAX_WATCH_MS)

    assert events.randomly_exposed.tolist() == [True, False, True]
    assert events.has_random_exposure_column


def test_labels_and_durations_kept(make_events: MakeEvents) -> None:
    table = make_events([(1, 1, 100, 5_000, 1), (1, 2, 200, 6_000, 0)], duration_ms=0)

    events = prepare_events(table, EMBEDDINGS, MAX_WATCH_MS)

    assert events.labels.tolist() == [1, 0]
    assert events.labels.dtype == np.int8
    assert events.duration_ms.tolist() == [0.0, 0.0]
    assert events.play_time_ms.tolist() == [5_000.0, 6_000.0]


@pytest.mark.parametrize("column", ["long_view", "is_rand"])
def test_flag_not_binary_raises(make_events: MakeEvents, column: str) -> None:
    table = make_events([(1, 1, 100, 5_000, 0), (1, 2, 200, 5_000, 1)])
    table.loc[1, column] = 2

    with pytest.raises(ValueError, match=f"'{column}' must be 0 or 1"):
        prepare_events(table, EMBEDDINGS, MAX_WATCH_MS)


def test_missing_column_raises(make_events: MakeEvents) -> None:
    table = make_events([(1, 1, 100, 5_000, 0)]).drop(columns="duration_ms")

    with pytest.raises(ValueError, match="duration_ms"):
        prepare_events(table, EMBEDDINGS, MAX_WATCH_MS)


def test_zero_embedding_raises(make_events: MakeEvents) -> None:
    table = make_events([(1, 1, 100, 5_000, 0), (1, 4, 200, 5_000, 0)])
    embeddings = {**EMBEDDINGS, 4: np.zeros(2)}

    with pytest.raises(ValueError, match="embedding of video 4 is all zeros"):
        prepare_events(table, embeddings, MAX_WATCH_MS)


def test_no_usable_event_raises(make_events: MakeEvents) -> None:
    table = make_events([(1, 99, 100, 5_000, 0), (1, 1, 200, MAX_WATCH_MS * 2, 0)])

    with pytest.raises(ValueError, match="none of the 2 events is usable"):
        prepare_events(table, EMBEDDINGS, MAX_WATCH_MS)


def test_vectors_are_unit(make_events: MakeEvents) -> None:
    table = make_events([
        (1, 3, 100, 5_000, 0),
        (2, 2, 200, 5_000, 0),
        (1, 3, 300, 5_000, 0),
        (3, 1, 400, 5_000, 0),
    ])

    events = prepare_events(table, EMBEDDINGS, MAX_WATCH_MS)

    assert events.vectors.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(events.vectors, axis=1), 1.0, rtol=1e-15)
    # Video 3 is [3, 4], so its unit vector is [0.6, 0.8]. Video 2 is [0, 2].
    np.testing.assert_allclose(events.vectors[0], [0.6, 0.8], rtol=1e-15)
    np.testing.assert_allclose(events.vectors[1], [0.0, 1.0], rtol=1e-15)
    assert events.dimension == 2


def test_float32_embeddings_accepted(make_events: MakeEvents) -> None:
    table = make_events([(1, 1, 100, 5_000, 0)])
    embeddings = {1: np.array([0.0, 3.0, 4.0], dtype=np.float32)}

    events = prepare_events(table, embeddings, MAX_WATCH_MS)

    np.testing.assert_allclose(events.vectors, [[0.0, 0.6, 0.8]], rtol=1e-7)


def test_input_table_unchanged(make_events: MakeEvents) -> None:
    table = make_events([(1, 1, 300, 5_000, 0), (1, 1, 300, 5_000, 0), (2, 2, 100, 5_000, 0)])
    copy = table.copy()

    prepare_events(table, EMBEDDINGS, MAX_WATCH_MS)

    pd.testing.assert_frame_equal(table, copy)
