"""The HTTP service end to end: the job's vectors, materialised from the real broker into the store,
served by `dreamumm serve` in its own process and called through a real HTTP client."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from dreamumm import kafka_io, steps
from dreamumm.config import Settings
from dreamumm.summary import summarise_run
from embeddings import ContentEmbeddingConfig, model_version
from jobs.feature_job import run_feature_job
from schemas import USER_INTEREST, AvroCodec
from store import Materialiser

pytestmark = pytest.mark.integration


def serving_version(settings: Settings) -> str:
    return model_version(ContentEmbeddingConfig(dimension=settings.embedding.dimension,
                                                salt=settings.embedding.content_salt))


def materialise_once(settings: Settings) -> None:
    Materialiser(settings).run(until_caught_up=True)


@contextmanager
def materialiser_running(settings: Settings) -> Iterator[None]:
    """Run the materialiser in a thread, as its own process would in production."""
    stop = threading.Event()
    thread = threading.Thread(target=Materialiser(settings).run, kwargs={"stop": stop}, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the materialiser did not stop within 30 s"


def test_ranks_with_the_job_vectors(make_settings, sample_inputs, runtime_jars, start_service) -> None:
    settings = make_settings(serving={"max_materialiser_silence_ms": 3_600_000})
    embeddings = sample_inputs.publish(settings)
    run_feature_job(settings, runtime_jars)
    summary = summarise_run(settings)
    materialise_once(settings)
    service = start_service(settings)
    service.wait_until("/health/ready")
    client = service.client
    version = serving_version(settings)

    for user_id, emitted in summary.users.items():
        body = client.get(f"/v1/users/{user_id}/vector").json()
        assert np.array(body["vector"], dtype=np.float32).tolist() == np.asarray(emitted.vector, np.float32).tolist()
        assert (body["embedding_model_version"], body["event_count"]) == (version, emitted.event_count)
        assert body["age_ms"] >= time.time() * 1000 - emitted.last_event_time_ms - 60_000

    events = sample_inputs.events
    candidate_ids = [str(video) for video in events["video_id"].drop_duplicates().iloc[:300]]
    user_id = str(events["user_id"].iloc[0])
    response = client.post("/v1/rank", json={
        "user_id": user_id, "k": 20, "candidates": [{"video_id": video} for video in candidate_ids]})
    assert response.status_code == 200, response.text
    ranked = response.json()
    assert (ranked["vector"]["source"], ranked["vector"]["reason"]) == ("dreamumm", "stored_vector_usable")
    assert ranked["model_version"] == version
    assert len(ranked["items"]) == 20
    user_vector = np.asarray(summary.users[user_id].vector, dtype=np.float64)
    expected = sorted(((float(embeddings[int(video)] @ user_vector), video) for video in candidate_ids),
                      key=lambda pair: -pair[0])[:20]
    assert [item["interest_score"] for item in ranked["items"]] == pytest.approx([score for score, _ in expected],
                                                                                   abs=1e-5)
    assert ranked["items"][0]["video_id"] == expected[0][1]

    # A user the store does not know gets Candidate-DreamUMM, weighted by f_seq's probabilities.
    history = events[events["user_id"] == int(user_id)].head(30)
    response = client.post("/v1/rank", json={
        "user_id": "user-without-events", "k": len(candidate_ids),
        "candidates": [{"video_id": video} for video in candidate_ids],
        "history": [{"video_id": str(row.video_id), "play_time_ms": float(row.play_time_ms),
                     "duration_ms": float(row.duration_ms), "time_ms": int(row.time_ms)}
                    for row in history.itertuples()]})
    assert response.status_code == 200, response.text
    ranked = response.json()
    assert (ranked["vector"]["source"], ranked["vector"]["reason"]) == ("candidate_dreamumm", "no_stored_vector")
    assert ranked["history"] == {"used": 30, "without_embedding": 0}
    probabilities = {item["video_id"]: item["long_view_probability"] for item in ranked["items"]}
    assert len(probabilities) == len(candidate_ids) and all(0 < p < 1 for p in probabilities.values())
    weighted = sum(probabilities[video] * embeddings[int(video)].astype(np.float64) for video in candidate_ids)
    mu = weighted / np.linalg.norm(weighted)
    for item in ranked["items"]:
        assert item["interest_score"] == pytest.approx(float(embeddings[int(item["video_id"])] @ mu), abs=1e-5)


def publish_user(settings: Settings, user_id: str, vector: list[float], event_count: int = 3) -> None:
    record = {"user_id": user_id, "vector": vector, "total_weight": 1.5, "event_count": event_count,
              "last_event_time_ms": int(time.time() * 1000) - 1_000, "emit_time_ms": int(time.time() * 1000),
              "embedding_model_version": serving_version(settings)}
    kafka_io.produce(settings.kafka.bootstrap_servers, settings.kafka.features_topic,
                     [(user_id.encode(), AvroCodec.for_schema(USER_INTEREST).encode(record))])


@pytest.fixture
def small_service(make_settings, sample_inputs, start_service):
    """A service over a store with one user, the sample's embeddings and at most 5 candidates a request."""
    settings = make_settings(ranking={"max_candidates": 5, "max_k": 3, "default_k": 2},
                             serving={"max_materialiser_silence_ms": 3_600_000, "max_request_bytes": 4_096})
    embeddings = sample_inputs.publish(settings, events=sample_inputs.events.head(0))
    publish_user(settings, "known", embeddings[0].tolist())
    publish_user(settings, "with/slash", embeddings[1].tolist())
    materialise_once(settings)
    service = start_service(settings)
    service.wait_until("/health/ready")
    return service


