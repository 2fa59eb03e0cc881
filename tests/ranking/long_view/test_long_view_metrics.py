"""Tests for the evaluation metrics in ranking.long_view.metrics."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ranking.long_view.metrics import bootstrap_auc_by_group, grouped_auc, log_loss, roc_auc

FAST = settings(max_examples=200, deadline=None)


def pairwise_auc(labels: list[int], scores: list[float]) -> float:
    """Count every (positive, negative) pair: 1 when the positive scores higher, 1/2 on a tie."""
    positives = [score for label, score in zip(labels, scores) if label == 1]
    negatives = [score for label, score in zip(labels, scores) if label == 0]
    total = 0.0
    for positive, negative in itertools.product(positives, negatives):
        if positive > negative:
            total += 1.0
        elif positive == negative:
            total += 0.5
    return total / (len(positives) * len(negatives))


def test_auc_perfect_and_reversed() -> None:
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]) == 0.0


def test_auc_hand_computed_tie() -> None:
    # Pairs (positive, negative): (0.5, 0.1) 1, (0.5, 0.5) 1/2, (0.9, 0.1) 1, (0.9, 0.5) 1, so 3.5 / 4.
    assert roc_auc([0, 1, 0, 1], [0.1, 0.5, 0.5, 0.9]) == 0.875


def test_auc_all_scores_tied() -> None:
    assert roc_auc([0, 1, 1, 0, 1], [3.0] * 5) == 0.5


def test_auc_ties_across_groups() -> None:
    labels = [1, 0, 0, 1, 0, 1, 0]
    scores = [2.0, 2.0, 1.0, 1.0, 3.0, 3.0, 0.0]
    assert roc_auc(labels, scores) == pytest.approx(pairwise_auc(labels, scores), abs=0.0)


@FAST
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 5)), min_size=2, max_size=40))
def test_auc_matches_pairwise_count(rows: list[tuple[int, int]]) -> None:
    labels = [label for label, _ in rows]
    scores = [float(score) for _, score in rows]  # few distinct values, so many ties
    if len(set(labels)) < 2:
        with pytest.raises(ValueError, match="both classes"):
            roc_auc(labels, scores)
        return
    assert roc_auc(labels, scores) == pytest.approx(pairwise_auc(labels, scores), rel=1e-12)


def test_auc_rejects_one_class() -> None:
    with pytest.raises(ValueError, match="got 0 positive and 3 negative"):
        roc_auc([0, 0, 0], [0.1, 0.2, 0.3])


def test_auc_rejects_nan_score() -> None:
    with pytest.raises(ValueError, match="NaN"):
        roc_auc([0, 1], [0.1, math.nan])


def test_auc_rejects_label_outside_zero_one() -> None:
    with pytest.raises(ValueError, match="0 or 1"):
        roc_auc([0, 2], [0.1, 0.2])


def test_auc_rejects_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="same length"):
        roc_auc([0, 1, 1], [0.1, 0.2])


def test_log_loss_hand_computed() -> None:
    expected = -(math.log(0.8) + math.log(0.6)) / 2.0
    assert log_loss([1, 0], [0.8, 0.4]) == pytest.approx(expected, rel=1e-15)


def test_log_loss_clips_certain_mistakes() -> None:
    assert math.isfinite(log_loss([1, 0], [0.0, 1.0]))


def test_grouped_auc_hand_computed() -> None:
    labels = [0, 1, 1, 0, 0, 0]
    scores = [0.1, 0.9, 0.2, 0.8, 0.5, 0.5]
    groups = ["a", "a", "b", "b", "c", "c"]
    # Group a: AUC 1 over 2 events, group b: AUC 0 over 2 events, group c has one class and is left out.
    result = grouped_auc(labels, scores, groups)
    assert result.value == 0.5
    assert result.groups == 2
    assert result.groups_without_both_classes == 1


def test_grouped_auc_ignores_per_group_constant() -> None:
    labels = np.array([0, 1, 0, 1])
    groups = np.array([1, 1, 2, 2])
    within = np.array([0.1, 0.2, 0.1, 0.2])
    shifted = within + np.where(groups == 2, 10.0, 0.0)
    assert grouped_auc(labels, shifted, groups).value == grouped_auc(labels, within, groups).value == 1.0


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    generator = np.random.default_rng(1)
    labels = generator.integers(0, 2, 300)
    scores = labels * 0.5 + generator.normal(size=300)
    groups = generator.integers(0, 30, 300)

    first = bootstrap_auc_by_group(labels, scores, groups, resamples=200, seed=7)
    second = bootstrap_auc_by_group(labels, scores, groups, resamples=200, seed=7)

    assert first == second
    assert first.low < roc_auc(labels, scores) < first.high
    assert first.resamples + first.skipped == 200


def test_bootstrap_resamples_whole_groups() -> None:
    # Each group is perfectly ranked inside and on its own, so any resample of whole groups
    # that has both classes is perfectly ranked too.
    labels = np.array([0, 1, 0, 1, 0, 1])
    scores = np.array([0.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    groups = np.array([1, 1, 2, 2, 3, 3])
    interval = bootstrap_auc_by_group(labels, scores, groups, resamples=50, seed=0)
    assert interval.low == interval.high == 1.0


def test_bootstrap_rejects_bad_level() -> None:
    with pytest.raises(ValueError, match="level"):
        bootstrap_auc_by_group([0, 1], [0.1, 0.2], [1, 2], level=1.0)
