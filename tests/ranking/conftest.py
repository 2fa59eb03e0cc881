"""In-memory stand-ins for the feature store and the long-view model, for unit tests of pure ranking
code, offered as fixtures."""

from __future__ import annotations

from collections.abc import Callable

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest
from numpy.typing import NDArray

from ranking.long_view import WatchHistory
from store import StoredVector, VideoVectors

MODEL_VERSION = "test-space-v1"


@dataclass
class MemoryStore:
    """Users and videos in dictionaries, with the reader's ``get`` and ``video_vectors``."""

    users: dict[str, StoredVector] = field(default_factory=dict)
    videos: dict[tuple[str, str], NDArray[np.float32]] = field(default_factory=dict)

    def get(self, user_id: str) -> StoredVector | None:
        return self.users.get(user_id)

    def video_vectors(self, model_version: str, video_ids: Sequence[str]) -> VideoVectors:
        rows = [self.videos.get((model_version, video_id)) for video_id in video_ids]
        found = np.array([row is not None for row in rows], dtype=bool)
        dimension = next((row.shape[0] for row in rows if row is not None), 0)
        matrix = np.zeros((len(video_ids), dimension), dtype=np.float32)
        for index, row in enumerate(rows):
            if row is not None:
                matrix[index] = row
        return VideoVectors(matrix=matrix, found=found)


@dataclass
class TableModel:
    """A long-view model that returns a fixed probability per candidate and records its calls."""

    probabilities: dict[str, float]
    embedding_model_version: str | None = MODEL_VERSION
    calls: list[tuple[WatchHistory, list[str]]] = field(default_factory=list)

    def predict(self, history: WatchHistory, candidate_ids: Sequence[str],
                candidate_vectors: NDArray[np.float32]) -> NDArray[np.float64]:
        self.calls.append((history, list(candidate_ids)))
        return np.array([self.probabilities[video_id] for video_id in candidate_ids], dtype=np.float64)


def stored_vector(user_id: str, vector: Sequence[float], event_count: int = 5, last_event_time_ms: int = 1_000,
                  model_version: str = MODEL_VERSION) -> StoredVector:
    """Return a store entry with a normalised copy of ``vector``."""
    values = np.asarray(vector, dtype=np.float64)
    norm = np.linalg.norm(values)
    unit = (values / norm if norm > 0 else values).astype(np.float32)
    return StoredVector(user_id=user_id, vector=unit, embedding_model_version=model_version,
                        event_count=event_count, total_weight=float(event_count) / 2,
                        last_event_time_ms=last_event_time_ms, emit_time_ms=last_event_time_ms + 10)


@pytest.fixture
def memory_store() -> MemoryStore:
    """An empty in-memory store."""
    return MemoryStore()


@pytest.fixture
def make_stored_vector() -> Callable[..., StoredVector]:
    """The ``stored_vector`` factory."""
    return stored_vector


@pytest.fixture
def table_model() -> Callable[..., TableModel]:
    """The ``TableModel`` class, to build models with fixed probabilities."""
    return TableModel
