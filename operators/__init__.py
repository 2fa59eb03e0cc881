"""DreamUMM math as pure functions, with no Flink or Kafka dependency.

- ``preference``: weight ``a_j = 1 / (1 + exp(-alpha * (w_j - t_j)))`` of a watch event.
- ``threshold``: long-view threshold rules ``t_j`` from the video duration.
- ``interest``: per-user running state, its byte encoding and normalisation.
- ``reference``: float64 batch computation from an events table, for checks.
"""

from operators.interest import FORMAT_VERSION, HEADER_SIZE, InterestAccumulator, cosine, normalise, normalise_rows
from operators.preference import preference_weight, preference_weights
from operators.reference import REFERENCE_EVENT_COLUMNS, ReferenceInterest, reference_interests
from operators.threshold import (
    DEFAULT_NO_DURATION_THRESHOLD_MS,
    DEFAULT_THRESHOLD_RULE,
    DurationBucketThreshold,
    DurationFractionThreshold,
    FixedThreshold,
    ThresholdRule,
)

__all__ = [
    "DEFAULT_NO_DURATION_THRESHOLD_MS",
    "DEFAULT_THRESHOLD_RULE",
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "REFERENCE_EVENT_COLUMNS",
    "DurationBucketThreshold",
    "DurationFractionThreshold",
    "FixedThreshold",
    "InterestAccumulator",
    "ReferenceInterest",
    "ThresholdRule",
    "cosine",
    "normalise",
    "normalise_rows",
    "preference_weight",
    "preference_weights",
    "reference_interests",
]
