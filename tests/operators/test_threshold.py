"""Tests for the long-view threshold rules in operators.threshold."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.threshold import (
    DEFAULT_THRESHOLD_RULE,
    DurationBucketThreshold,
    DurationFractionThreshold,
    FixedThreshold,
    ThresholdRule,
)

FAST = settings(max_examples=150, deadline=None)

durations = st.one_of(
    st.just(0),
    st.integers(min_value=1, max_value=10**9),
    st.floats(min_value=0.0, max_value=1e12, allow_nan=False),
)

BUCKETS = DurationBucketThreshold(
    buckets=((10_000, 4_000), (60_000, 12_000), (300_000, 30_000)),
    above_ms=60_000,
    no_duration_threshold_ms=7_000,
)
RULES: list[ThresholdRule] = [
    FixedThreshold(8_000),
    DurationFractionThreshold(fraction=0.4, floor_ms=2_000, cap_ms=25_000, no_duration_threshold_ms=3_000),
    BUCKETS,
    DEFAULT_THRESHOLD_RULE,
]


def test_rules_satisfy_protocol() -> None:
    for rule in RULES:
        assert isinstance(rule, ThresholdRule)


def test_fixed_ignores_duration() -> None:
    rule = FixedThreshold(8_000)

    assert rule.threshold_ms(1) == 8_000.0
    assert rule.threshold_ms(10**9) == 8_000.0
    assert rule.threshold_ms(0) == 8_000.0
    assert rule.threshold_ms(None) == 8_000.0
    assert rule.no_duration_threshold_ms == 8_000.0


def test_fixed_no_duration_override() -> None:
    rule = FixedThreshold(8_000, no_duration_threshold_ms=2_500)

    assert rule.threshold_ms(0) == 2_500.0
    assert rule.threshold_ms(None) == 2_500.0
    assert rule.threshold_ms(math.nan) == 2_500.0
    assert rule.threshold_ms(30_000) == 8_000.0
    assert list(rule.thresholds_ms([0, np.nan, 30_000])) == [2_500.0, 2_500.0, 8_000.0]


def test_fraction_clips_to_floor_and_cap() -> None:
    rule = DurationFractionThreshold(fraction=0.5, floor_ms=3_000, cap_ms=20_000)

    assert rule.threshold_ms(2_000) == 3_000.0
    assert rule.threshold_ms(10_000) == 5_000.0
    assert rule.threshold_ms(100_000) == 20_000.0


def test_fraction_without_cap() -> None:
    rule = DurationFractionThreshold(fraction=0.5, floor_ms=0, cap_ms=math.inf)

    assert rule.threshold_ms(10**9) == 5e8


def test_bucket_lookup_uses_first_bound_at_or_above() -> None:
    assert BUCKETS.threshold_ms(1) == 4_000.0
    assert BUCKETS.threshold_ms(10_000) == 4_000.0
    assert BUCKETS.threshold_ms(10_001) == 12_000.0
    assert BUCKETS.threshold_ms(300_000) == 30_000.0
    assert BUCKETS.threshold_ms(300_001) == 60_000.0
    assert list(BUCKETS.thresholds_ms([1, 10_000, 10_001, 300_000, 300_001])) == [
        4_000.0,
        4_000.0,
        12_000.0,
        30_000.0,
        60_000.0,
    ]


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: type(rule).__name__)
@pytest.mark.parametrize("missing", [0, 0.0, None, math.nan])
def test_missing_duration_uses_stated_rule(rule: ThresholdRule, missing: float | None) -> None:
    expected = rule.no_duration_threshold_ms  # type: ignore[attr-defined]

    assert rule.threshold_ms(missing) == expected
    vector_input = np.nan if missing is None else missing
    assert rule.thresholds_ms(np.array([vector_input], dtype=np.float64))[0] == expected


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: type(rule).__name__)
@FAST
@given(values=st.lists(durations, max_size=30))
def test_vector_agrees_with_scalar(rule: ThresholdRule, values: list[float]) -> None:
    vector = rule.thresholds_ms(np.array(values, dtype=np.float64))

    assert vector.dtype == np.float64
    assert vector.shape == (len(values),)
    for position, duration in enumerate(values):
        assert vector[position] == rule.threshold_ms(duration)


@FAST
@given(
    duration=st.floats(min_value=1e-3, max_value=1e12, allow_nan=False),
    fraction=st.floats(min_value=1e-3, max_value=10.0),
    floor=st.floats(min_value=0.0, max_value=1e6),
    extra=st.floats(min_value=0.0, max_value=1e6),
)
def test_fraction_matches_formula(duration: float, fraction: float, floor: float, extra: float) -> None:
    cap = floor + extra
    rule = DurationFractionThreshold(fraction=fraction, floor_ms=floor, cap_ms=cap)

    expected = fraction * duration
    if expected < floor:
        expected = floor
    if expected > cap:
        expected = cap
    assert rule.threshold_ms(duration) == expected
    assert floor <= rule.threshold_ms(duration) <= cap


def test_default_rule_is_kuairand_label_rule() -> None:
    rule = DEFAULT_THRESHOLD_RULE

    assert isinstance(rule, DurationFractionThreshold)
    assert rule.threshold_ms(12_366) == 12_366.0
    assert rule.threshold_ms(5_047) == 5_047.0
    assert rule.threshold_ms(132_433) == 18_000.0
    assert rule.threshold_ms(3_000) == 5_000.0
    assert rule.threshold_ms(0) == 18_000.0


def test_rules_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_THRESHOLD_RULE.cap_ms = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: type(rule).__name__)
@pytest.mark.parametrize("bad", [-1, -0.5, math.inf, -math.inf])
def test_invalid_duration_raises(rule: ThresholdRule, bad: float) -> None:
    with pytest.raises(ValueError, match="duration_ms"):
        rule.threshold_ms(bad)
    with pytest.raises(ValueError, match=r"at index \(1,\)"):
        rule.thresholds_ms([1_000.0, bad])


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: FixedThreshold(-1), "value_ms must be a finite number >= 0 ms, got -1"),
        (lambda: FixedThreshold(math.inf), "value_ms"),
        (lambda: FixedThreshold(1_000, no_duration_threshold_ms=-5), "no_duration_threshold_ms"),
        (lambda: DurationFractionThreshold(0.0, 0, 10), "fraction must be a finite number > 0, got 0.0"),
        (lambda: DurationFractionThreshold(-0.5, 0, 10), "fraction"),
        (lambda: DurationFractionThreshold(math.nan, 0, 10), "fraction"),
        (lambda: DurationFractionThreshold(1.0, -1, 10), "floor_ms"),
        (lambda: DurationFractionThreshold(1.0, 20, 10), r"cap_ms must be >= floor_ms \(20.0\).*got 10"),
        (lambda: DurationFractionThreshold(1.0, 0, math.nan), "cap_ms"),
        (lambda: DurationFractionThreshold(1.0, 0, 10, no_duration_threshold_ms=math.nan), "no_duration"),
        (lambda: DurationBucketThreshold((), 1_000), "at least one"),
        (lambda: DurationBucketThreshold(((10, 1), (5, 2)), 1_000), "bucket 1 has upper_bound_ms=5"),
        (lambda: DurationBucketThreshold(((10, 1), (10, 2)), 1_000), "strictly increasing"),
        (lambda: DurationBucketThreshold(((0, 1),), 1_000), "bucket 0"),
        (lambda: DurationBucketThreshold(((math.inf, 1),), 1_000), "bucket 0"),
        (lambda: DurationBucketThreshold(((10, -1),), 1_000), "bucket 0 threshold_ms"),
        (lambda: DurationBucketThreshold(((10, 1, 3),), 1_000), "pair"),  # type: ignore[arg-type]
        (lambda: DurationBucketThreshold(((10, 1),), -1), "above_ms"),
    ],
)
def test_invalid_rule_raises(factory: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        factory()


def test_bucket_accepts_lists() -> None:
    rule = DurationBucketThreshold([[10, 1], [20, 2]], 3)  # type: ignore[arg-type]

    assert rule.buckets == ((10.0, 1.0), (20.0, 2.0))
    assert hash(rule) == hash(DurationBucketThreshold(((10, 1), (20, 2)), 3))
