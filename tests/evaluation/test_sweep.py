"""Tests for evaluation.sweep: the choice of the best point, the grid and the labels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dreamumm.config import (
    DurationBucketThresholdSettings,
    DurationFractionThresholdSettings,
    FixedThresholdSettings,
    PreferenceSettings,
)
from evaluation.methods import interest_scores
from evaluation.replay import Replay
from evaluation.results import MethodResult, WindowData, evaluate_method
from evaluation.sweep import SweepPoint, best_point, describe_threshold, format_half_life, run_sweep
from evaluation.windows import Window
from jobs.weighting import build_threshold_rule

HOUR_MS = 3_600_000.0
FIXED = FixedThresholdSettings(threshold_ms=10_000.0)


def hit_rate_result(name: str, hit_rates: list[float]) -> MethodResult:
    """Return a result of the toy's three users whose only metric is the given per-user hit rate."""
    return MethodResult(name=name, event_scores=np.zeros(9), per_user={"hit_rate": np.array(hit_rates)},
                        user_weights=np.ones(3), events_without_vector=0, candidates_without_vector=0)


def point(alpha: float, validation: list[float], test: list[float] | None = None) -> SweepPoint:
    return SweepPoint(alpha_per_s=alpha, threshold=FIXED, half_life_ms=None,
                      validation=hit_rate_result(f"validation {alpha}", validation),
                      test=hit_rate_result(f"test {alpha}", test if test is not None else validation))


def test_best_point_highest_value(toy_data: WindowData) -> None:
    # Validation means: 0.3, 0.5, 0.4.
    points = [point(0.1, [0.2, 0.4, math.nan]), point(0.2, [0.5, 0.5, 0.5]), point(0.3, [0.4, 0.4, 0.4])]

    assert best_point(points, toy_data, "hit_rate") is points[1]


def test_best_point_first_on_tie(toy_data: WindowData) -> None:
    # Both means are 0.5, so the earlier point in grid order wins.
    points = [point(0.1, [0.2, 0.3, 0.4]), point(0.2, [0.6, 0.4, 0.5]), point(0.3, [0.5, 0.5, 0.5])]

    assert best_point(points, toy_data, "hit_rate") is points[1]


def test_best_point_ignores_test_window(toy_data: WindowData) -> None:
    points = [point(0.1, [0.6, 0.6, 0.6], test=[0.0, 0.0, 0.0]), point(0.2, [0.5, 0.5, 0.5], test=[1.0, 1.0, 1.0])]

    assert best_point(points, toy_data, "hit_rate") is points[0]


def test_best_point_skips_undefined(toy_data: WindowData) -> None:
    points = [point(0.1, [math.nan] * 3), point(0.2, [0.0, 0.0, 0.1])]

    assert best_point(points, toy_data, "hit_rate") is points[1]


def test_best_point_all_undefined(toy_data: WindowData) -> None:
    points = [point(0.1, [math.nan] * 3), point(0.2, [math.nan] * 3)]

    with pytest.raises(ValueError, match="no sweep combination has a defined hit_rate on the validation window"):
        best_point(points, toy_data, "hit_rate")


def test_best_point_empty_grid(toy_data: WindowData) -> None:
    with pytest.raises(ValueError, match="no combinations"):
        best_point([], toy_data, "hit_rate")


@pytest.mark.parametrize(("threshold", "expected"), [
    (FixedThresholdSettings(threshold_ms=10_000.0), "t = 10 s"),
    (FixedThresholdSettings(threshold_ms=2_500.0), "t = 2.5 s"),
    (DurationFractionThresholdSettings(), "t = clip(1 x duration, 5 s, 18 s)"),
    (DurationFractionThresholdSettings(fraction=0.5, floor_ms=3_000.0, cap_ms=18_000.0),
     "t = clip(0.5 x duration, 3 s, 18 s)"),
    (DurationBucketThresholdSettings(), "t by duration (<= 15 s: 7 s, <= 60 s: 15 s, longer: 20 s)"),
    (DurationBucketThresholdSettings(buckets=((30_000.0, 12_000.0),), above_ms=25_000.0),
     "t by duration (<= 30 s: 12 s, longer: 25 s)"),
])
def test_describe_threshold(threshold: object, expected: str) -> None:
    assert describe_threshold(threshold) == expected


@pytest.mark.parametrize(("half_life_ms", "expected"), [
    (None, "none"),
    (6 * HOUR_MS, "6 h"),
    (0.5 * HOUR_MS, "0.5 h"),
    (23 * HOUR_MS, "23 h"),
    (24 * HOUR_MS, "1 d"),
    (36 * HOUR_MS, "1.5 d"),
    (7 * 24 * HOUR_MS, "7 d"),
])
def test_format_half_life(half_life_ms: float | None, expected: str) -> None:
    assert format_half_life(half_life_ms) == expected


def test_point_label() -> None:
    sweep_point = SweepPoint(alpha_per_s=0.25, threshold=FIXED, half_life_ms=6 * HOUR_MS,
                             validation=hit_rate_result("a", [0.0] * 3), test=hit_rate_result("b", [0.0] * 3))

    assert sweep_point.label == "alpha 0.25/s, t = 10 s, half-life 6 h"


def test_run_sweep_grid_order(toy_replay: Replay, toy_data: WindowData, toy_windows: tuple[Window, Window]) -> None:
    test_data = WindowData.build(toy_replay, toy_windows[1], np.zeros(14, dtype=np.intp), 2)
    thresholds = [FIXED, DurationFractionThresholdSettings()]

    points = run_sweep(toy_replay, toy_data, test_data, [0.5, 1.0], thresholds, [None, HOUR_MS])

    # Threshold rules vary slowest, then alpha, then the half-life.
    grid = [(p.threshold, p.alpha_per_s, p.half_life_ms) for p in points]
    assert grid == [(threshold, alpha, half_life) for threshold in thresholds for alpha in (0.5, 1.0)
                    for half_life in (None, HOUR_MS)]
    assert [p.validation.name for p in points] == [f"sweep {index}" for index in range(8)]
    assert [p.test.name for p in points] == [f"sweep {index}" for index in range(8)]


def test_run_sweep_name_prefix(toy_replay: Replay, toy_data: WindowData, toy_windows: tuple[Window, Window]) -> None:
    test_data = WindowData.build(toy_replay, toy_windows[1], np.zeros(14, dtype=np.intp), 2)

    points = run_sweep(toy_replay, toy_data, test_data, [0.5], [FIXED], [None, HOUR_MS], name_prefix="decay")

    assert [p.validation.name for p in points] == ["decay 0", "decay 1"]


def test_run_sweep_scores_point(toy_replay: Replay, toy_data: WindowData,
                                toy_windows: tuple[Window, Window]) -> None:
    test_data = WindowData.build(toy_replay, toy_windows[1], np.zeros(14, dtype=np.intp), 2)

    points = run_sweep(toy_replay, toy_data, test_data, [0.5], [FIXED], [HOUR_MS])

    rule = build_threshold_rule(PreferenceSettings(threshold=FIXED))
    weights = toy_replay.preference_weights(0.5, rule)
    direct = evaluate_method(toy_data, "direct", interest_scores(toy_replay, toy_data.window, weights, HOUR_MS))
    np.testing.assert_array_equal(points[0].validation.event_scores, direct.event_scores)
    np.testing.assert_array_equal(points[0].validation.per_user["ndcg"], direct.per_user["ndcg"])
