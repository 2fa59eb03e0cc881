"""Tests for operators.preference against a high-precision Decimal reference."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from decimal import Decimal, localcontext

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.preference import preference_weight, preference_weights

FAST = settings(max_examples=150, deadline=None)

any_time = st.floats(allow_nan=False, allow_infinity=True)
finite_time = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False)
alphas = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False)
any_alpha = st.floats(min_value=1e-300, max_value=1e308, allow_nan=False)


@contextlib.contextmanager
def strict_floating_point() -> Iterator[None]:
    """Turn every numpy floating-point flag and every warning into an error."""
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        yield


def decimal_weight(watch_ms: float, threshold_ms: float, alpha_per_s: float) -> float:
    """Logistic weight evaluated with 50 significant digits, then rounded to float."""
    with localcontext() as context:
        context.prec = 50
        z = Decimal(alpha_per_s) * (Decimal(watch_ms) - Decimal(threshold_ms)) / Decimal(1000)
        return float(Decimal(1) / (Decimal(1) + (-z).exp()))


def is_undefined(watch_ms: float, threshold_ms: float) -> bool:
    return math.isinf(watch_ms) and watch_ms == threshold_ms


@FAST
@given(watch_ms=any_time, threshold_ms=any_time, alpha=any_alpha)
def test_weight_in_unit_interval_without_warnings(
    watch_ms: float, threshold_ms: float, alpha: float
) -> None:
    if is_undefined(watch_ms, threshold_ms):
        return
    with strict_floating_point():
        scalar = preference_weight(watch_ms, threshold_ms, alpha)
        vector = preference_weights(np.array([watch_ms]), np.array([threshold_ms]), alpha)

    assert 0.0 <= scalar <= 1.0
    assert vector.dtype == np.float64
    assert 0.0 <= vector[0] <= 1.0


@FAST
@given(watch_ms=finite_time, threshold_ms=finite_time, alpha=alphas)
def test_weight_matches_decimal_reference(watch_ms: float, threshold_ms: float, alpha: float) -> None:
    z = alpha * (watch_ms - threshold_ms) / 1000.0
    scalar = preference_weight(watch_ms, threshold_ms, alpha)
    vector = float(preference_weights(watch_ms, threshold_ms, alpha))

    if z < -709.0:
        # exp(-z) overflows near z = -709.78, where the documented result is 0.0,
        # and the exact weight is below 1.2e-308 in this whole range.
        assert scalar <= 1.2e-308
        assert vector <= 1.2e-308
        return

    expected = decimal_weight(watch_ms, threshold_ms, alpha)
    # Rounding z in float64 changes the weight by a relative |z| * 2**-52 at most,
    # because d(log a)/dz = 1 - a <= 1.
    tolerance = 4e-16 * (abs(z) + 8.0)
    assert math.isclose(scalar, expected, rel_tol=tolerance)
    assert math.isclose(vector, expected, rel_tol=tolerance)


@FAST
@given(threshold_ms=finite_time, alpha=alphas)
def test_weight_is_half_at_threshold(threshold_ms: float, alpha: float) -> None:
    assert preference_weight(threshold_ms, threshold_ms, alpha) == 0.5
    assert preference_weights([threshold_ms], [threshold_ms], alpha)[0] == 0.5


@FAST
@given(
    watch_a=any_time,
    watch_b=any_time,
    threshold_ms=st.floats(min_value=-1e300, max_value=1e300, allow_nan=False),
    alpha=any_alpha,
)
def test_weight_monotone_in_watch_time(
    watch_a: float, watch_b: float, threshold_ms: float, alpha: float
) -> None:
    low, high = sorted((watch_a, watch_b))
    with strict_floating_point():
        assert preference_weight(low, threshold_ms, alpha) <= preference_weight(high, threshold_ms, alpha)
        weights = preference_weights([low, high], threshold_ms, alpha)
    assert weights[0] <= weights[1]


def test_weights_monotone_on_dense_sweep() -> None:
    # Neighbouring floats around the regions where rounding could break order:
    # near z = 0, in the middle of the negative branch and near exp overflow.
    centres = np.array([0.0, -3_000.0, -709_000.0, -709_782.0, 2_000.0, 36_000.0])
    sweeps = []
    for centre in centres:
        steps = np.nextafter(centre, np.inf) - centre
        sweeps.append(centre + steps * np.arange(-500, 500))
        sweeps.append(np.linspace(centre - 50.0, centre + 50.0, 20_001))
    watch = np.sort(np.concatenate(sweeps))

    with strict_floating_point():
        weights = preference_weights(watch, 0.0, 1.0)
    scalar = np.array([preference_weight(w, 0.0, 1.0) for w in watch])

    assert np.all(np.diff(weights) >= 0.0)
    assert np.all(np.diff(scalar) >= 0.0)


@pytest.mark.parametrize(
    ("watch_ms", "threshold_ms", "alpha", "expected"),
    [
        (1e308, -1e308, 1e308, 1.0),
        (-1e308, 1e308, 1e308, 0.0),
        (1e308, 0.0, 1000.0, 1.0),
        (-1e308, 0.0, 1000.0, 0.0),
        (math.inf, 0.0, 1.0, 1.0),
        (-math.inf, 0.0, 1.0, 0.0),
        (0.0, math.inf, 1.0, 0.0),
        (0.0, -math.inf, 1.0, 1.0),
        (math.inf, -math.inf, 1.0, 1.0),
        (0.0, 1e6, 1.0, 0.0),
        (1e6, 0.0, 1.0, 1.0),
        (0.0, 0.0, 1e308, 0.5),
    ],
)
def test_weight_saturates_at_extremes(
    watch_ms: float, threshold_ms: float, alpha: float, expected: float
) -> None:
    with strict_floating_point():
        scalar = preference_weight(watch_ms, threshold_ms, alpha)
        vector = preference_weights([watch_ms], [threshold_ms], alpha)[0]

    assert scalar == expected
    assert vector == expected


def test_weight_known_values() -> None:
    sigmoid_one = 1.0 / (1.0 + math.exp(-1.0))

    assert preference_weight(19_000, 18_000, 1.0) == pytest.approx(sigmoid_one, rel=1e-15)
    assert preference_weight(17_000, 18_000, 1.0) == pytest.approx(1 - sigmoid_one, rel=1e-15)
    assert preference_weight(18_500, 18_000, 2.0) == pytest.approx(sigmoid_one, rel=1e-15)


@FAST
@given(
    watch=st.lists(finite_time, min_size=1, max_size=20),
    threshold_ms=finite_time,
    alpha=alphas,
)
def test_vector_agrees_with_scalar(watch: list[float], threshold_ms: float, alpha: float) -> None:
    vector = preference_weights(np.array(watch), threshold_ms, alpha)

    assert vector.shape == (len(watch),)
    for position, watch_ms in enumerate(watch):
        scalar = preference_weight(watch_ms, threshold_ms, alpha)
        assert math.isclose(vector[position], scalar, rel_tol=1e-14, abs_tol=1e-300)


def test_vector_accepts_integer_arrays_and_broadcasts() -> None:
    watch = np.array([[1_000, 2_000], [3_000, 4_000]], dtype=np.int64)
    weights = preference_weights(watch, 2_000, 1.0)

    assert weights.shape == (2, 2)
    assert weights.dtype == np.float64
    assert weights[0, 1] == 0.5


def test_scalar_nan_raises_with_value() -> None:
    with pytest.raises(ValueError, match="watch_ms=nan"):
        preference_weight(math.nan, 1_000.0, 1.0)
    with pytest.raises(ValueError, match="threshold_ms=nan"):
        preference_weight(1_000.0, math.nan, 1.0)


def test_scalar_equal_infinities_raise() -> None:
    with pytest.raises(ValueError, match="watch_ms=inf"):
        preference_weight(math.inf, math.inf, 1.0)


def test_vector_nan_raises_with_index() -> None:
    with pytest.raises(ValueError, match=r"index \(2,\).*watch_ms=nan.*1 element"):
        preference_weights([1.0, 2.0, math.nan], [0.0, 0.0, 0.0], 1.0)
    with pytest.raises(ValueError, match=r"index \(0,\).*2 element"):
        preference_weights([-math.inf, math.nan], [-math.inf, 0.0], 1.0)


@pytest.mark.parametrize("alpha", [0.0, -1.0, math.nan, math.inf])
def test_invalid_alpha_raises(alpha: float) -> None:
    with pytest.raises(ValueError, match="alpha_per_s"):
        preference_weight(1.0, 0.0, alpha)
    with pytest.raises(ValueError, match="alpha_per_s"):
        preference_weights([1.0], [0.0], alpha)
