"""Candidate-DreamUMM against its formula mu = sum_i a_i x_i / ||sum_i a_i x_i||."""

from __future__ import annotations

from decimal import Decimal, getcontext

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ranking import candidate_dreamumm_vector


def decimal_formula(probabilities: np.ndarray, vectors: np.ndarray) -> list[float] | None:
    """The formula in Decimal arithmetic, independent of numpy's summation."""
    getcontext().prec = 50
    total = [sum((Decimal(float(a)) * Decimal(float(x)) for a, x in zip(probabilities, column)), Decimal(0))
             for column in vectors.T]
    norm = sum((value * value for value in total), Decimal(0)).sqrt()
    if norm == 0:
        return None
    return [float(value / norm) for value in total]


def test_two_candidates_by_hand() -> None:
    vector = candidate_dreamumm_vector([0.5, 1.0], [[1.0, 0.0], [0.0, 1.0]])
    # sum = (0.5, 1.0), norm = sqrt(1.25)
    assert vector == pytest.approx([0.5 / 1.25 ** 0.5, 1.0 / 1.25 ** 0.5], abs=1e-7)
    assert vector.dtype == np.float32


unit_rows = arrays(np.float64, st.tuples(st.integers(1, 12), st.integers(2, 8)),
                   elements=st.floats(-1.0, 1.0, allow_nan=False, width=32))


@settings(max_examples=200, deadline=None)
@given(unit_rows, st.data())
def test_equals_the_formula(vectors: np.ndarray, data: st.DataObject) -> None:
    probabilities = np.array(data.draw(st.lists(st.floats(0.0, 1.0, width=32), min_size=len(vectors),
                                                max_size=len(vectors))))
    expected = decimal_formula(probabilities, vectors)
    result = candidate_dreamumm_vector(probabilities, vectors)
    if expected is None:
        assert result is None
    elif result is not None:
        # float32 output; a sum that nearly cancels may lose direction only at float64 precision.
        assert np.allclose(result, expected, atol=1e-6)
        assert float(np.linalg.norm(result.astype(np.float64))) == pytest.approx(1.0, abs=1e-6)
    else:
        assert max(abs(value) for value in expected) > 0


def test_no_candidates_or_zero_weights_have_no_direction() -> None:
    assert candidate_dreamumm_vector([], np.zeros((0, 4))) is None
    assert candidate_dreamumm_vector([0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]]) is None


@pytest.mark.parametrize("probabilities, vectors, message", [
    ([0.5, 1.5], [[1.0, 0.0], [0.0, 1.0]], "lie in \\[0, 1\\], got 1.5"),
    ([0.5, float("nan")], [[1.0, 0.0], [0.0, 1.0]], "lie in \\[0, 1\\], got nan"),
    ([0.5], [[1.0, 0.0], [0.0, 1.0]], "one row per probability \\(1\\), got shape \\(2, 2\\)"),
    ([[0.5]], [[1.0, 0.0]], "1-D array, got shape \\(1, 1\\)"),
])
def test_rejects_bad_input(probabilities: object, vectors: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        candidate_dreamumm_vector(probabilities, vectors)
