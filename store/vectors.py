"""Values that the store reader returns: a user's stored vector and a matrix of video vectors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class StoredVector:
    """The newest UserInterest record of one user, as the store keeps it.

    The reader returns ``vector`` as a read-only float32 view of the stored bytes.
    """

    user_id: str
    vector: NDArray[np.float32]
    """Unit L2 norm, or all zeros when the user's preference weights sum to 0."""
    embedding_model_version: str
    """Model version of the video embeddings summed; score only against videos of this version."""
    event_count: int
    """Number of watch events summed into the vector."""
    total_weight: float
    """Sum of the preference weights, before normalisation."""
    last_event_time_ms: int
    """Newest contributing event time, epoch ms."""
    emit_time_ms: int
    """Wall-clock time at which the feature job emitted the record, epoch ms."""

    def age_ms(self, now_ms: int) -> int:
        """Return ``now_ms - last_event_time_ms``: how old the newest contributing event is at ``now_ms``."""
        return now_ms - self.last_event_time_ms


@dataclass(frozen=True)
class VideoVectors:
    """Vectors of requested videos in one embedding model version, in request order.

    ``matrix`` has one float32 row per requested video id, and the row of a video the store
    lacks is zeros. When the store has none of the requested videos in that version, the
    dimension is unknown and ``matrix`` has shape ``(len(video_ids), 0)``.
    """

    matrix: NDArray[np.float32]
    found: NDArray[np.bool_]
    """True where the store has the video's vector, per requested id."""
