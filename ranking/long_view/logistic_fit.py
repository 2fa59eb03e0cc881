"""L2-regularised logistic regression on standardised features, fitted by Newton's method in numpy."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["LogisticFit", "Standardiser", "fit_logistic", "sigmoid"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Standardiser:
    """Per-feature mean and standard deviation of the training rows.

    ``transform`` maps each value to (x - mean) / std and a NaN (undefined feature) to 0, which
    is the training mean. A feature that is constant or always NaN in training gets std 1.
    """

    means: NDArray[np.float64]
    stds: NDArray[np.float64]

    @classmethod
    def fit(cls, features: NDArray[np.float64]) -> Standardiser:
        """Compute the means and stds of the non-NaN values of each column."""
        present = ~np.isnan(features)
        counts = present.sum(axis=0)
        filled = np.where(present, features, 0.0)
        means = np.divide(filled.sum(axis=0), counts, out=np.zeros(features.shape[1]), where=counts > 0)
        deviations = np.where(present, features - means, 0.0)
        variances = np.divide((deviations**2).sum(axis=0), counts, out=np.zeros(features.shape[1]), where=counts > 0)
        stds = np.sqrt(variances)
        stds = np.where(stds > 1e-12, stds, 1.0)
        return cls(means=means, stds=stds)

    def transform(self, features: NDArray[np.float64]) -> NDArray[np.float64]:
        """Return the standardised features, with 0 in place of NaN."""
        standardised = (features - self.means) / self.stds
        return np.where(np.isnan(standardised), 0.0, standardised)


@dataclass(frozen=True)
class LogisticFit:
    """Coefficients on standardised features, and how the fit converged."""

    weights: NDArray[np.float64]
    intercept: float
    iterations: int
    converged: bool


def sigmoid(logits: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return 1 / (1 + exp(-z)) without overflow warnings, in [0, 1]."""
    with np.errstate(over="ignore", under="ignore"):
        return 1.0 / (1.0 + np.exp(-logits))


def fit_logistic(
    features: NDArray[np.float64],
    labels: NDArray[np.float64],
    l2: float,
    *,
    max_iterations: int = 100,
    tolerance: float = 1e-10,
) -> LogisticFit:
    """Minimise sum of log losses + l2 / 2 * ||weights||^2 by Newton's method with step halving.

    ``features`` must already be standardised and free of NaN. The intercept is not
    penalised. The result is deterministic for the same inputs. Convergence means that the
    largest Newton step component fell below ``tolerance``.

    Raises:
        ValueError: if shapes disagree, a value is not finite, a label is not 0 or 1, l2 < 0,
            or the labels have a single class while l2 is 0 (the optimum is then at infinity).
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"features must be (n, k) and labels (n,), got {x.shape} and {y.shape}")
    if not np.isfinite(x).all():
        raise ValueError("features must be finite; standardise them first, which replaces NaN by 0")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1")
    if not 0.0 <= l2 < math.inf:
        raise ValueError(f"l2 must be a finite number >= 0, got {l2!r}")
    if x.shape[0] == 0:
        raise ValueError("cannot fit a logistic regression on 0 examples")
    if l2 == 0.0 and y.min() == y.max():
        raise ValueError(f"all {len(y)} labels are {int(y[0])}, so the unpenalised fit has no optimum; use l2 > 0")

    design = np.hstack([np.ones((x.shape[0], 1)), x])
    penalty = np.full(design.shape[1], l2)
    penalty[0] = 0.0
    # A tiny ridge on the intercept keeps the Hessian invertible for single-class labels.
    penalty_in_hessian = np.where(penalty > 0.0, penalty, 1e-12)
    coefficients = np.zeros(design.shape[1])
    coefficients[0] = _log_odds(float(y.mean()))
    objective = _objective(design, y, coefficients, penalty)

    converged = False
    iteration = 0
    for iteration in range(1, max_iterations + 1):
        probabilities = sigmoid(design @ coefficients)
        gradient = design.T @ (probabilities - y) + penalty * coefficients
        curvature = probabilities * (1.0 - probabilities)
        hessian = (design * curvature[:, None]).T @ design + np.diag(penalty_in_hessian)
        step = np.linalg.solve(hessian, gradient)

        scale = 1.0
        while True:
            candidate = coefficients - scale * step
            candidate_objective = _objective(design, y, candidate, penalty)
            if candidate_objective <= objective or scale < 1e-8:
                break
            scale /= 2.0
        coefficients = candidate
        objective = candidate_objective
        if float(np.max(np.abs(scale * step))) < tolerance:
            converged = True
            break

    if not converged:
        logger.warning("logistic regression did not converge in %s Newton iterations (l2=%s)", max_iterations, l2)
    return LogisticFit(weights=coefficients[1:].copy(), intercept=float(coefficients[0]), iterations=iteration,
                       converged=converged)


def _log_odds(rate: float) -> float:
    clipped = min(max(rate, 1e-6), 1.0 - 1e-6)
    return math.log(clipped / (1.0 - clipped))


def _objective(design: NDArray[np.float64], y: NDArray[np.float64], coefficients: NDArray[np.float64],
               penalty: NDArray[np.float64]) -> float:
    logits = design @ coefficients
    # log(1 + exp(z)) - y * z is the log loss of a logit z, and logaddexp avoids overflow.
    losses = np.logaddexp(0.0, logits) - y * logits
    return float(losses.sum() + 0.5 * np.dot(penalty * coefficients, coefficients))
