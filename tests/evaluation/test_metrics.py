"""Tests for evaluation.metrics on small lists whose values are computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation.metrics import exposed_clusters, hit_rate_at_k, ndcg_at_k, ranked_order, surprise_share

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


def test_ranked_order_descending() -> None:
    order = ranked_order([0.2, 0.9, 0.5], [0, 0, 0])

    assert order.tolist() == [1, 2, 0]


def test_ranked_order_breaks_ties() -> None:
    # Scores 0.5 and 0.5 tie, and tie-breakers 3 and 1 put position 1 before position 0.
    order = ranked_order([0.5, 0.5, 0.9, 0.5], [3, 1, 2, 2])

    assert order.tolist() == [2, 1, 3, 0]


def test_ranked_order_ignores_input_order() -> None:
    # Equal scores follow the tie-breaker, not the input order.
    assert ranked_order([1.0, 1.0, 1.0], [0.7, 0.2, 0.5]).tolist() == [1, 2, 0]


def test_ranked_order_rejects_nan() -> None:
    with pytest.raises(ValueError, match="NaN"):
        ranked_order([0.1, math.nan], [0, 1])


def test_ranked_order_rejects_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="one length"):
        ranked_order([0.1, 0.2, 0.3], [0, 1])


def test_ranked_order_rejects_two_dimensions() -> None:
    with pytest.raises(ValueError, match="1-D"):
        ranked_order(np.zeros((2, 2)), np.zeros((2, 2)))


def test_exposed_clusters_counts_top_k() -> None:
    # Top 3 of [4, 4, 7, 2, 7] is {4, 7}: 2 clusters.
    assert exposed_clusters([4, 4, 7, 2, 7], 3) == 2
    # The whole list is {2, 4, 7}: 3 clusters.
    assert exposed_clusters([4, 4, 7, 2, 7], 5) == 3
    assert exposed_clusters([4, 4, 7, 2, 7], 10) == 3
    assert exposed_clusters([4, 4, 7, 2, 7], 1) == 1


def test_exposed_clusters_rejects_small_k() -> None:
    with pytest.raises(ValueError, match="k must be >= 1"):
        exposed_clusters([1, 2], 0)


def test_surprise_share_hand_case() -> None:
    # Top 3 clusters [1, 2, 3]. The history has cluster 1, so far = [no, yes, yes].
    # Relevant [1, 1, 0], so only position 1 is far and relevant: 1 / 3.
    share = surprise_share([1, 2, 3, 2], [1, 1, 0, 1], [1], 3)

    assert share == pytest.approx(1 / 3)


def test_surprise_share_short_list() -> None:
    # k = 10 but 4 candidates, so the divisor is min(10, 4) = 4.
    # Far and relevant: positions 1 and 3 (cluster 2), so 2 / 4.
    share = surprise_share([1, 2, 3, 2], [1, 1, 0, 1], [1], 10)

    assert share == pytest.approx(0.5)


def test_surprise_share_needs_relevance() -> None:
    # Every candidate is far from the history, but none was long-viewed.
    assert surprise_share([5, 6], [0, 0], [1], 2) == 0.0


def test_surprise_share_empty_history() -> None:
    # Without history every cluster is far, so the share is the relevant share of the top 2: 1 / 2.
    assert surprise_share([1, 2, 3], [1, 0, 1], [], 2) == pytest.approx(0.5)


def test_surprise_share_inside_history() -> None:
    assert surprise_share([1, 2], [1, 1], [1, 2, 9], 2) == 0.0


def test_surprise_share_empty_raises() -> None:
    with pytest.raises(ValueError, match="empty"):
        surprise_share([], [], [1], 3)


def test_surprise_share_rejects_length_mismatch() -> None:
    with pytest.raises(ValueError, match="one length"):
        surprise_share([1, 2, 3], [1, 0], [1], 2)


def test_surprise_share_rejects_small_k() -> None:
    with pytest.raises(ValueError, match="k must be >= 1"):
        surprise_share([1, 2], [1, 0], [1], 0)
