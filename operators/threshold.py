"""Long-view threshold rules: the watch time t_j at which a video counts as watched.

Each rule is a frozen dataclass with a scalar ``threshold_ms(duration_ms)`` for
per-event code and a vectorised ``thresholds_ms(durations_ms)``. Both return
milliseconds as float.

Rule for videos without a duration: a duration of 0 or a missing duration (``None``
in the scalar form, NaN in the vector form) gets the rule's
``no_duration_threshold_ms``. This covers image posts, which have duration 0 in the
KuaiRand event log (3.2% of the events of the shipped sample) and no duration in
its video table. A negative or infinite duration is invalid and raises ValueError.

Default rule, fitted to the KuaiRand data in ``data/kuairand/``: the dataset's own
``long_view`` label equals ``play_time_ms >= min(duration_ms, 18000)`` on 4,258 of
the 4,264 sample events with a positive duration (99.86%). The 6 other events are
labelled long views although the play time is 0.08% to 5.8% short of the duration.
``DEFAULT_THRESHOLD_RULE`` is therefore ``clip(1.0 * duration, 5000, 18000)``:
- The 18 s cap reproduces the label.
- The 5 s floor stops a very short clip from counting as a long view after a
  second or two. It never binds on KuaiRand, where every video with a duration is
  at least 5,000 ms long, so the rule still reproduces the label there.
- Videos without a duration get the cap, 18 s, as their threshold. None of the 141
  duration-0 sample events is labelled ``long_view``, and none has a play time
  above 11.8 s, so the label and this rule agree on all of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "DEFAULT_NO_DURATION_THRESHOLD_MS",
    "DEFAULT_THRESHOLD_RULE",
    "DurationBucketThreshold",
    "DurationFractionThreshold",
    "FixedThreshold",
    "ThresholdRule",
]

DEFAULT_NO_DURATION_THRESHOLD_MS = 18_000.0
"""Threshold for videos without a duration, equal to the cap of the default rule."""


@runtime_checkable
class ThresholdRule(Protocol):
    """Interface shared by the long-view threshold rules."""

    def threshold_ms(self, duration_ms: int | float | None) -> float: ...

    def thresholds_ms(self, durations_ms: ArrayLike) -> NDArray[np.float64]: ...


def _require_finite_non_negative(name: str, value: float) -> float:
    number = float(value)
    if not 0.0 <= number < math.inf:
        raise ValueError(f"{name} must be a finite number >= 0 ms, got {value!r}")
    return number


def _positive_duration(duration_ms: int | float | None) -> float | None:
    """Return the duration as float, or None when it is missing or zero.

    Raises ValueError for a negative or infinite duration.
    """
    if duration_ms is None:
        return None
    duration = float(duration_ms)
    if math.isnan(duration) or duration == 0.0:
        return None
    if not 0.0 < duration < math.inf:
        raise ValueError(
            f"duration_ms must be a finite number >= 0, None or NaN, got {duration_ms!r}"
        )
    return duration


def _durations_array(durations_ms: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Convert durations to float64 and return them with the missing-duration mask."""
    durations = np.asarray(durations_ms, dtype=np.float64)
    missing = np.isnan(durations) | (durations == 0.0)
    invalid = ~missing & ~((durations > 0.0) & np.isfinite(durations))
    if invalid.any():
        index = np.unravel_index(int(np.flatnonzero(invalid)[0]), durations.shape)
        raise ValueError(
            f"duration_ms must be finite and >= 0 (NaN means missing), got "
            f"{float(durations[index])!r} at index {tuple(int(i) for i in index)}"
        )
    return durations, missing


@dataclass(frozen=True)
class FixedThreshold:
    """Same threshold for every video, whatever its duration.

    ``no_duration_threshold_ms`` defaults to ``value_ms``.
    """

    value_ms: float
    no_duration_threshold_ms: float | None = None

    def __post_init__(self) -> None:
        value = _require_finite_non_negative("value_ms", self.value_ms)
        object.__setattr__(self, "value_ms", value)
        if self.no_duration_threshold_ms is None:
            object.__setattr__(self, "no_duration_threshold_ms", value)
        else:
            no_duration = _require_finite_non_negative(
                "no_duration_threshold_ms", self.no_duration_threshold_ms
            )
            object.__setattr__(self, "no_duration_threshold_ms", no_duration)

    def threshold_ms(self, duration_ms: int | float | None) -> float:
        """Return the threshold in ms for one video."""
        if _positive_duration(duration_ms) is None:
            return self._no_duration_ms()
        return self.value_ms

    def thresholds_ms(self, durations_ms: ArrayLike) -> NDArray[np.float64]:
        """Return the float64 thresholds in ms for an array of durations."""
        _, missing = _durations_array(durations_ms)
        return np.where(missing, self._no_duration_ms(), self.value_ms)

    def _no_duration_ms(self) -> float:
        # __post_init__ has replaced None by value_ms.
        return self.value_ms if self.no_duration_threshold_ms is None else self.no_duration_threshold_ms


