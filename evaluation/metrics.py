"""Per-user ranking and diversity metrics of one recommended list, exact under ties.

A method may give several candidates the same score. Rather than break such ties with one
random draw, which would add noise to every figure, each metric is its expected value over all
orders of the tied candidates, each equally likely. With distinct scores that is simply the
metric of the one ranked list. A method whose scores are all equal thus gets exactly the
expectation of a uniformly random ranking.

``ranked_expectation`` turns per-candidate values (such as relevance, 1 for long-viewed) into
their expected value at each rank, and the list metrics take those per-rank values.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["exposed_clusters", "hit_rate_at_k", "ndcg_at_k", "ranked_expectation", "surprise_share"]


def _check_scores(scores: ArrayLike, length: int | None = None) -> NDArray[np.float64]:
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1 or (length is not None and values.shape != (length,)):
        raise ValueError(f"scores must be 1-D with one score per candidate, got shape {values.shape}")
    if np.isnan(values).any():
        raise ValueError("scores must not be NaN")
    return values


def _tie_groups(scores: NDArray[np.float64]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Return the candidates from the highest score to the lowest and the start of each tie group."""
    order = np.argsort(-scores, kind="stable")
    ordered = scores[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    return order, starts


def _check_k(k: int) -> int:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return k


def ranked_expectation(scores: ArrayLike, values: ArrayLike) -> NDArray[np.float64]:
    """Return the expected value at each rank, best first, with tied candidates in random order.

    A rank inside a group of tied candidates goes to each of them with equal probability, so its
    expected value is the group's mean. ``values`` has one value per candidate, or one row per
    candidate with a column per quantity, which then share one sort of the scores.

    Raises:
        ValueError: if the shapes differ or a score is NaN.
    """
    candidate_values = np.asarray(values, dtype=np.float64)
    if candidate_values.ndim not in (1, 2):
        raise ValueError(f"values must be 1-D or 2-D, got shape {candidate_values.shape}")
    score_values = _check_scores(scores, len(candidate_values))
    order, starts = _tie_groups(score_values)
    ordered = candidate_values[order]
    if len(ordered) == 0:
        return ordered
    sizes = np.diff(np.append(starts, len(ordered)))
    group_sums = np.add.reduceat(ordered, starts, axis=0)
    group_means = group_sums / (sizes if ordered.ndim == 1 else sizes[:, None])
    return np.repeat(group_means, sizes, axis=0)


def _check_relevance(relevance_in_order: ArrayLike) -> tuple[NDArray[np.float64], float]:
    relevance = np.asarray(relevance_in_order, dtype=np.float64)
    if relevance.ndim != 1 or not ((relevance >= 0.0) & (relevance <= 1.0)).all():
        raise ValueError("relevance must be a 1-D list of values in [0, 1], 1 for relevant")
    # The expected relevances of a tie group add up to its whole number of relevant candidates.
    return relevance, float(round(relevance.sum(), 9))


def hit_rate_at_k(relevance_in_order: ArrayLike, k: int) -> float:
    """Return the share of the relevant candidates that are in the top ``k``.

    ``relevance_in_order`` has one value per rank: 1 or 0, or the expected relevance from
    ``ranked_expectation``, which gives the expected share.

    Raises:
        ValueError: if no candidate is relevant, because the share is then undefined.
    """
    relevance, total = _check_relevance(relevance_in_order)
    if total == 0.0:
        raise ValueError("hit rate is undefined for a user without a relevant candidate")
    return float(relevance[:_check_k(k)].sum()) / total


def ndcg_at_k(relevance_in_order: ArrayLike, k: int) -> float:
    """Return the normalised discounted cumulative gain of the top ``k`` with binary relevance.

    ``DCG = sum over ranks i < k (0-based) of relevance_i / log2(i + 2)``, divided by the DCG of
    the best order, which puts the ``min(k, relevant count)`` relevant candidates first. With
    expected relevances from ``ranked_expectation`` the result is the expected NDCG, because the
    ideal DCG does not depend on the order.

    Raises:
        ValueError: if no candidate is relevant, because the ideal DCG is then 0.
    """
    relevance, total = _check_relevance(relevance_in_order)
    if total == 0.0:
        raise ValueError("NDCG is undefined for a user without a relevant candidate")
    top = relevance[:_check_k(k)]
    gain = float((top / np.log2(np.arange(2, len(top) + 2))).sum())
    ideal = math.fsum(1.0 / math.log2(position + 2) for position in range(min(k, round(total))))
    return gain / ideal


def exposed_clusters(scores: ArrayLike, clusters: ArrayLike, k: int) -> float:
    """Return the expected number of distinct content clusters among the top ``k`` candidates.

    Groups of tied candidates that lie wholly inside the top ``k`` contribute all their clusters.
    From the group that straddles rank ``k``, a uniformly random subset of the remaining ``m``
    places is shown. A cluster with ``c`` of the group's ``g`` candidates then appears with
    probability ``1 - C(g - c, m) / C(g, m)``.

    Raises:
        ValueError: if the shapes differ or a score is NaN.
    """
    cluster_values = np.asarray(clusters)
    score_values = _check_scores(scores, len(cluster_values))
    limit = min(_check_k(k), len(cluster_values))
    order, starts = _tie_groups(score_values)
    ordered = cluster_values[order]
    ends = np.append(starts[1:], len(ordered))

    # Groups that end within the top k are shown whole.
    certain_end = int(max((end for end in ends if end <= limit), default=0))
    certain_clusters = set(ordered[:certain_end].tolist())
    expected = float(len(certain_clusters))
    for start, end in zip(starts, ends):
        if start < limit < end:
            group = ordered[start:end].tolist()
            size, places = end - start, limit - start
            for cluster in set(group) - certain_clusters:
                others = size - group.count(cluster)
                expected += 1.0 - math.comb(others, places) / math.comb(size, places)
    return expected


def surprise_share(surprising_in_order: ArrayLike, k: int) -> float:
    """Return the share of the top ``k`` that is surprising: far from the history and long-viewed.

    ``surprising_in_order`` has one value per rank: 1 or 0, or the expected value from
    ``ranked_expectation``. The share divides by the length of the list, ``min(k, candidates)``.

    Raises:
        ValueError: if there is no candidate.
    """
    surprising = np.asarray(surprising_in_order, dtype=np.float64)
    if surprising.ndim != 1 or surprising.size == 0:
        raise ValueError("surprise share is undefined for an empty list")
    top = surprising[:_check_k(k)]
    return float(top.sum()) / len(top)
