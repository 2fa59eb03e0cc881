"""Tests for evaluation.bootstrap: paired differences, interval checks and reproducibility."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from evaluation.bootstrap import Estimate, UserBootstrap
from evaluation.events import prepare_events
from evaluation.methods import MethodScores, interest_scores
from evaluation.replay import Replay
from evaluation.results import METRICS, MethodResult, WindowData, evaluate_method, metric_value
from evaluation.windows import split_windows

PER_USER_METRICS = ("user_auc", "hit_rate", "ndcg", "exposed_clusters", "surprise_share")


@pytest.fixture(scope="module")
def random_window(make_random_log: Callable) -> tuple[WindowData, MethodResult, MethodResult]:
    """A validation window of 40 random users, with the mean-of-history and the random method's results."""
    table, embeddings = make_random_log(3, users=40, events_per_user=20, span_ms=100_000)
    replay = Replay(prepare_events(table, embeddings, 86_400_000.0))
    validation, _ = split_windows(replay, 0.4, 0.7)
    clusters_of_rows = (replay.events.video_ids % 3).astype(np.intp)
    data = WindowData.build(replay, validation, clusters_of_rows, k=3)
    mean = evaluate_method(data, "mean", interest_scores(replay, validation, np.ones(len(replay.events)), None))
    generator = np.random.default_rng(2)
    noise = MethodScores(event_scores=generator.random(len(validation.event_rows)),
                         request_scores=generator.random(len(validation.candidate_rows)))
    random = evaluate_method(data, "random", noise)
    return data, mean, random


def test_estimate_excludes_zero() -> None:
    assert Estimate(value=0.1, low=0.05, high=0.2).excludes_zero
    assert Estimate(value=-0.3, low=-0.5, high=-0.1).excludes_zero
    assert not Estimate(value=0.1, low=-0.1, high=0.2).excludes_zero
    assert not Estimate(value=0.0, low=0.0, high=0.0).excludes_zero


@pytest.mark.parametrize("metric", METRICS)
def test_identical_methods_zero_difference(toy_data: WindowData, toy_scores: MethodScores, metric: str) -> None:
    first = evaluate_method(toy_data, "first", toy_scores)
    second = evaluate_method(toy_data, "second", toy_scores)
    bootstrap = UserBootstrap(toy_data, resamples=200, level=0.95, seed=0)

    difference = bootstrap.difference(first, second, metric)

    assert difference.value == 0.0
    assert difference.low == 0.0
    assert difference.high == 0.0
    assert not difference.excludes_zero


@pytest.mark.parametrize("metric", METRICS)
def test_interval_contains_estimate(random_window: tuple[WindowData, MethodResult, MethodResult],
                                    metric: str) -> None:
    data, mean, _ = random_window
    bootstrap = UserBootstrap(data, resamples=300, level=0.95, seed=4)

    estimate = bootstrap.estimate(mean, metric)

    assert estimate.low <= estimate.value <= estimate.high
    assert estimate.low < estimate.high


def test_random_window_size(random_window: tuple[WindowData, MethodResult, MethodResult]) -> None:
    # Guard: the window is large enough for the interval tests to mean something.
    data, mean, _ = random_window

    assert len(data.users) >= 30
    assert len(data.window.request_users) >= 30
    assert np.isfinite(mean.per_user["hit_rate"]).sum() >= 15


def test_difference_contains_estimate(random_window: tuple[WindowData, MethodResult, MethodResult]) -> None:
    data, mean, random = random_window
    bootstrap = UserBootstrap(data, resamples=300, level=0.9, seed=4)

    difference = bootstrap.difference(mean, random, "user_auc")

    assert difference.low <= difference.value <= difference.high


@pytest.mark.parametrize("metric", METRICS)
def test_samples_match_metric_value(random_window: tuple[WindowData, MethodResult, MethodResult],
                                    metric: str) -> None:
    # The per-user metrics are resampled in one vectorised step, and the interval must be the same
    # as from metric_value on every draw. The draws are those of UserBootstrap: one row of
    # integers(0, users) per resample from default_rng(seed).
    data, mean, _ = random_window
    bootstrap = UserBootstrap(data, resamples=100, level=0.8, seed=9)
    draws = np.random.default_rng(9).integers(0, len(data.users), size=(100, len(data.users)))

    samples = np.array([metric_value(data, mean, metric, draw) for draw in draws])
    expected_low, expected_high = np.percentile(samples[~np.isnan(samples)], [10.0, 90.0])
    estimate = bootstrap.estimate(mean, metric)

    assert estimate.low == pytest.approx(expected_low, rel=1e-12)
    assert estimate.high == pytest.approx(expected_high, rel=1e-12)


def test_same_seed_same_interval(random_window: tuple[WindowData, MethodResult, MethodResult]) -> None:
    data, mean, random = random_window

    first = UserBootstrap(data, resamples=150, level=0.95, seed=5)
    second = UserBootstrap(data, resamples=150, level=0.95, seed=5)

    assert first.estimate(mean, "ndcg") == second.estimate(mean, "ndcg")
    assert first.difference(mean, random, "auc") == second.difference(mean, random, "auc")


def test_other_seed_other_interval(random_window: tuple[WindowData, MethodResult, MethodResult]) -> None:
    data, mean, _ = random_window

    first = UserBootstrap(data, resamples=150, level=0.95, seed=5).estimate(mean, "user_auc")
    other = UserBootstrap(data, resamples=150, level=0.95, seed=6).estimate(mean, "user_auc")

    assert first.value == other.value
    assert (first.low, first.high) != (other.low, other.high)


def test_undefined_metric_nan_interval(toy_data: WindowData) -> None:
    nan_values = {metric: np.full(3, math.nan) for metric in PER_USER_METRICS}
    result = MethodResult(name="undefined", event_scores=np.zeros(9), per_user=nan_values,
                          user_weights=np.array([4.0, 3.0, 2.0]), events_without_vector=0,
                          candidates_without_vector=0)
    bootstrap = UserBootstrap(toy_data, resamples=50, level=0.95, seed=0)

    estimate = bootstrap.estimate(result, "hit_rate")

    assert math.isnan(estimate.value)
    assert math.isnan(estimate.low)
    assert math.isnan(estimate.high)


def test_resamples_counted(toy_data: WindowData) -> None:
    assert UserBootstrap(toy_data, resamples=37, level=0.9, seed=0).resamples == 37


@pytest.mark.parametrize("resamples", [0, -1])
def test_rejects_few_resamples(toy_data: WindowData, resamples: int) -> None:
    with pytest.raises(ValueError, match="resamples must be >= 1"):
        UserBootstrap(toy_data, resamples=resamples, level=0.95, seed=0)


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5])
def test_rejects_invalid_level(toy_data: WindowData, level: float) -> None:
    with pytest.raises(ValueError, match="level must be in"):
        UserBootstrap(toy_data, resamples=10, level=level, seed=0)
