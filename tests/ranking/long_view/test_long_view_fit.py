"""Tests for the standardiser and the Newton fit in ranking.long_view.logistic_fit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ranking.long_view.logistic_fit import Standardiser, fit_logistic, sigmoid


def synthetic(count: int = 500, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.default_rng(seed)
    features = generator.normal(size=(count, 3))
    logits = -1.0 + features @ np.array([1.5, -0.5, 0.0])
    labels = (generator.random(count) < sigmoid(logits)).astype(np.float64)
    return features, labels


def test_standardiser_ignores_nan_and_fills_mean() -> None:
    features = np.array([[1.0, 5.0], [3.0, 5.0], [math.nan, 5.0]])
    standardiser = Standardiser.fit(features)

    assert standardiser.means.tolist() == [2.0, 5.0]
    assert standardiser.stds.tolist() == [1.0, 1.0]  # column 1 is constant, so its std is set to 1
    np.testing.assert_array_equal(standardiser.transform(features), [[-1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])


def test_fit_reaches_zero_gradient() -> None:
    features, labels = synthetic()
    l2 = 2.0
    fit = fit_logistic(features, labels, l2)

    probabilities = sigmoid(fit.intercept + features @ fit.weights)
    assert fit.converged
    assert abs(float((probabilities - labels).sum())) < 1e-8  # the intercept is not penalised
    gradient = features.T @ (probabilities - labels) + l2 * fit.weights
    assert np.abs(gradient).max() < 1e-8


def test_fit_recovers_coefficients() -> None:
    features, labels = synthetic(count=20_000)
    fit = fit_logistic(features, labels, l2=0.0)

    np.testing.assert_allclose(fit.weights, [1.5, -0.5, 0.0], atol=0.06)
    assert fit.intercept == pytest.approx(-1.0, abs=0.06)


def test_fit_is_deterministic() -> None:
    features, labels = synthetic()
    first = fit_logistic(features, labels, 1.0)
    second = fit_logistic(features, labels, 1.0)

    np.testing.assert_array_equal(first.weights, second.weights)
    assert first.intercept == second.intercept


def test_fit_separable_data_stays_finite_with_l2() -> None:
    features = np.array([[-2.0], [-1.0], [1.0], [2.0]])
    labels = np.array([0.0, 0.0, 1.0, 1.0])
    fit = fit_logistic(features, labels, l2=1.0)

    assert fit.converged
    assert np.isfinite(fit.weights).all()
    assert fit.weights[0] > 0.0


def test_fit_rejects_single_class_without_l2() -> None:
    with pytest.raises(ValueError, match="all 3 labels are 1"):
        fit_logistic(np.zeros((3, 1)), np.ones(3), l2=0.0)


def test_fit_rejects_nan_features() -> None:
    with pytest.raises(ValueError, match="finite"):
        fit_logistic(np.array([[math.nan]]), np.array([1.0]), l2=1.0)


def test_fit_rejects_negative_l2() -> None:
    with pytest.raises(ValueError, match="l2 must be a finite number >= 0, got -1.0"):
        fit_logistic(np.zeros((2, 1)), np.array([0.0, 1.0]), l2=-1.0)


def test_sigmoid_saturates_without_warning() -> None:
    with np.errstate(all="raise"):
        values = sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    assert values.tolist() == [0.0, 0.5, 1.0]
