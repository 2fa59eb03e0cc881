"""The sweep of DreamUMM's parameters: alpha, the threshold rule and the recency half-life.

Every combination is scored in both windows. The choice uses the validation window only, and
the test window then reports the chosen combination, so the choice never uses the test labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from dreamumm.config import PreferenceSettings, ThresholdSettings
from evaluation.methods import interest_scores_of_sums
from evaluation.replay import Replay
from evaluation.results import MethodResult, WindowData, evaluate_method, metric_value
from jobs.weighting import build_threshold_rule

__all__ = ["SweepPoint", "best_point", "describe_threshold", "format_half_life", "run_sweep"]


@dataclass(frozen=True)
class SweepPoint:
    """One parameter combination with its results in the validation and the test window."""

    alpha_per_s: float
    threshold: ThresholdSettings
    half_life_ms: float | None
    validation: MethodResult
    test: MethodResult

    @property
    def label(self) -> str:
        """Short description of the combination."""
        return (f"alpha {self.alpha_per_s:g}/s, {describe_threshold(self.threshold)}, "
                f"half-life {format_half_life(self.half_life_ms)}")


def run_sweep(replay: Replay, validation: WindowData, test: WindowData, alphas: Sequence[float],
              thresholds: Sequence[ThresholdSettings], half_lives: Sequence[float | None],
              name_prefix: str = "sweep") -> list[SweepPoint]:
    """Score DreamUMM with every combination of the given values, in grid order.

    Results are named ``"<name_prefix> <index>"``; a bootstrap identifies methods by name, so
    every call that shares a bootstrap needs its own prefix.
    """
    points = []
    for threshold in thresholds:
        rule = build_threshold_rule(PreferenceSettings(threshold=threshold))
        for alpha in alphas:
            weights = replay.preference_weights(alpha, rule)
            for half_life in half_lives:
                sums = replay.running_sums(weights, half_life)
                results = []
                for data in (validation, test):
                    scores = interest_scores_of_sums(replay, data.window, sums)
                    name = f"{name_prefix} {len(points)}"
                    results.append(evaluate_method(data, name, scores))
                points.append(SweepPoint(alpha, threshold, half_life, results[0], results[1]))
    return points


def best_point(points: Sequence[SweepPoint], validation: WindowData, metric: str) -> SweepPoint:
    """Return the point with the highest validation value of ``metric``; the first in grid order wins a tie.

    Raises:
        ValueError: if no point has a defined value.
    """
    if not points:
        raise ValueError("the sweep has no combinations; list at least one alpha, threshold rule and half-life")
    best: SweepPoint | None = None
    best_value = -math.inf
    for point in points:
        value = metric_value(validation, point.validation, metric)
        if not math.isnan(value) and value > best_value:
            best, best_value = point, value
    if best is None:
        raise ValueError(
            f"no sweep combination has a defined {metric} on the validation window, so none can be chosen: the "
            f"window has {int(validation.event_labels.sum())} long views among {len(validation.event_labels)} "
            "scored events, and the metric needs users with both a long view and another view (or a long-viewed "
            "candidate). Move evaluation.validation_start or evaluation.test_start, or choose another "
            "evaluation.select_by")
    return best


def describe_threshold(threshold: ThresholdSettings) -> str:
    """Return a short formula of a threshold rule, in seconds."""
    if threshold.rule == "fixed":
        return f"t = {threshold.threshold_ms / 1000:g} s"
    if threshold.rule == "duration_fraction":
        cap = "inf" if math.isinf(threshold.cap_ms) else f"{threshold.cap_ms / 1000:g} s"
        return f"t = clip({threshold.fraction:g} x duration, {threshold.floor_ms / 1000:g} s, {cap})"
    buckets = ", ".join(f"<= {bound / 1000:g} s: {value / 1000:g} s" for bound, value in threshold.buckets)
    return f"t by duration ({buckets}, longer: {threshold.above_ms / 1000:g} s)"


def format_half_life(half_life_ms: float | None) -> str:
    """Return a half-life in hours or days, or "none"."""
    if half_life_ms is None:
        return "none"
    hours = half_life_ms / 3_600_000.0
    return f"{hours / 24:g} d" if hours >= 24 else f"{hours:g} h"
