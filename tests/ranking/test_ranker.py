"""The ranker's scores, top-k order, vector choice and request checks, over an in-memory store."""

from __future__ import annotations

import numpy as np
import pytest

from ranking import Candidate, ChoiceReason, HistoryItem, Ranker, RankRequestError, ScoreWeights, VectorRule, VectorSource

VERSION = "test-space-v1"
VIDEOS = {"a": [1.0, 0.0], "b": [0.0, 1.0], "c": [0.6, 0.8], "d": [-1.0, 0.0]}


@pytest.fixture
def store(memory_store, make_stored_vector):
    for video_id, vector in VIDEOS.items():
        memory_store.videos[(VERSION, video_id)] = np.array(vector, dtype=np.float32)
    memory_store.users["fan-of-a"] = make_stored_vector("fan-of-a", [1.0, 0.0])
    return memory_store


@pytest.fixture
def model(table_model):
    return table_model({"a": 0.1, "b": 0.9, "c": 0.5, "d": 0.2})


def make_ranker(store, model, weights: ScoreWeights = ScoreWeights(), history_limit: int = 50) -> Ranker:
    return Ranker(store, model, VectorRule(model_version=VERSION), weights, history_limit=history_limit,
                  clock_ms=lambda: 2_000)


def candidates(*video_ids: str) -> list[Candidate]:
    return [Candidate(video_id) for video_id in video_ids]


def test_stored_vector_scores_by_inner_product(store, model) -> None:
    result = make_ranker(store, model).rank("fan-of-a", [], candidates("b", "c", "a", "d"), k=3)
    assert [item.video_id for item in result.items] == ["a", "c", "b"]
    assert [item.interest_score for item in result.items] == pytest.approx([1.0, 0.6, 0.0])
    assert result.choice.source is VectorSource.STORED
    assert all(item.long_view_probability is None for item in result.items)
    assert model.calls == []
    assert result.now_ms == 2_000


def test_ties_keep_request_order(store, model) -> None:
    result = make_ranker(store, model).rank("fan-of-a", [], candidates("b", "d", "a"), k=10)
    # b scores 0 and d scores -1; a and b keep their places among equal scores.
    assert [item.video_id for item in result.items] == ["a", "b", "d"]


def test_candidate_dreamumm_for_unknown_user(store, model) -> None:
    result = make_ranker(store, model).rank("new-user", [], candidates("a", "b", "c"), k=3)
    assert (result.choice.source, result.choice.reason) == (VectorSource.CANDIDATE, ChoiceReason.NO_STORED_VECTOR)
    weights = np.array([0.1, 0.9, 0.5])
    rows = np.array([VIDEOS["a"], VIDEOS["b"], VIDEOS["c"]])
    mu = weights @ rows / np.linalg.norm(weights @ rows)
    by_id = {item.video_id: item for item in result.items}
    for video_id, row in zip("abc", rows):
        assert by_id[video_id].interest_score == pytest.approx(float(row @ mu), abs=1e-6)
    assert by_id["b"].long_view_probability == pytest.approx(0.9)
    assert result.stored_vector is None


def test_history_newest_with_embeddings(store, model) -> None:
    history = [HistoryItem("d", 500.0, 1_000.0, 5), HistoryItem("a", 1_000.0, 5_000.0, 10),
               HistoryItem("unknown", 2_000.0), HistoryItem("b", 3_000.0, None, 30),
               HistoryItem("c", 4_000.0, 0.0, 40)]
    result = make_ranker(store, model, history_limit=3).rank("new-user", history, candidates("a", "d"), k=2)
    watch_history, candidate_ids = model.calls[0]
    # The limit counts items with an embedding, so "unknown" does not push "a" out.
    assert watch_history.video_ids == ("a", "b", "c")
    assert watch_history.play_time_ms.tolist() == [1_000.0, 3_000.0, 4_000.0]
    assert np.isnan(watch_history.duration_ms[1])
    assert watch_history.duration_ms[2] == 0.0
    assert watch_history.time_ms.tolist() == [10, 30, 40]
    assert watch_history.vectors.tolist() == [VIDEOS["a"], VIDEOS["b"], pytest.approx(VIDEOS["c"])]
    assert candidate_ids == ["a", "d"]
    assert (result.history_used, result.history_without_embedding) == (3, 1)


