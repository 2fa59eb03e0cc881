"""The long-view model interface f_seq(history, candidate) and the checks of its inputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from ranking.long_view.history import WatchHistory

__all__ = ["LongViewModel", "check_candidates"]


@runtime_checkable
class LongViewModel(Protocol):
    """f_seq: probability that the user long-views each candidate, given their history."""

    @property
    def embedding_model_version(self) -> str | None:
        """Embedding model version whose space the model's similarity features assume, or None for any."""
        ...

    def predict(
        self,
        history: WatchHistory,
        candidate_ids: Sequence[str],
        candidate_vectors: NDArray[np.float32],
    ) -> NDArray[np.float64]:
        """Return the (m,) long-view probabilities in [0, 1] of the m candidates.

        Raises ValueError when ``candidate_vectors`` is not (m, d) for m candidate ids, or d
        differs from the history's dimension.
        """
        ...


def check_candidates(
    history: WatchHistory,
    candidate_ids: Sequence[str],
    candidate_vectors: NDArray[np.float32],
    expected_dimension: int | None = None,
) -> NDArray[np.float32]:
    """Validate the candidates of a ``predict`` call and return their vectors as float32.

    Raises:
        TypeError: if ``history`` is not a WatchHistory or ``candidate_ids`` is a single string.
        ValueError: if the vectors are not (m, d) for the m ids, d differs from the history's
            dimension, or d differs from ``expected_dimension`` when one is given.
    """
    if not isinstance(history, WatchHistory):
        raise TypeError(f"history must be a WatchHistory, got {type(history).__name__}")
    if isinstance(candidate_ids, (str, bytes)):
        raise TypeError("candidate_ids must be a sequence of video ids, got a single string")
    vectors = np.asarray(candidate_vectors, dtype=np.float32)
    count = len(candidate_ids)
    if count == 0 and vectors.size == 0:
        # With no candidates there is no dimension to compare, so any empty array is accepted.
        return vectors.reshape(0, history.dimension)
    if vectors.ndim != 2 or vectors.shape[0] != count:
        raise ValueError(
            f"candidate_vectors must have shape ({count}, d) to match {count} candidate ids, got shape {vectors.shape}"
        )
    if vectors.shape[1] != history.dimension:
        raise ValueError(
            f"candidate vectors have dimension {vectors.shape[1]}, but the history vectors have dimension "
            f"{history.dimension}; pass both in the same embedding space"
        )
    if expected_dimension is not None and vectors.shape[1] != expected_dimension:
        raise ValueError(
            f"the model expects vectors of dimension {expected_dimension} (its embedding space), "
            f"got dimension {vectors.shape[1]}"
        )
    return vectors
