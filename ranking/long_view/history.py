"""The watch history that a long-view model conditions on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["WatchHistory"]


@dataclass(frozen=True)
class WatchHistory:
    """A user's watched videos, oldest first.

    Only videos with an embedding belong here. The constructor converts the arrays to the
    dtypes below and raises ValueError when their shapes disagree, a play time is negative or
    not finite, a duration is negative or infinite, or the event times are not in order.
    """

    video_ids: tuple[str, ...]
    vectors: NDArray[np.float32]
    """(n, d) embeddings in the space of the model's embedding version."""
    play_time_ms: NDArray[np.float64]
    """(n,) watch times in ms."""
    duration_ms: NDArray[np.float64]
    """(n,) video lengths in ms: NaN where unknown, 0 for image posts."""
    time_ms: NDArray[np.int64] | None = None
    """(n,) event times in epoch ms, non-decreasing, or None when the caller does not know them."""

    def __post_init__(self) -> None:
        video_ids = tuple(str(video_id) for video_id in self.video_ids)
        count = len(video_ids)
        vectors = np.asarray(self.vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != count or (count > 0 and vectors.shape[1] == 0):
            raise ValueError(
                f"history vectors must have shape ({count}, d) with d >= 1 to match {count} video ids, "
                f"got shape {vectors.shape}"
            )
        play_time_ms = _column("play_time_ms", self.play_time_ms, count, np.float64)
        duration_ms = _column("duration_ms", self.duration_ms, count, np.float64)
        time_ms = None if self.time_ms is None else _column("time_ms", self.time_ms, count, np.int64)

        if not (np.isfinite(play_time_ms) & (play_time_ms >= 0.0)).all():
            bad = int(np.flatnonzero(~(np.isfinite(play_time_ms) & (play_time_ms >= 0.0)))[0])
            raise ValueError(
                f"history play_time_ms must be finite and >= 0, got {float(play_time_ms[bad])!r} at index {bad}"
            )
        invalid_duration = ~np.isnan(duration_ms) & ~((duration_ms >= 0.0) & np.isfinite(duration_ms))
        if invalid_duration.any():
            bad = int(np.flatnonzero(invalid_duration)[0])
            raise ValueError(
                f"history duration_ms must be >= 0 and finite, or NaN when unknown, "
                f"got {float(duration_ms[bad])!r} at index {bad}"
            )
        if time_ms is not None and count > 1 and (np.diff(time_ms) < 0).any():
            bad = int(np.flatnonzero(np.diff(time_ms) < 0)[0]) + 1
            raise ValueError(
                f"history must be ordered oldest first, but time_ms {int(time_ms[bad])} at index {bad} "
                f"is earlier than {int(time_ms[bad - 1])} before it"
            )

        object.__setattr__(self, "video_ids", video_ids)
        object.__setattr__(self, "vectors", vectors)
        object.__setattr__(self, "play_time_ms", play_time_ms)
        object.__setattr__(self, "duration_ms", duration_ms)
        object.__setattr__(self, "time_ms", time_ms)

    @classmethod
    def empty(cls, dimension: int) -> WatchHistory:
        """Return the history of a user who has watched nothing, in a space of ``dimension``.

        A dimension of 0 is accepted, for a caller that has no vectors at all.
        """
        if isinstance(dimension, bool) or not isinstance(dimension, (int, np.integer)) or dimension < 0:
            raise ValueError(f"dimension must be an integer >= 0, got {dimension!r}")
        return cls(
            video_ids=(),
            vectors=np.zeros((0, int(dimension)), dtype=np.float32),
            play_time_ms=np.zeros(0, dtype=np.float64),
            duration_ms=np.zeros(0, dtype=np.float64),
            time_ms=np.zeros(0, dtype=np.int64),
        )

    def __len__(self) -> int:
        return len(self.video_ids)

    @property
    def dimension(self) -> int:
        """Length of each history vector."""
        return int(self.vectors.shape[1])

    def most_recent(self, limit: int) -> WatchHistory:
        """Return the last ``limit`` items, or this history when it is no longer than that."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        if len(self) <= limit:
            return self
        start = len(self) - limit
        return WatchHistory(
            video_ids=self.video_ids[start:],
            vectors=self.vectors[start:],
            play_time_ms=self.play_time_ms[start:],
            duration_ms=self.duration_ms[start:],
            time_ms=None if self.time_ms is None else self.time_ms[start:],
        )


def _column(name: str, values: object, count: int, dtype: type[np.generic]) -> NDArray:
    array = np.asarray(values)
    if array.shape != (count,):
        raise ValueError(f"history {name} must have shape ({count},) to match {count} video ids, got {array.shape}")
    if dtype is np.int64 and array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"history {name} must contain integers (epoch ms), got dtype {array.dtype}")
    return array.astype(dtype, copy=False)