def test_history_out_of_order_is_rejected(store, model) -> None:
    history = [HistoryItem("a", 1.0, None, 20), HistoryItem("b", 1.0), HistoryItem("c", 1.0, None, 10)]
    with pytest.raises(RankRequestError, match="oldest first, but time_ms 10 is before the previous item's 20") as error:
        make_ranker(store, model).rank("new-user", history, candidates("a"), k=1)
    assert error.value.field == "history[2].time_ms"


def test_overflowing_final_score_is_rejected(store, model) -> None:
    ranker = make_ranker(store, model, ScoreWeights(others={"ctr": 1e308}))
    with pytest.raises(RankRequestError, match="not finite") as error:
        ranker.rank("fan-of-a", [], [Candidate("a", {"ctr": 1.0}), Candidate("b", {"ctr": 10.0})], k=2)
    assert error.value.field == "candidates[1].scores"


def test_history_without_times_passes_none(store, model) -> None:
    make_ranker(store, model).rank("new-user", [HistoryItem("a", 1.0, 2.0, 5), HistoryItem("b", 1.0)],
                                   candidates("c"), k=1)
    assert model.calls[0][0].time_ms is None


def test_candidates_without_embedding_are_reported(store, model) -> None:
    result = make_ranker(store, model).rank("new-user", [], candidates("a", "x", "b"), k=5)
    assert [item.video_id for item in result.unscored] == ["x"]
    assert result.unscored[0].reason == "no_embedding_in_model_version"
    assert model.calls[0][1] == ["a", "b"]
    assert {item.video_id for item in result.items} == {"a", "b"}


def test_no_candidate_with_embedding_returns_no_items(store, model) -> None:
    result = make_ranker(store, model).rank("fan-of-a", [], candidates("x", "y"), k=5)
    assert result.items == []
    assert len(result.unscored) == 2


def test_other_scores_combine_with_the_stated_weights(store, model) -> None:
    ranker = make_ranker(store, model, ScoreWeights(interest=0.5, others={"ctr": 2.0}))
    result = ranker.rank("fan-of-a", [], [Candidate("a", {"ctr": 0.1}), Candidate("b", {"ctr": 0.5})], k=2)
    assert [(item.video_id, item.score) for item in result.items] == [
        ("b", pytest.approx(0.5 * 0.0 + 2.0 * 0.5)), ("a", pytest.approx(0.5 * 1.0 + 2.0 * 0.1))]
    assert result.weights.others == {"ctr": 2.0}


@pytest.mark.parametrize("request_candidates, k, field, message", [
    ([Candidate("a")], 0, "k", "k must be >= 1, got 0"),
    ([Candidate("a", {"ctr": 1.0}), Candidate("a", {"ctr": 1.0})], 1, "candidates[1].video_id", "repeats"),
    ([Candidate("a")], 1, "candidates[0].scores", "exactly the configured names ['ctr'], got []"),
    ([Candidate("a", {"ctr": 1.0, "cvr": 1.0})], 1, "candidates[0].scores", "got ['ctr', 'cvr']"),
    ([Candidate("a", {"ctr": float("inf")})], 1, "candidates[0].scores.ctr", "must be finite, got inf"),
])
def test_rejects_bad_requests(store, model, request_candidates, k, field, message) -> None:
    ranker = make_ranker(store, model, ScoreWeights(others={"ctr": 1.0}))
    with pytest.raises(RankRequestError, match=message.replace("[", "\\[").replace("]", "\\]")) as error:
        ranker.rank("fan-of-a", [], request_candidates, k)
    assert error.value.field == field


def test_rejects_a_model_of_another_space(store, table_model) -> None:
    with pytest.raises(ValueError, match="trained on embedding model 'other-space'.*dreamumm train-long-view"):
        make_ranker(store, table_model({}, embedding_model_version="other-space"))


def test_rejects_non_finite_weights() -> None:
    with pytest.raises(ValueError, match="score weight 'ctr' must be finite, got nan"):
        ScoreWeights(others={"ctr": float("nan")})