def problems_of(response) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_request"
    return [(problem["field"], problem["message"]) for problem in body["problems"]]


@pytest.mark.parametrize("body, field, message", [
    ({"user_id": "known"}, "candidates", "Field required"),
    ({"user_id": "known", "candidates": []}, "candidates", "at least 1 item"),
    ({"user_id": "known", "candidates": [{"video_id": 1}]}, "candidates[0].video_id", "valid string"),
    ({"user_id": "known", "candidates": [{"video_id": "1"}], "k": 0}, "k", "greater than or equal to 1"),
    ({"user_id": "known", "candidates": [{"video_id": "1"}], "k": 4}, "k", "at most 3 (ranking.max_k), got 4"),
    ({"user_id": "known", "candidates": [{"video_id": str(i)} for i in range(6)]}, "candidates",
     "at most 5 candidates are allowed (ranking.max_candidates), got 6"),
    ({"user_id": "known", "candidates": [{"video_id": "1"}, {"video_id": "1"}]}, "candidates[1].video_id",
     "video '1' repeats an earlier candidate"),
    ({"user_id": "known", "candidates": [{"video_id": "1", "scores": {"ctr": 0.5}}]}, "candidates[0].scores",
     "exactly the configured names [], got ['ctr']"),
    ({"user_id": "known", "candidates": [{"video_id": "1"}], "vector": "stored"}, "vector", "'auto' or 'candidate'"),
    ({"user_id": "known", "candidates": [{"video_id": "1"}], "extra": 1}, "extra", "Extra inputs are not permitted"),
    ({"user_id": "known", "candidates": [{"video_id": "1"}],
      "history": [{"video_id": "2", "play_time_ms": -1}]}, "history[0].play_time_ms", "greater than or equal to 0"),
    ({"user_id": "known", "candidates": [{"video_id": "1"}], "k": "2"}, "k", "valid integer"),
    ({"user_id": "known", "candidates": [{"video_id": "1"}],
      "history": [{"video_id": "2", "play_time_ms": 1, "time_ms": 20}, {"video_id": "3", "play_time_ms": 1,
                                                                          "time_ms": 10}]},
     "history[1].time_ms", "oldest first"),
    ({"user_id": "known", "candidates": [{"video_id": "1"}], "now_ms": 2**63}, "now_ms", "less than or equal"),
])
def test_rank_rejects_invalid_requests(small_service, body, field, message) -> None:
    problems = problems_of(small_service.client.post("/v1/rank", json=body))
    assert any(problem_field == field and message in text for problem_field, text in problems), problems


def test_rank_rejects_malformed_json(small_service) -> None:
    response = small_service.client.post("/v1/rank", content=b"{not json", headers={"content-type": "application/json"})
    assert problems_of(response)[0] == ("body", "invalid JSON at character 1: Expecting property name enclosed in "
                                                "double quotes")


def test_rank_names_a_missing_content_type(small_service) -> None:
    response = small_service.client.post("/v1/rank", content=b'{"user_id": "known"}')
    assert ("content-type", "send the body as JSON with content-type: application/json, got 'no content type'"
            ) in problems_of(response)


