"""DreamUMM preference weight of one watch event.

The weight of a watched video is a logistic function of how far the watch time is
past the long-view threshold::

    z = alpha_per_s * (watch_ms - threshold_ms) / 1000
    a = 1 / (1 + exp(-z))

Watch time and threshold are in milliseconds and ``alpha_per_s`` is the sensitivity
in 1/second, so ``alpha_per_s = 1`` moves the weight from 0.27 to 0.73 across two
seconds around the threshold.

Both functions evaluate ``1 / (1 + exp(-z))`` directly. When ``z < -709.78``,
``exp(-z)`` exceeds the float64 range, and the weight is returned as 0.0 (the exact
value is below 1e-308). When ``z`` is large, ``exp(-z)`` underflows to 0 and the
weight is 1.0. Overflow in ``watch_ms - threshold_ms`` gives ``z = ±inf``, which
saturates the same way. So any finite or infinite input gives a weight in [0, 1]
with no floating-point warning. Negative ``z`` uses the same form, because the
usual alternative ``exp(z) / (1 + exp(z))`` is not monotone in the last bit. The
tests check that the weight is monotone in watch time.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["preference_weight", "preference_weights"]

_MS_PER_S = 1000.0


def _check_alpha(alpha_per_s: float) -> float:
    alpha = float(alpha_per_s)
    if not 0.0 < alpha < math.inf:
        raise ValueError(
            f"alpha_per_s must be a finite number > 0 (1/second), got {alpha_per_s!r}"
        )
    return alpha


def preference_weight(watch_ms: float, threshold_ms: float, alpha_per_s: float) -> float:
    """Compute the preference weight in [0, 1] of one watch event.

    This is the scalar fast path for per-event streaming code. It uses the
    ``math`` module only and matches ``preference_weights`` to within a few ulps,
    because numpy's ``exp`` may round differently from the C library's.

    Raises:
        ValueError: if ``alpha_per_s`` is not finite and positive, or if the weight
            is undefined: an input is NaN, or watch time and threshold are the same
            infinity.
    """
    alpha = _check_alpha(alpha_per_s)
    watch = float(watch_ms)
    threshold = float(threshold_ms)

    z = (watch - threshold) / _MS_PER_S * alpha
    if math.isnan(z):
        raise ValueError(
            f"preference weight is undefined for watch_ms={watch_ms!r}, "
            f"threshold_ms={threshold_ms!r}; pass finite, non-NaN times"
        )

    try:
        return 1.0 / (1.0 + math.exp(-z))
    except OverflowError:
        # exp(-z) is above the float64 maximum, so the weight is below 1e-308.
        return 0.0


def preference_weights(
    watch_ms: ArrayLike, threshold_ms: ArrayLike, alpha_per_s: float
) -> NDArray[np.float64]:
    """Compute the float64 preference weights of many watch events.

    ``watch_ms`` and ``threshold_ms`` are broadcast against each other, so a single
    threshold may be given for all events. The result has the broadcast shape.

    NaN is rejected, the same as in ``preference_weight``. The vector form also
    raises instead of returning NaN, because one NaN weight would make the whole
    interest vector NaN.

    Raises:
        ValueError: if ``alpha_per_s`` is not finite and positive, or if any
            element is NaN or has watch time and threshold equal to the same
            infinity. The message names the first such element and its index.
    """
    alpha = _check_alpha(alpha_per_s)
    watch = np.asarray(watch_ms, dtype=np.float64)
    threshold = np.asarray(threshold_ms, dtype=np.float64)

    # Overflow to ±inf is the intended saturation, underflow of a tiny difference
    # to 0 gives the correct weight 0.5, and NaN is checked below.
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        z = (watch - threshold) / _MS_PER_S * alpha

    undefined = np.isnan(z)
    if undefined.any():
        watch_b, threshold_b = np.broadcast_arrays(watch, threshold)
        index = np.unravel_index(int(np.flatnonzero(undefined)[0]), z.shape)
        raise ValueError(
            f"preference weight is undefined at index {tuple(int(i) for i in index)}: "
            f"watch_ms={float(watch_b[index])!r}, threshold_ms={float(threshold_b[index])!r}; "
            f"{int(undefined.sum())} element(s) in total are NaN or have equal infinite "
            "times. Drop or repair those events before weighting them"
        )

    # exp(-z) overflows to inf for z < -709.78 (weight 0.0) and underflows for
    # large z (weight 1.0). The result may be subnormal just before it reaches 0.
    with np.errstate(over="ignore", under="ignore"):
        weights = 1.0 / (1.0 + np.exp(-z))
    return np.asarray(weights, dtype=np.float64)
