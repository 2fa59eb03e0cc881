"""Bootstrap confidence intervals by user, and paired intervals of the difference of two methods.

All methods of a window are resampled with the same draws of users, so the interval of a
difference accounts for the users the two methods share, which is narrower and more honest
than comparing two separate intervals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from evaluation.results import MethodResult, WindowData, metric_value

__all__ = ["Estimate", "UserBootstrap"]


@dataclass(frozen=True)
class Estimate:
    """A metric's value on all users with its bootstrap percentile interval."""

    value: float
    low: float
    high: float

    @property
    def above_zero(self) -> bool:
        """Whether the whole interval lies above 0: a difference that is positive beyond the noise."""
        return self.low > 0.0

    @property
    def below_zero(self) -> bool:
        """Whether the whole interval lies below 0: a difference that is negative beyond the noise."""
        return self.high < 0.0

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies entirely above or below 0, so a difference is beyond the noise."""
        return self.above_zero or self.below_zero


class UserBootstrap:
    """Resamples of a window's users, drawn once and shared by every method and metric."""

    def __init__(self, data: WindowData, resamples: int, level: float, seed: int) -> None:
        if resamples < 1:
            raise ValueError(f"resamples must be >= 1, got {resamples}")
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {level}")
        self.data = data
        self.level = level
        user_count = len(data.users)
        self._draws = np.random.default_rng(seed).integers(0, user_count, size=(resamples, user_count))
        self._samples: dict[tuple[str, str], NDArray[np.float64]] = {}

    @property
    def resamples(self) -> int:
        """Number of resamples."""
        return int(self._draws.shape[0])

    def estimate(self, result: MethodResult, metric: str) -> Estimate:
        """Return the metric of one method with its interval."""
        return self._estimate(metric_value(self.data, result, metric), self._samples_of(result, metric))

    def difference(self, result: MethodResult, baseline: MethodResult, metric: str) -> Estimate:
        """Return ``result - baseline`` for one metric with the paired interval of the difference."""
        value = metric_value(self.data, result, metric) - metric_value(self.data, baseline, metric)
        return self._estimate(value, self._samples_of(result, metric) - self._samples_of(baseline, metric))

    def _samples_of(self, result: MethodResult, metric: str) -> NDArray[np.float64]:
        key = (result.name, metric)
        if key not in self._samples:
            if metric == "auc":
                samples = np.array([metric_value(self.data, result, metric, draw) for draw in self._draws],
                                   dtype=np.float64)
            else:
                samples = self._per_user_samples(result, metric)
            self._samples[key] = samples
        return self._samples[key]

    def _per_user_samples(self, result: MethodResult, metric: str) -> NDArray[np.float64]:
        """Return ``metric_value`` of every resample at once, for the metrics kept per user."""
        values = result.per_user[metric][self._draws]
        defined = ~np.isnan(values)
        weights = result.user_weights[self._draws] if metric == "user_auc" else np.ones(values.shape)
        weights = np.where(defined, weights, 0.0)
        totals = weights.sum(axis=1)
        weighted = np.where(defined, values, 0.0) * weights
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(totals > 0, weighted.sum(axis=1) / totals, np.nan)

    def _estimate(self, value: float, samples: NDArray[np.float64]) -> Estimate:
        defined = samples[~np.isnan(samples)]
        if defined.size == 0 or math.isnan(value):
            return Estimate(value=value, low=float("nan"), high=float("nan"))
        tail = (1.0 - self.level) / 2.0 * 100.0
        low, high = np.percentile(defined, [tail, 100.0 - tail])
        return Estimate(value=value, low=float(low), high=float(high))