def test_vector_look_ups_and_openapi(small_service) -> None:
    client = small_service.client
    known = client.get("/v1/users/known/vector")
    assert known.status_code == 200
    assert known.json()["event_count"] == 3
    missing = client.get("/v1/users/nobody/vector")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    assert "no vector for user 'nobody'" in missing.text
    batch = client.post("/v1/users/vectors", json={"user_ids": ["nobody", "known"]}).json()["vectors"]
    assert batch[0] is None
    assert batch[1]["user_id"] == "known"
    assert problems_of(client.post("/v1/users/vectors", json={"user_ids": []}))[0][0] == "user_ids"
    document = client.get("/openapi.json").json()
    assert {"/v1/rank", "/v1/users/{user_id}/vector", "/v1/users/vectors", "/health/live",
            "/health/ready"} <= set(document["paths"])
    assert "422" in document["paths"]["/v1/rank"]["post"]["responses"]
    assert client.get("/health/live").json() == {"status": "ok"}


def test_readiness_follows_the_store_and_the_materialiser(make_settings, sample_inputs, start_service) -> None:
    settings = make_settings(serving={"max_materialiser_silence_ms": 3_000},
                             store={"heartbeat_interval_ms": 200, "catch_up_interval_ms": 100})
    service = start_service(settings)
    not_ready = service.wait_until("/health/ready", status=503).json()
    assert "dreamumm materialise" in not_ready["checks"]["store"]
    response = service.client.post("/v1/rank", json={"user_id": "u", "candidates": [{"video_id": "1"}]})
    assert response.status_code == 503
    assert response.json()["error"] == "not_ready"
    assert service.client.get("/health/live").status_code == 200

    embeddings = sample_inputs.publish(settings, events=sample_inputs.events.head(0))
    publish_user(settings, "known", embeddings[0].tolist())
    with materialiser_running(settings):
        service.wait_until("/health/ready")
        service.wait_until("/v1/users/known/vector")
        # A tombstone deletes the user; the service returns 404 once the store catches up.
        kafka_io.produce(settings.kafka.bootstrap_servers, settings.kafka.features_topic, [(b"known", None)])
        service.wait_until("/v1/users/known/vector", status=404, timeout_s=30)
    stale = service.wait_until("/health/ready", status=503, timeout_s=30).json()
    assert "max_materialiser_silence_ms (3000)" in stale["checks"]["materialiser_heartbeat"]


def test_errors_share_one_shape(small_service) -> None:
    client = small_service.client
    missing_route = client.get("/v1/nothing-here")
    assert missing_route.status_code == 404
    assert missing_route.json()["error"] == "not_found"
    wrong_method = client.get("/v1/rank")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == "method_not_allowed"
    surrogate = client.post("/v1/users/vectors", content=b'{"user_ids": ["\\ud800"]}',
                            headers={"content-type": "application/json"})
    assert problems_of(surrogate)[0][0] == "user_ids[0]"


def test_large_bodies_get_413(small_service) -> None:
    body = {"user_id": "known", "candidates": [{"video_id": "1"}],
            "history": [{"video_id": str(i), "play_time_ms": 1.0} for i in range(200)]}
    declared = small_service.client.post("/v1/rank", json=body)
    assert declared.status_code == 413
    assert "serving.max_request_bytes" in declared.json()["problems"][0]["message"]
    encoded = json.dumps(body).encode()
    chunked = small_service.client.post("/v1/rank", content=(encoded[i:i + 1_000] for i in range(0, len(encoded), 1_000)),
                                        headers={"content-type": "application/json"})
    assert chunked.status_code == 413
    assert chunked.json()["error"] == "request_too_large"


def test_user_ids_may_contain_slashes(small_service) -> None:
    assert small_service.client.get("/v1/users/with/slash/vector").json()["user_id"] == "with/slash"
    assert small_service.client.get("/v1/users/with%2Fslash/vector").json()["user_id"] == "with/slash"


def test_bad_model_stops_every_worker_count(make_settings, start_service, tmp_path) -> None:
    for workers in (1, 2):
        service = start_service(make_settings(ranking={"long_view_model_path": tmp_path / "missing.json"},
                                              serving={"workers": workers}))
        assert service.wait_for_exit(timeout_s=60) == 2
        assert "missing.json" in service.log()
