"""Tests for WatchHistory in ranking.long_view.history."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ranking.long_view import WatchHistory


def history(count: int = 3, dimension: int = 4, **overrides: object) -> WatchHistory:
    fields: dict[str, object] = {
        "video_ids": tuple(str(i) for i in range(count)),
        "vectors": np.ones((count, dimension), dtype=np.float32),
        "play_time_ms": np.full(count, 1_000.0),
        "duration_ms": np.full(count, 10_000.0),
        "time_ms": np.arange(count, dtype=np.int64),
    }
    fields.update(overrides)
    return WatchHistory(**fields)  # type: ignore[arg-type]


def test_history_converts_dtypes() -> None:
    item = history(play_time_ms=[1, 2, 3], duration_ms=[0, math.nan, 5], vectors=np.ones((3, 4)))

    assert item.vectors.dtype == np.float32
    assert item.play_time_ms.dtype == np.float64
    assert item.duration_ms.dtype == np.float64
    assert item.time_ms is not None and item.time_ms.dtype == np.int64
    assert item.video_ids == ("0", "1", "2")


def test_history_empty_has_dimension() -> None:
    empty = WatchHistory.empty(64)

    assert len(empty) == 0
    assert empty.vectors.shape == (0, 64)
    assert empty.dimension == 64


def test_history_empty_rejects_negative_dimension() -> None:
    with pytest.raises(ValueError, match="dimension must be an integer >= 0, got -1"):
        WatchHistory.empty(-1)


def test_history_rejects_vector_row_mismatch() -> None:
    with pytest.raises(ValueError, match=r"shape \(3, d\).*got shape \(2, 4\)"):
        history(vectors=np.ones((2, 4)))


def test_history_rejects_one_dimensional_vectors() -> None:
    with pytest.raises(ValueError, match="must have shape"):
        history(vectors=np.ones(12))


def test_history_rejects_column_length_mismatch() -> None:
    with pytest.raises(ValueError, match=r"play_time_ms must have shape \(3,\).*got \(2,\)"):
        history(play_time_ms=np.ones(2))
    with pytest.raises(ValueError, match=r"duration_ms must have shape \(3,\)"):
        history(duration_ms=np.ones(4))
    with pytest.raises(ValueError, match=r"time_ms must have shape \(3,\)"):
        history(time_ms=np.arange(2))


def test_history_rejects_negative_play_time() -> None:
    with pytest.raises(ValueError, match="play_time_ms must be finite and >= 0, got -5.0 at index 1"):
        history(play_time_ms=[0.0, -5.0, 1.0])


def test_history_rejects_nan_play_time() -> None:
    with pytest.raises(ValueError, match="play_time_ms must be finite"):
        history(play_time_ms=[0.0, math.nan, 1.0])


def test_history_rejects_negative_duration() -> None:
    with pytest.raises(ValueError, match="duration_ms must be >= 0"):
        history(duration_ms=[0.0, 1.0, -1.0])


def test_history_rejects_unordered_times() -> None:
    with pytest.raises(ValueError, match="oldest first.*time_ms 5 at index 2 is earlier than 9"):
        history(time_ms=np.array([1, 9, 5]))


def test_history_rejects_float_times() -> None:
    with pytest.raises(ValueError, match="integers"):
        history(time_ms=np.array([1.5, 2.0, 3.0]))


def test_history_accepts_unknown_times() -> None:
    assert history(time_ms=None).time_ms is None


def test_history_most_recent_keeps_tail() -> None:
    item = history(count=5)
    recent = item.most_recent(2)

    assert recent.video_ids == ("3", "4")
    assert recent.time_ms is not None and recent.time_ms.tolist() == [3, 4]
    assert item.most_recent(10) is item
