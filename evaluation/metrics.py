"""Per-user ranking and diversity metrics of one recommended list.

Each function takes one user's candidates already in ranked order, best first. Relevant means
long-viewed. ``ranked_order`` produces that order from scores.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["exposed_clusters", "hit_rate_at_k", "ndcg_at_k", "ranked_order", "surprise_share"]


def ranked_order(scores: ArrayLike, tie_breaker: ArrayLike) -> NDArray[np.intp]:
    """Return the positions of the candidates from the highest score to the lowest.

    Equal scores are ordered by ascending ``tie_breaker``, so a method that cannot tell candidates
    apart gets a fixed, method-independent order rather than the order of the input.

    Raises:
        ValueError: if the shapes differ or a score is NaN.
    """
    values = np.asarray(scores, dtype=np.float64)
    keys = np.asarray(tie_breaker)
    if values.ndim != 1 or values.shape != keys.shape:
        raise ValueError(f"scores and tie_breaker must be 1-D of one length, got {values.shape} and {keys.shape}")
    if np.isnan(values).any():
        raise ValueError("scores must not be NaN")
    return np.lexsort((keys, -values))


def _check_k(k: int) -> int:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return k


def hit_rate_at_k(relevant_in_order: ArrayLike, k: int) -> float:
    """Return the share of the relevant candidates that are in the top ``k``.

    Raises:
        ValueError: if no candidate is relevant, because the share is then undefined.
    """
    relevant = np.asarray(relevant_in_order, dtype=bool)
    total = int(relevant.sum())
    if total == 0:
        raise ValueError("hit rate is undefined for a user without a relevant candidate")
    return int(relevant[:_check_k(k)].sum()) / total


def ndcg_at_k(relevant_in_order: ArrayLike, k: int) -> float:
    """Return the normalised discounted cumulative gain of the top ``k`` with binary relevance.

    ``DCG = sum over relevant positions i < k (0-based) of 1 / log2(i + 2)``, divided by the DCG of
    the best order, which puts the ``min(k, relevant count)`` relevant candidates first.

    Raises:
        ValueError: if no candidate is relevant, because the ideal DCG is then 0.
    """
    relevant = np.asarray(relevant_in_order, dtype=bool)
    total = int(relevant.sum())
    if total == 0:
        raise ValueError("NDCG is undefined for a user without a relevant candidate")
    top = relevant[:_check_k(k)]
    discounts = 1.0 / np.log2(np.arange(2, len(top) + 2))
    gain = float(discounts[top].sum())
    ideal = math.fsum(1.0 / math.log2(position + 2) for position in range(min(k, total)))
    return gain / ideal


def exposed_clusters(clusters_in_order: ArrayLike, k: int) -> int:
    """Return the number of distinct content clusters among the top ``k`` candidates."""
    return int(np.unique(np.asarray(clusters_in_order)[:_check_k(k)]).size)


def surprise_share(clusters_in_order: ArrayLike, relevant_in_order: ArrayLike, history_clusters: ArrayLike,
                   k: int) -> float:
    """Return the share of the top ``k`` that lies outside the history's clusters and was long-viewed.

    A candidate is far from the history when no video of the user's history belongs to its
    cluster. The share divides by the length of the list, ``min(k, candidates)``.

    Raises:
        ValueError: if the candidate arrays differ in length or there is no candidate.
    """
    clusters = np.asarray(clusters_in_order)
    relevant = np.asarray(relevant_in_order, dtype=bool)
    if clusters.shape != relevant.shape or clusters.ndim != 1:
        raise ValueError(f"clusters and relevance must be 1-D of one length, got {clusters.shape} and "
                         f"{relevant.shape}")
    if clusters.size == 0:
        raise ValueError("surprise share is undefined for an empty list")
    top = slice(0, _check_k(k))
    far = ~np.isin(clusters[top], np.asarray(history_clusters))
    return int((far & relevant[top]).sum()) / len(clusters[top])
