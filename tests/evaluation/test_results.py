"""Tests for evaluation.results on the ranking toy of conftest.py, with hand-computed metrics.

The toy's validation window scores rows 4 to 12 and ranks them as three requests with k = 2:
user 1 (rows 4 to 7, labels [1, 0, 1, 0]), user 2 (rows 8 to 10, labels [0, 0, 1]) and user 3
(rows 11 and 12, no long view). The fixture ``toy_scores`` contains the scores used below.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from evaluation.methods import MethodScores, interest_scores
from evaluation.replay import Replay
from evaluation.results import METRICS, WindowData, evaluate_method, metric_value
from evaluation.windows import Window, split_windows

# NDCG@2 of the relevance order [0, 1, 0, 1]: (1 / log2(3)) / (1 + 1 / log2(3)).
USER_1_NDCG = (1 / math.log2(3)) / (1 + 1 / math.log2(3))


def test_toy_window_layout(toy_windows: tuple[Window, Window]) -> None:
    # Guard for the hand computations below.
    validation, _ = toy_windows

    assert validation.event_rows.tolist() == list(range(4, 13))
    assert validation.candidate_rows.tolist() == list(range(4, 13))
    assert validation.request_bounds.tolist() == [0, 4, 7, 9]


def test_window_data_users(toy_data: WindowData) -> None:
    assert toy_data.users.tolist() == [0, 1, 2]
    assert toy_data.event_user_positions.tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2]
    assert [rows.tolist() for rows in toy_data.events_of_user] == [[0, 1, 2, 3], [4, 5, 6], [7, 8]]
    assert toy_data.request_user_positions.tolist() == [0, 1, 2]


def test_window_data_labels(toy_data: WindowData) -> None:
    assert toy_data.event_labels.tolist() == [1, 0, 1, 0, 0, 0, 1, 0, 0]
    assert toy_data.candidate_relevance.tolist() == [True, False, True, False, False, False, True, False, False]


def test_window_data_history_clusters(toy_data: WindowData) -> None:
    # User 1 watched rows 0 and 3 (clusters 0 and 1) before 200 ms, user 2 row 1, user 3 row 2.
    assert [clusters.tolist() for clusters in toy_data.history_clusters] == [[0, 1], [5], [4]]
    assert toy_data.candidate_clusters.tolist() == [0, 2, 2, 3, 5, 6, 7, 4, 4]


def test_per_user_ranking_metrics(toy_data: WindowData, toy_scores: MethodScores) -> None:
    result = evaluate_method(toy_data, "toy", toy_scores)

    # User 1: scores [0.1, 0.9, 0.8, 0.2] rank the labels [1, 0, 1, 0] as [0, 1, 0, 1], 1 of 2 in the top 2.
    # User 2: scores [0.3, 0.2, 0.1] keep [0, 0, 1], so the long view is third, beyond k = 2.
    # User 3 has no long view, so both metrics are undefined.
    np.testing.assert_allclose(result.per_user["hit_rate"], [0.5, 0.0, math.nan])
    np.testing.assert_allclose(result.per_user["ndcg"], [USER_1_NDCG, 0.0, math.nan], rtol=1e-14)


def test_per_user_diversity_metrics(toy_data: WindowData, toy_scores: MethodScores) -> None:
    result = evaluate_method(toy_data, "toy", toy_scores)

    # User 1's top 2 are rows 5 and 6, both cluster 2: 1 cluster. Both lie outside the history
    # clusters {0, 1}, and row 6 was long-viewed: 1 / 2.
    # User 2's top 2 are rows 8 and 9 (clusters 5 and 6): 2 clusters, and neither was long-viewed: 0.
    # User 3's top 2 are rows 12 and 11, both cluster 4, the history's cluster: 1 cluster, share 0.
    np.testing.assert_allclose(result.per_user["exposed_clusters"], [1.0, 2.0, 1.0])
    np.testing.assert_allclose(result.per_user["surprise_share"], [0.5, 0.0, 0.0])


def test_per_user_auc(toy_data: WindowData, toy_scores: MethodScores) -> None:
    result = evaluate_method(toy_data, "toy", toy_scores)

    # User 1: positives 0.9 and 0.4 against negatives 0.1 and 0.6 win 3 of 4 pairs.
    # User 2: the positive 0.1 loses to 0.3 and 0.2. User 3 has only negatives.
    np.testing.assert_allclose(result.per_user["user_auc"], [0.75, 0.0, math.nan])
    assert result.user_weights.tolist() == [4.0, 3.0, 2.0]


def test_metric_value_means(toy_data: WindowData, toy_scores: MethodScores) -> None:
    result = evaluate_method(toy_data, "toy", toy_scores)

    # Means over the users where each metric is defined.
    assert metric_value(toy_data, result, "hit_rate") == pytest.approx(0.25)
    assert metric_value(toy_data, result, "ndcg") == pytest.approx(USER_1_NDCG / 2)
    assert metric_value(toy_data, result, "exposed_clusters") == pytest.approx(4 / 3)
    assert metric_value(toy_data, result, "surprise_share") == pytest.approx(1 / 6)


def test_user_auc_event_weighted(toy_data: WindowData, toy_scores: MethodScores) -> None:
    result = evaluate_method(toy_data, "toy", toy_scores)

    # (0.75 x 4 events + 0 x 3 events) / 7 = 3/7. User 3's 2 events have no AUC and no weight.
    # The plain mean of the two AUCs would be 0.375.
    assert metric_value(toy_data, result, "user_auc") == pytest.approx(3 / 7)


def test_pooled_auc(toy_data: WindowData, toy_scores: MethodScores) -> None:
    result = evaluate_method(toy_data, "toy", toy_scores)

    # Positives 0.9, 0.4 and 0.1 against negatives 0.1, 0.6, 0.3, 0.2, 0.5, 0.7:
    # 0.9 wins 6 pairs, 0.4 wins 3, and 0.1 ties one (1/2): 9.5 of 18 = 19/36.
    assert metric_value(toy_data, result, "auc") == pytest.approx(19 / 36)


def test_metric_value_chosen_users(toy_data: WindowData, toy_scores: MethodScores) -> None:
    result = evaluate_method(toy_data, "toy", toy_scores)
    chosen = np.array([0, 0, 1])

    # User 1 counts twice: (0.5 + 0.5 + 0) / 3, and (0.75 x 4 x 2 + 0 x 3) / (4 + 4 + 3) = 6/11.
    assert metric_value(toy_data, result, "hit_rate", chosen) == pytest.approx(1 / 3)
    assert metric_value(toy_data, result, "user_auc", chosen) == pytest.approx(6 / 11)
    assert metric_value(toy_data, result, "auc", np.array([0])) == pytest.approx(0.75)


def test_metric_value_undefined_nan(toy_data: WindowData, toy_scores: MethodScores) -> None:
    result = evaluate_method(toy_data, "toy", toy_scores)
    only_user_3 = np.array([2, 2])

    assert math.isnan(metric_value(toy_data, result, "hit_rate", only_user_3))
    assert math.isnan(metric_value(toy_data, result, "user_auc", only_user_3))
    assert math.isnan(metric_value(toy_data, result, "auc", only_user_3))


def test_metric_value_unknown_metric(toy_data: WindowData, toy_scores: MethodScores) -> None:
    result = evaluate_method(toy_data, "toy", toy_scores)

    with pytest.raises(ValueError, match="unknown metric 'precision'"):
        metric_value(toy_data, result, "precision")


def test_all_tied_is_random_expectation(toy_data: WindowData) -> None:
    # Scores that are all equal give the expectation of a random order, whatever the constant.
    zeros = MethodScores(event_scores=np.zeros(9), request_scores=np.zeros(9))
    ones = MethodScores(event_scores=np.ones(9), request_scores=np.ones(9))

    first = evaluate_method(toy_data, "zeros", zeros)
    second = evaluate_method(toy_data, "ones", ones)

    for metric in ("hit_rate", "ndcg", "exposed_clusters", "surprise_share"):
        np.testing.assert_array_equal(first.per_user[metric], second.per_user[metric])
    # User 1 has 4 candidates with 2 long views and k = 2: a random top 2 contains each with 2/4.
    assert first.per_user["hit_rate"][0] == pytest.approx(0.5)
    # Every AUC of constant scores is 1/2.
    assert first.per_user["user_auc"][0] == pytest.approx(0.5)


def test_result_counts_copied(toy_data: WindowData) -> None:
    scores = MethodScores(event_scores=np.zeros(9), request_scores=np.zeros(9), events_without_vector=2,
                          candidates_without_vector=5)

    result = evaluate_method(toy_data, "counts", scores)

    assert result.name == "counts"
    assert result.events_without_vector == 2
    assert result.candidates_without_vector == 5


def test_every_metric_defined(toy_replay: Replay, toy_data: WindowData) -> None:
    scores = interest_scores(toy_replay, toy_data.window, np.ones(14), None)

    result = evaluate_method(toy_data, "mean of history", scores)

    for metric in METRICS:
        assert not math.isnan(metric_value(toy_data, result, metric)), metric


def test_window_without_users_nan(make_replay: Callable[..., Replay]) -> None:
    rows = [
        # user, video, time_ms, play_time_ms, long_view
        (1, 1, 100, 5_000, 0),
        (1, 2, 200, 5_000, 0),
        (2, 1, 300, 5_000, 0),  # validation start, floor(0.5 x 5) = 2: only first events of users 2 and 3
        (3, 2, 400, 5_000, 0),
        (1, 3, 500, 5_000, 0),  # test start, floor(0.8 x 5) = 4
    ]
    replay = make_replay(rows)
    validation, _ = split_windows(replay, 0.5, 0.8)
    data = WindowData.build(replay, validation, np.zeros(5, dtype=np.intp), 2)
    result = evaluate_method(data, "mean", interest_scores(replay, validation, np.ones(5), None))
    assert len(data.users) == 0

    assert math.isnan(metric_value(data, result, "hit_rate"))
    assert math.isnan(metric_value(data, result, "auc"))
