"""Unit tests of the vectorised row normalisation against the scalar one."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from operators import normalise, normalise_rows

FINITE_OR_NOT = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 8)), elements=FINITE_OR_NOT))
def test_rows_match_scalar_normalise(matrix: np.ndarray) -> None:
    units, valid = normalise_rows(matrix)
    for row in range(matrix.shape[0]):
        expected = normalise(matrix[row])
        assert valid[row] == (expected is not None)
        if expected is not None:
            np.testing.assert_allclose(units[row], expected, rtol=1e-6, atol=1e-7)
        else:
            assert not units[row].any()


def test_zero_row_is_invalid() -> None:
    units, valid = normalise_rows(np.array([[0.0, 0.0], [3.0, 4.0]]))
    assert valid.tolist() == [False, True]
    np.testing.assert_allclose(units[1], [0.6, 0.8], rtol=1e-6)


def test_rejects_one_dimensional_input() -> None:
    with pytest.raises(ValueError, match="2-D"):
        normalise_rows(np.array([1.0, 2.0]))
