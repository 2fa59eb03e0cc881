"""Evaluation metrics: ROC AUC with ties, log loss, and a bootstrap interval of the AUC by user."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["BootstrapInterval", "GroupedAuc", "bootstrap_auc_by_group", "grouped_auc", "log_loss", "roc_auc"]


def roc_auc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Return the ROC AUC: the probability that a random positive scores above a random negative.

    A tie between a positive and a negative counts 1/2. Computed from average ranks (the
    Mann-Whitney U statistic) in O(n log n).

    Raises:
        ValueError: if the shapes differ, a label is not 0 or 1, a score is NaN, or the labels
            do not contain both classes.
    """
    y = np.asarray(labels, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or y.shape != s.shape:
        raise ValueError(f"labels and scores must be 1-D of the same length, got shapes {y.shape} and {s.shape}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1")
    if np.isnan(s).any():
        raise ValueError(f"scores must not be NaN, got {int(np.isnan(s).sum())} NaN score(s)")
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        raise ValueError(f"AUC needs both classes, got {positives} positive and {negatives} negative label(s)")

    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    # Tied scores share the mean of the 1-based ranks they span.
    last_rank = np.cumsum(counts)
    average_rank = last_rank - (counts - 1) / 2.0
    positive_rank_sum = float(average_rank[inverse][y == 1.0].sum())
    return (positive_rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def log_loss(labels: ArrayLike, probabilities: ArrayLike, epsilon: float = 1e-15) -> float:
    """Return the mean negative log-likelihood, with probabilities clipped to [epsilon, 1 - epsilon]."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.clip(np.asarray(probabilities, dtype=np.float64), epsilon, 1.0 - epsilon)
    if y.shape != p.shape or y.size == 0:
        raise ValueError(
            f"labels and probabilities must be non-empty and of the same shape, got {y.shape} and {p.shape}"
        )
    return float(-(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)).mean())


@dataclass(frozen=True)
class BootstrapInterval:
    """Percentile interval of a bootstrapped AUC."""

    low: float
    high: float
    level: float
    resamples: int
    """Resamples that had both classes and so entered the interval."""
    skipped: int
    """Resamples with a single class, which have no AUC."""


def bootstrap_auc_by_group(
    labels: ArrayLike,
    scores: ArrayLike,
    groups: Sequence[object] | NDArray[np.generic],
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> BootstrapInterval:
    """Bootstrap the AUC by resampling whole groups (users) with replacement.

    Resampling users rather than events keeps each user's correlated events together, so the
    interval reflects how the AUC varies across users. The same seed gives the same interval.

    Raises:
        ValueError: if the shapes differ, ``resamples`` < 1, ``level`` is not in (0, 1), or no
            resample contains both classes.
    """
    y, s, group_values = _grouped_arrays(labels, scores, groups)
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")

    _, group_index = np.unique(group_values, return_inverse=True)
    order = np.argsort(group_index, kind="stable")
    group_sizes = np.bincount(group_index)
    group_starts = np.concatenate(([0], np.cumsum(group_sizes)[:-1]))
    members = [order[start:start + size] for start, size in zip(group_starts, group_sizes)]

    generator = np.random.default_rng(seed)
    values: list[float] = []
    skipped = 0
    for _ in range(resamples):
        chosen = generator.integers(0, len(members), size=len(members))
        rows = np.concatenate([members[group] for group in chosen])
        sample_labels = y[rows]
        if sample_labels.min() == sample_labels.max():
            skipped += 1
            continue
        values.append(roc_auc(sample_labels, s[rows]))
    if not values:
        raise ValueError(f"none of the {resamples} resamples contains both classes")
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return BootstrapInterval(low=float(low), high=float(high), level=level, resamples=len(values), skipped=skipped)


def grouped_auc(labels: ArrayLike, scores: ArrayLike, groups: Sequence[object] | NDArray[np.generic]) -> GroupedAuc:
    """Return the mean of per-group (per-user) AUCs, weighted by each group's event count.

    Only groups with both classes have an AUC, so the others are left out and counted. This is
    how well the scores rank the candidates of one user, which a per-user constant cannot do.

    Raises:
        ValueError: if the shapes differ or no group contains both classes.
    """
    y, s, group_values = _grouped_arrays(labels, scores, groups)
    total = 0.0
    weight = 0
    used = 0
    skipped = 0
    for group in np.unique(group_values):
        rows = group_values == group
        group_labels = y[rows]
        if group_labels.min() == group_labels.max():
            skipped += 1
            continue
        total += roc_auc(group_labels, s[rows]) * int(rows.sum())
        weight += int(rows.sum())
        used += 1
    if used == 0:
        raise ValueError(f"none of the {skipped} groups contains both classes, so no per-group AUC exists")
    return GroupedAuc(value=total / weight, groups=used, groups_without_both_classes=skipped)


@dataclass(frozen=True)
class GroupedAuc:
    """Event-weighted mean of per-group AUCs."""

    value: float
    groups: int
    """Groups with both classes, which enter the mean."""
    groups_without_both_classes: int


def _grouped_arrays(labels: ArrayLike, scores: ArrayLike,
                    groups: Sequence[object] | NDArray[np.generic]) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                                                               NDArray[np.generic]]:
    """Return labels, scores and groups as arrays, checking they are 1-D and of one length."""
    y = np.asarray(labels, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    group_values = np.asarray(groups)
    if not y.shape == s.shape == group_values.shape or y.ndim != 1:
        raise ValueError(
            f"labels, scores and groups must be 1-D of the same length, got {y.shape}, {s.shape} and "
            f"{group_values.shape}"
        )
    return y, s, group_values
