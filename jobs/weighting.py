"""The preference weight of one watch event, configured from the settings."""

from __future__ import annotations

import numpy as np

from dreamumm.config import (
    DurationBucketThresholdSettings,
    DurationFractionThresholdSettings,
    FixedThresholdSettings,
    PreferenceSettings,
)
from operators import (
    DurationBucketThreshold,
    DurationFractionThreshold,
    FixedThreshold,
    ThresholdRule,
    preference_weight,
    preference_weights,
)


def build_threshold_rule(settings: PreferenceSettings) -> ThresholdRule:
    """Translate the threshold section of the configuration into an ``operators`` rule."""
    threshold = settings.threshold
    if isinstance(threshold, FixedThresholdSettings):
        return FixedThreshold(value_ms=threshold.threshold_ms,
                              no_duration_threshold_ms=threshold.no_duration_threshold_ms)
    if isinstance(threshold, DurationFractionThresholdSettings):
        return DurationFractionThreshold(
            fraction=threshold.fraction,
            floor_ms=threshold.floor_ms,
            cap_ms=threshold.cap_ms,
            no_duration_threshold_ms=threshold.no_duration_threshold_ms,
        )
    if isinstance(threshold, DurationBucketThresholdSettings):
        return DurationBucketThreshold(
            buckets=threshold.buckets,
            above_ms=threshold.above_ms,
            no_duration_threshold_ms=threshold.no_duration_threshold_ms,
        )
    raise TypeError(f"unsupported threshold settings {threshold!r}")


class EventWeigher:
    """Calculator of the preference weight a = 1 / (1 + exp(-alpha * (w - t(duration)))) of events."""

    def __init__(self, settings: PreferenceSettings) -> None:
        self._alpha_per_s = settings.alpha_per_s
        self._rule = build_threshold_rule(settings)

    def weight(self, watch_time_ms: float, duration_ms: int | None) -> float:
        """Return the weight of one event; a duration of None or 0 means the duration is missing."""
        return preference_weight(watch_time_ms, self._rule.threshold_ms(duration_ms), self._alpha_per_s)

    def weights(self, watch_times_ms: np.ndarray, durations_ms: np.ndarray) -> np.ndarray:
        """Return the weights of many events; a NaN duration means the duration is missing."""
        return preference_weights(watch_times_ms, self._rule.thresholds_ms(durations_ms), self._alpha_per_s)
