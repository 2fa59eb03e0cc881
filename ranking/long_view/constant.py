"""A long-view model that gives every candidate the same probability."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ranking.long_view.history import WatchHistory
from ranking.long_view.interface import check_candidates
from ranking.long_view.model_file import FORMAT_VERSION, LongViewModelError, write_model_file

__all__ = ["ConstantLongViewModel"]


class ConstantLongViewModel:
    """f_seq that ignores history and candidate, for tests and for callers without a trained model."""

    KIND = "constant"

    def __init__(self, probability: float) -> None:
        value = float(probability)
        if math.isnan(value) or not 0.0 <= value <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {probability!r}")
        self._probability = value

    def __repr__(self) -> str:
        return f"ConstantLongViewModel({self._probability!r})"

    @property
    def probability(self) -> float:
        """Probability returned for every candidate."""
        return self._probability

    @property
    def embedding_model_version(self) -> str | None:
        """None, because the model reads no vectors and works in any embedding space."""
        return None

    def predict(
        self,
        history: WatchHistory,
        candidate_ids: Sequence[str],
        candidate_vectors: NDArray[np.float32],
    ) -> NDArray[np.float64]:
        """Return ``probability`` for each candidate, after the same input checks as other models."""
        check_candidates(history, candidate_ids, candidate_vectors)
        return np.full(len(candidate_ids), self._probability, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready model file content."""
        return {"format_version": FORMAT_VERSION, "kind": self.KIND, "probability": self._probability}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> ConstantLongViewModel:
        """Rebuild the model from ``to_dict`` output; raises LongViewModelError naming ``source``."""
        if data.get("kind") != cls.KIND:
            raise LongViewModelError(f"long-view model {source} has kind {data.get('kind')!r}, expected {cls.KIND!r}")
        try:
            return cls(data["probability"])
        except KeyError as error:
            raise LongViewModelError(f"long-view model {source} is missing field {error}") from error
        except (TypeError, ValueError) as error:
            raise LongViewModelError(f"long-view model {source} has an invalid field: {error}") from error

    def save(self, path: str | Path) -> None:
        """Write the model file to ``path``, replacing it atomically."""
        write_model_file(path, self.to_dict())
