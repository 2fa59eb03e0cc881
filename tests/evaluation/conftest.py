"""Hand-built event logs and embeddings for the evaluation tests, offered as fixtures.

An event row is a tuple ``(user_id, video_id, time_ms, play_time_ms, long_view)``, with an
optional sixth element ``is_rand``. ``build_events`` turns such rows into the table that
``evaluation.events.prepare_events`` reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import pytest
from numpy.typing import ArrayLike, NDArray

from evaluation.events import prepare_events
from evaluation.methods import MethodScores
from evaluation.replay import Replay
from evaluation.results import WindowData
from evaluation.windows import Window, split_windows

DURATION_MS = 20_000
"""Duration of every video in the hand-built logs."""

MAX_WATCH_TIME_MS = 86_400_000.0
"""Default of preference.max_watch_time_ms: one day."""

PLANE_EMBEDDINGS: dict[int, NDArray[np.float64]] = {
    1: np.array([1.0, 0.0]),
    2: np.array([0.0, 1.0]),
    3: np.array([0.6, 0.8]),
    4: np.array([0.28, 0.96]),
}
"""Unit vectors in the plane, so that inner products are easy to compute by hand."""

EventRow = tuple[int, ...]


def build_events(rows: Sequence[EventRow], *, with_random_flag: bool = True,
                 duration_ms: int = DURATION_MS) -> pd.DataFrame:
    """Return an events table with one row per tuple, in the given order.

    A row without a sixth element is randomly exposed (``is_rand`` 1). With
    ``with_random_flag=False`` the table has no ``is_rand`` column at all.
    """
    records = []
    for row in rows:
        user_id, video_id, time_ms, play_time_ms, long_view = row[:5]
        record = {
            "user_id": user_id,
            "video_id": video_id,
            "time_ms": time_ms,
            "play_time_ms": play_time_ms,
            "duration_ms": duration_ms,
            "long_view": long_view,
        }
        if with_random_flag:
            record["is_rand"] = row[5] if len(row) > 5 else 1
        records.append(record)
    return pd.DataFrame(records)


def random_log(seed: int, *, users: int = 5, events_per_user: int = 15, videos: int = 8, dimension: int = 4,
               span_ms: int = 2_000) -> tuple[pd.DataFrame, dict[int, NDArray[np.float64]]]:
    """Return a random events table and embeddings, without two rows of one (user, video, time).

    Play times lie within 20 s of the 20 s duration, so no preference weight is near 0.
    """
    generator = np.random.default_rng(seed)
    embeddings = {video: generator.normal(size=dimension) for video in range(1, videos + 1)}
    play_times = generator.integers(0, 40_000, users * events_per_user)
    table = pd.DataFrame({
        "user_id": np.repeat(np.arange(100, 100 + users), events_per_user),
        "video_id": generator.integers(1, videos + 1, users * events_per_user),
        "time_ms": generator.integers(0, span_ms + 1, users * events_per_user),
        "play_time_ms": play_times,
        "duration_ms": DURATION_MS,
        "long_view": (play_times >= DURATION_MS).astype(int),
        "is_rand": (generator.random(users * events_per_user) < 0.8).astype(int),
    })
    table = table.drop_duplicates(["user_id", "video_id", "time_ms"]).reset_index(drop=True)
    return table, embeddings


def build_replay(rows: Sequence[EventRow], embeddings: Mapping[int, ArrayLike] | None = None) -> Replay:
    """Return the replay of hand-built rows, with the plane embeddings unless others are given."""
    table = build_events(rows)
    return Replay(prepare_events(table, PLANE_EMBEDDINGS if embeddings is None else embeddings,
                                 MAX_WATCH_TIME_MS))


@pytest.fixture(scope="session")
def make_events() -> Callable[..., pd.DataFrame]:
    """The ``build_events`` factory."""
    return build_events


@pytest.fixture(scope="session")
def make_random_log() -> Callable[..., tuple[pd.DataFrame, dict[int, NDArray[np.float64]]]]:
    """The ``random_log`` factory."""
    return random_log


@pytest.fixture(scope="session")
def make_replay() -> Callable[..., Replay]:
    """The ``build_replay`` factory."""
    return build_replay


@pytest.fixture
def plane_embeddings() -> dict[int, NDArray[np.float64]]:
    """A copy of ``PLANE_EMBEDDINGS``."""
    return {video: vector.copy() for video, vector in PLANE_EMBEDDINGS.items()}


# The ranking toy: three users with history before t = 200 ms, then a validation window in which
# every event is randomly exposed, then one event in the test window.
RANKING_TOY_ROWS: tuple[EventRow, ...] = (
    # user, video, time_ms, play_time_ms, long_view
    (1, 1, 100, 5_000, 0),  # row 0, history of user 1
    (2, 2, 110, 5_000, 0),  # row 1, history of user 2
    (3, 3, 120, 5_000, 0),  # row 2, history of user 3
    (1, 4, 130, 5_000, 0),  # row 3, history of user 1
    (1, 1, 200, 25_000, 1),  # rows 4 to 7: user 1 in the validation window
    (1, 2, 210, 5_000, 0),
    (1, 3, 220, 25_000, 1),
    (1, 4, 230, 5_000, 0),
    (2, 1, 300, 5_000, 0),  # rows 8 to 10: user 2
    (2, 2, 310, 5_000, 0),
    (2, 3, 320, 25_000, 1),
    (3, 1, 400, 5_000, 0),  # rows 11 and 12: user 3, who long-viewed nothing
    (3, 2, 410, 5_000, 0),
    (1, 2, 500, 25_000, 1),  # row 13, the test window
)
RANKING_TOY_VALIDATION_START = 0.3
"""floor(0.3 * 14) = 4, so the validation window starts at row 4 (200 ms)."""
RANKING_TOY_TEST_START = 0.95
"""floor(0.95 * 14) = 13, so the test window starts at row 13 (500 ms)."""
RANKING_TOY_CLUSTERS = np.array([0, 5, 4, 1, 0, 2, 2, 3, 5, 6, 7, 4, 4, 0], dtype=np.intp)
"""Cluster of each row's video, chosen by hand rather than by k-means."""
RANKING_TOY_K = 2


@pytest.fixture
def toy_replay() -> Replay:
    """Replay of ``RANKING_TOY_ROWS``."""
    return build_replay(RANKING_TOY_ROWS)


@pytest.fixture
def toy_windows(toy_replay: Replay) -> tuple[Window, Window]:
    """Validation and test windows of the ranking toy."""
    return split_windows(toy_replay, RANKING_TOY_VALIDATION_START, RANKING_TOY_TEST_START)


@pytest.fixture
def toy_data(toy_replay: Replay, toy_windows: tuple[Window, Window]) -> WindowData:
    """Window data of the ranking toy's validation window, with k = 2."""
    return WindowData.build(toy_replay, toy_windows[0], RANKING_TOY_CLUSTERS, RANKING_TOY_K)


@pytest.fixture
def toy_scores() -> MethodScores:
    """Hand-picked scores of the validation window's events (rows 4 to 12) and candidates (the same rows).

    No two scores within one user are equal, so the random tie-breaking never matters.
    """
    return MethodScores(
        event_scores=np.array([0.9, 0.1, 0.4, 0.6, 0.3, 0.2, 0.1, 0.5, 0.7]),
        request_scores=np.array([0.1, 0.9, 0.8, 0.2, 0.3, 0.2, 0.1, 0.5, 0.7]),
    )