@dataclass(frozen=True)
class DurationFractionThreshold:
    """Threshold ``clip(fraction * duration_ms, floor_ms, cap_ms)``.

    ``cap_ms`` may be ``math.inf`` for no cap.
    """

    fraction: float
    floor_ms: float
    cap_ms: float
    no_duration_threshold_ms: float = DEFAULT_NO_DURATION_THRESHOLD_MS

    def __post_init__(self) -> None:
        fraction = float(self.fraction)
        if not 0.0 < fraction < math.inf:
            raise ValueError(f"fraction must be a finite number > 0, got {self.fraction!r}")
        floor = _require_finite_non_negative("floor_ms", self.floor_ms)
        cap = float(self.cap_ms)
        if math.isnan(cap) or cap < floor:
            raise ValueError(
                f"cap_ms must be >= floor_ms ({floor!r}) or math.inf for no cap, "
                f"got {self.cap_ms!r}"
            )
        no_duration = _require_finite_non_negative(
            "no_duration_threshold_ms", self.no_duration_threshold_ms
        )
        object.__setattr__(self, "fraction", fraction)
        object.__setattr__(self, "floor_ms", floor)
        object.__setattr__(self, "cap_ms", cap)
        object.__setattr__(self, "no_duration_threshold_ms", no_duration)

    def threshold_ms(self, duration_ms: int | float | None) -> float:
        """Return the threshold in ms for one video."""
        duration = _positive_duration(duration_ms)
        if duration is None:
            return self.no_duration_threshold_ms
        return min(max(self.fraction * duration, self.floor_ms), self.cap_ms)

    def thresholds_ms(self, durations_ms: ArrayLike) -> NDArray[np.float64]:
        """Return the float64 thresholds in ms for an array of durations."""
        durations, missing = _durations_array(durations_ms)
        # Missing entries are NaN or 0 here. np.where replaces them afterwards.
        clipped = np.minimum(np.maximum(self.fraction * durations, self.floor_ms), self.cap_ms)
        return np.where(missing, self.no_duration_threshold_ms, clipped)


@dataclass(frozen=True)
class DurationBucketThreshold:
    """Threshold looked up by duration in a table of buckets.

    ``buckets`` is a tuple of ``(upper_bound_ms, threshold_ms)`` pairs with strictly
    increasing upper bounds. A video gets the threshold of the first bucket whose
    upper bound is >= its duration, and ``above_ms`` when its duration exceeds the
    last upper bound.
    """

    buckets: tuple[tuple[float, float], ...]
    above_ms: float
    no_duration_threshold_ms: float = DEFAULT_NO_DURATION_THRESHOLD_MS

    def __post_init__(self) -> None:
        if len(self.buckets) == 0:
            raise ValueError("buckets must contain at least one (upper_bound_ms, threshold_ms) pair")

        normalised: list[tuple[float, float]] = []
        previous_bound = 0.0
        for position, bucket in enumerate(self.buckets):
            if len(bucket) != 2:
                raise ValueError(
                    f"bucket {position} must be an (upper_bound_ms, threshold_ms) pair, got {bucket!r}"
                )
            bound = float(bucket[0])
            if not previous_bound < bound < math.inf:
                raise ValueError(
                    f"bucket upper bounds must be finite, > 0 and strictly increasing, "
                    f"but bucket {position} has upper_bound_ms={bucket[0]!r} after "
                    f"{previous_bound!r}; sort the buckets by upper bound and remove duplicates"
                )
            threshold = _require_finite_non_negative(f"bucket {position} threshold_ms", bucket[1])
            normalised.append((bound, threshold))
            previous_bound = bound

        object.__setattr__(self, "buckets", tuple(normalised))
        object.__setattr__(self, "above_ms", _require_finite_non_negative("above_ms", self.above_ms))
        object.__setattr__(
            self,
            "no_duration_threshold_ms",
            _require_finite_non_negative("no_duration_threshold_ms", self.no_duration_threshold_ms),
        )

    def threshold_ms(self, duration_ms: int | float | None) -> float:
        """Return the threshold in ms for one video."""
        duration = _positive_duration(duration_ms)
        if duration is None:
            return self.no_duration_threshold_ms
        for upper_bound, threshold in self.buckets:
            if duration <= upper_bound:
                return threshold
        return self.above_ms

    def thresholds_ms(self, durations_ms: ArrayLike) -> NDArray[np.float64]:
        """Return the float64 thresholds in ms for an array of durations."""
        durations, missing = _durations_array(durations_ms)
        bounds = np.array([bound for bound, _ in self.buckets], dtype=np.float64)
        table = np.array([threshold for _, threshold in self.buckets] + [self.above_ms])
        # side="left" finds the first bound >= duration. NaN sorts last, and its
        # entry is replaced by the no-duration threshold below.
        positions = np.searchsorted(bounds, durations, side="left")
        return np.where(missing, self.no_duration_threshold_ms, table[positions])


DEFAULT_THRESHOLD_RULE = DurationFractionThreshold(
    fraction=1.0,
    floor_ms=5_000.0,
    cap_ms=18_000.0,
    no_duration_threshold_ms=DEFAULT_NO_DURATION_THRESHOLD_MS,
)
"""Long-view rule that reproduces KuaiRand's ``long_view`` label (see the module docstring)."""
