"""Tests for evaluation.metrics on small lists whose values are computed by hand."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation.metrics import exposed_clusters, hit_rate_at_k, ndcg_at_k, ranked_expectation, surprise_share

FAST = settings(max_examples=100, deadline=None)

relevance_lists = st.lists(st.booleans(), min_size=1, max_size=12).filter(any)


def test_hit_rate_hand_case() -> None:
    # 3 relevant candidates, 1 of them in the top 2: 1 / 3.
    assert hit_rate_at_k([1, 0, 1, 0, 1], 2) == pytest.approx(1 / 3)
    # The top 3 contains 2 of the 3: 2 / 3.
    assert hit_rate_at_k([1, 0, 1, 0, 1], 3) == pytest.approx(2 / 3)


def test_hit_rate_whole_list() -> None:
    assert hit_rate_at_k([1, 0, 1, 0, 1], 5) == 1.0
    assert hit_rate_at_k([1, 0, 1, 0, 1], 50) == 1.0


def test_hit_rate_without_relevant_raises() -> None:
    with pytest.raises(ValueError, match="undefined"):
        hit_rate_at_k([0, 0, 0], 2)


def test_hit_rate_rejects_small_k() -> None:
    with pytest.raises(ValueError, match="k must be >= 1"):
        hit_rate_at_k([1, 0], 0)
    with pytest.raises(ValueError, match="k must be >= 1"):
        hit_rate_at_k([1, 0], -1)


def test_ndcg_hand_case() -> None:
    # DCG@3 of [0, 1, 0, 1]: only position 1 (0-based) counts, 1 / log2(1 + 2) = 1 / log2(3).
    # Ideal: 2 relevant, min(3, 2) = 2 first, 1 / log2(2) + 1 / log2(3) = 1 + 1 / log2(3).
    expected = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k([0, 1, 0, 1], 3) == pytest.approx(expected, rel=1e-12)


def test_ndcg_perfect_order() -> None:
    assert ndcg_at_k([1, 1, 0, 0], 3) == pytest.approx(1.0, rel=1e-12)
    assert ndcg_at_k([1, 0, 0], 1) == pytest.approx(1.0, rel=1e-12)


def test_ndcg_relevant_beyond_k() -> None:
    assert ndcg_at_k([0, 0, 1], 2) == 0.0


def test_ndcg_more_relevant_than_k() -> None:
    # 4 relevant and k = 2: the ideal DCG has min(2, 4) = 2 terms, 1 + 1 / log2(3).
    assert ndcg_at_k([1, 1, 1, 1], 2) == pytest.approx(1.0, rel=1e-12)
    # DCG of [0, 1 | 1, 1] at k = 2 is 1 / log2(3), so NDCG = (1 / log2(3)) / (1 + 1 / log2(3)).
    expected = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k([0, 1, 1, 1], 2) == pytest.approx(expected, rel=1e-12)


def test_ndcg_third_position() -> None:
    # DCG@3 of [1, 0, 1] is 1 + 1 / log2(4) = 1.5, the ideal 1 + 1 / log2(3).
    assert ndcg_at_k([1, 0, 1], 3) == pytest.approx(1.5 / (1 + 1 / math.log2(3)), rel=1e-12)


def test_ndcg_without_relevant_raises() -> None:
    with pytest.raises(ValueError, match="undefined"):
        ndcg_at_k([0, 0], 2)


def test_ndcg_rejects_small_k() -> None:
    with pytest.raises(ValueError, match="k must be >= 1"):
        ndcg_at_k([1, 0], 0)


@FAST
@given(relevance_lists, st.integers(min_value=1, max_value=15))
def test_ranking_metrics_within_bounds(relevant: list[bool], k: int) -> None:
    assert 0.0 <= hit_rate_at_k(relevant, k) <= 1.0
    assert 0.0 <= ndcg_at_k(relevant, k) <= 1.0 + 1e-12


@FAST
@given(relevance_lists, st.integers(min_value=1, max_value=15))
def test_ndcg_of_sorted_list_is_one(relevant: list[bool], k: int) -> None:
    best_first = sorted(relevant, reverse=True)

    assert ndcg_at_k(best_first, k) == pytest.approx(1.0, rel=1e-12)


@FAST
@given(relevance_lists, st.integers(min_value=1, max_value=14))
def test_hit_rate_grows_with_k(relevant: list[bool], k: int) -> None:
    assert hit_rate_at_k(relevant, k) <= hit_rate_at_k(relevant, k + 1)


def test_ranked_expectation_distinct_scores() -> None:
    # Scores 0.2, 0.9, 0.5 rank the second candidate first, then the third, then the first.
    assert ranked_expectation([0.2, 0.9, 0.5], [1.0, 2.0, 3.0]).tolist() == [2.0, 3.0, 1.0]


def test_ranked_expectation_averages_ties() -> None:
    # 0.9 ranks first; the three 0.5s share ranks 2 to 4, each holding their mean (1 + 0 + 0) / 3.
    expected = [1.0, 1 / 3, 1 / 3, 1 / 3]
    np.testing.assert_allclose(ranked_expectation([0.5, 0.5, 0.9, 0.5], [1, 0, 1, 0]), expected)


def test_ranked_expectation_columns() -> None:
    # Two columns share one sort and equal the two 1-D results.
    scores = [0.5, 0.5, 0.9, 0.5]
    both = ranked_expectation(scores, np.column_stack(([1, 0, 1, 0], [0, 0, 0, 1])))
    np.testing.assert_allclose(both[:, 0], ranked_expectation(scores, [1, 0, 1, 0]))
    np.testing.assert_allclose(both[:, 1], ranked_expectation(scores, [0, 0, 0, 1]))


def test_ranked_expectation_rejects_nan() -> None:
    with pytest.raises(ValueError, match="NaN"):
        ranked_expectation([0.1, math.nan], [0, 1])


def test_ranked_expectation_rejects_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="one score per candidate"):
        ranked_expectation([0.1, 0.2, 0.3], [0, 1])


def test_random_order_hit_rate() -> None:
    # 4 tied candidates, 1 relevant, k = 2: the relevant one is in the top 2 with probability 2 / 4.
    relevance = ranked_expectation([0, 0, 0, 0], [0, 1, 0, 0])
    assert hit_rate_at_k(relevance, 2) == pytest.approx(0.5)


def test_random_order_ndcg() -> None:
    # Each rank gets the relevant one with probability 1/4: E[DCG@2] = (1 + 1 / log2(3)) / 4, ideal 1.
    relevance = ranked_expectation([0, 0, 0, 0], [0, 1, 0, 0])
    assert ndcg_at_k(relevance, 2) == pytest.approx((1 + 1 / math.log2(3)) / 4, rel=1e-12)


def test_tie_across_cut_ndcg() -> None:
    # Scores [0.9, 0.5, 0.5] with relevance [0, 1, 0], k = 2: rank 1 has relevance 0, rank 2 has 1/2.
    # E[DCG] = 0.5 / log2(3); the ideal puts the one relevant first, 1.
    relevance = ranked_expectation([0.9, 0.5, 0.5], [0, 1, 0])
    assert ndcg_at_k(relevance, 2) == pytest.approx(0.5 / math.log2(3), rel=1e-12)
    assert hit_rate_at_k(relevance, 2) == pytest.approx(0.5)


def test_ndcg_rejects_relevance_above_one() -> None:
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        ndcg_at_k([1.5, 0.0], 1)


def test_exposed_clusters_counts_top_k() -> None:
    # Distinct scores, best first: clusters [4, 4, 7, 2, 7]. The top 3 have 4 and 7.
    scores = [5, 4, 3, 2, 1]
    assert exposed_clusters(scores, [4, 4, 7, 2, 7], 3) == 2
    assert exposed_clusters(scores, [4, 4, 7, 2, 7], 5) == 3
    assert exposed_clusters(scores, [4, 4, 7, 2, 7], 10) == 3
    assert exposed_clusters(scores, [4, 4, 7, 2, 7], 1) == 1


def test_exposed_clusters_all_tied() -> None:
    # Clusters [0, 0, 1, 1] all tied, k = 2: cluster 0 is missed only when both places go to
    # cluster 1, C(2, 2) / C(4, 2) = 1/6, so it appears with 5/6; the same for cluster 1.
    assert exposed_clusters([0, 0, 0, 0], [0, 0, 1, 1], 2) == pytest.approx(5 / 3)


def test_exposed_clusters_tie_at_cut() -> None:
    # Scores [3, 2, 2, 2] with clusters [5, 5, 6, 7], k = 2: cluster 5 is in for sure. One place is
    # left among the tied [5, 6, 7]: cluster 5 adds nothing new, 6 and 7 each appear with 1/3.
    assert exposed_clusters([3, 2, 2, 2], [5, 5, 6, 7], 2) == pytest.approx(1 + 2 / 3)


def test_exposed_clusters_rejects_small_k() -> None:
    with pytest.raises(ValueError, match="k must be >= 1"):
        exposed_clusters([1, 2], [1, 2], 0)


def test_surprise_share_hand_case() -> None:
    # Surprising by rank [1, 0, 1, 1], k = 3: 2 of the top 3.
    assert surprise_share([1, 0, 1, 1], 3) == pytest.approx(2 / 3)


def test_surprise_share_short_list() -> None:
    # Only 4 candidates for k = 10: the divisor is 4.
    assert surprise_share([1, 0, 1, 1], 10) == pytest.approx(3 / 4)


def test_surprise_share_random_order() -> None:
    # 1 surprising among 4 tied, k = 2: each rank gets it with 1/4, so the share is (1/4 + 1/4) / 2.
    assert surprise_share(ranked_expectation([0, 0, 0, 0], [0, 0, 1, 0]), 2) == pytest.approx(0.25)


def test_surprise_share_empty_raises() -> None:
    with pytest.raises(ValueError, match="empty"):
        surprise_share([], 3)


def test_surprise_share_rejects_small_k() -> None:
    with pytest.raises(ValueError, match="k must be >= 1"):
        surprise_share([1, 0], 0)


@FAST
@given(st.lists(st.tuples(st.integers(0, 3), st.booleans(), st.integers(0, 4)), min_size=1, max_size=6),
       st.integers(min_value=1, max_value=7))
def test_expectation_matches_all_orders(candidates: list[tuple[int, bool, int]], k: int) -> None:
    # Average the plain metrics over every order of the tied candidates and compare.
    scores = np.array([score for score, _, _ in candidates], dtype=float)
    relevant = np.array([flag for _, flag, _ in candidates])
    clusters = np.array([cluster for _, _, cluster in candidates])
    hits, gains, distinct = [], [], []
    for permutation in itertools.permutations(range(len(candidates))):
        order = sorted(permutation, key=lambda index: -scores[index])  # stable: keeps the tie order
        if relevant.any():
            hits.append(hit_rate_at_k(relevant[order], k))
            gains.append(ndcg_at_k(relevant[order], k))
        distinct.append(len(set(clusters[order][:k].tolist())))

    relevance = ranked_expectation(scores, relevant)
    if relevant.any():
        assert hit_rate_at_k(relevance, k) == pytest.approx(np.mean(hits), rel=1e-9)
        assert ndcg_at_k(relevance, k) == pytest.approx(np.mean(gains), rel=1e-9)
    assert exposed_clusters(scores, clusters, k) == pytest.approx(np.mean(distinct), rel=1e-9)
