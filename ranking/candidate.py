"""Candidate-DreamUMM: a user vector built from the request's candidates instead of the history.

For a user without a usable stored vector, the method weighs each candidate video by its
predicted long-view probability ``a_i = f_seq(history, candidate_i)`` and normalises the sum:
``mu = sum_i a_i x_i / ||sum_i a_i x_i||``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from operators import normalise


def candidate_dreamumm_vector(probabilities: ArrayLike, candidate_vectors: ArrayLike) -> NDArray[np.float32] | None:
    """Return the normalised sum of ``a_i * x_i`` over the candidates, or None if it has no direction.

    ``probabilities`` has one value in [0, 1] per candidate and ``candidate_vectors`` one row per
    candidate. The sum is taken in float64. It has no direction when there are no candidates, when
    every probability is 0, or when the weighted rows cancel out.

    Raises:
        ValueError: if the shapes disagree or a probability is outside [0, 1] or not finite.
    """
    weights = np.asarray(probabilities, dtype=np.float64)
    vectors = np.asarray(candidate_vectors, dtype=np.float64)
    if weights.ndim != 1:
        raise ValueError(f"probabilities must be a 1-D array, got shape {weights.shape}")
    if vectors.ndim != 2 or vectors.shape[0] != weights.shape[0]:
        raise ValueError(f"candidate_vectors must have one row per probability ({weights.shape[0]}), "
                         f"got shape {vectors.shape}")
    if not np.all((weights >= 0.0) & (weights <= 1.0)):
        bad = weights[~((weights >= 0.0) & (weights <= 1.0))][0]
        raise ValueError(f"probabilities must lie in [0, 1], got {float(bad)!r}")
    if weights.size == 0 or vectors.shape[1] == 0:
        return None
    return normalise(weights @ vectors, dtype=np.float32)
