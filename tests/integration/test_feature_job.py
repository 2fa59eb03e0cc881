"""The feature job end to end, on the real broker and a real local Flink cluster, against a
float64 reference computed straight from the shipped KuaiRand sample."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dreamumm import kafka_io, steps
from dreamumm.config import Settings
from dreamumm.records import video_embedding_records, watch_event_records
from dreamumm.summary import summarise_run
from embeddings import (
    SAMPLE_EVENTS_PATH,
    VIDEO_FEATURES_PATH,
    ContentEmbeddingConfig,
    build_content_embeddings,
    load_events,
    load_video_table,
    model_version,
)
from jobs.feature_job import JobRun, run_feature_job
from schemas import WATCH_EVENT, AvroCodec

pytestmark = pytest.mark.integration

VIDEOS_WITHOUT_EMBEDDING = 12


def publish_sample(
    settings: Settings, bad_records: Any
) -> tuple[pd.DataFrame, dict[int, np.ndarray], Counter[str]]:
    """Publish embeddings (minus a few videos), the real events and some bad records.

    Returns the events, the published embeddings and the dead-letter reasons the bad records expect.
    """
    steps.create_topics(settings)
    events = load_events(SAMPLE_EVENTS_PATH)
    config = ContentEmbeddingConfig(dimension=settings.embedding.dimension, salt=settings.embedding.content_salt)
    vectors = build_content_embeddings(load_video_table(VIDEO_FEATURES_PATH), config)
    withheld = sorted(events["video_id"].unique())[:VIDEOS_WITHOUT_EMBEDDING]
    published = {video: vector for video, vector in vectors.items() if video not in set(withheld)}
    bootstrap = settings.kafka.bootstrap_servers
    kafka_io.produce(bootstrap, settings.kafka.embeddings_topic, video_embedding_records(published, model_version(config)))
    kafka_io.produce(bootstrap, settings.kafka.embeddings_topic, [(b"bad", bad_records.embedding)])

    kafka_io.produce(bootstrap, settings.kafka.events_topic, watch_event_records(events))
    bad_events = bad_records.events
    kafka_io.produce(bootstrap, settings.kafka.events_topic, [(key, value) for key, value, _ in bad_events])
    expected = Counter(reason for _, _, reason in bad_events)
    expected["missing_embedding"] = int(events["video_id"].isin(withheld).sum())
    return events, published, expected


def check_against_reference(settings: Settings, run: JobRun, events: pd.DataFrame, published: dict[int, np.ndarray],
                            expected_dead_letters: Counter[str], checks: Any) -> None:
    summary = summarise_run(settings)
    checks.accounted(run.counters, summary)
    checks.matches_reference(settings, summary, events, published)

    assert summary.dead_letters_by_reason == expected_dead_letters
    assert summary.embedding_dead_letters_by_reason == Counter({"invalid_embedding": 1})
    assert summary.events_read == len(events) + sum(expected_dead_letters.values()) - expected_dead_letters[
        "missing_embedding"]
    assert summary.events_read == summary.events_contributed + summary.events_dead_lettered
    assert summary.feature_tombstones == 0


def test_job_matches_reference_emitting_every_event(bad_records, make_settings, runtime_jars, checks) -> None:
    settings = make_settings(emission={"policy": "every_event"})
    events, published, expected = publish_sample(settings, bad_records)

    run = run_feature_job(settings, runtime_jars)

    check_against_reference(settings, run, events, published, expected, checks)


def test_job_matches_reference_at_parallelism_2_with_interval(bad_records, make_settings, runtime_jars,
                                                              checks) -> None:
    settings = make_settings(
        job={"parallelism": 2},
        emission={"policy": "interval", "interval_ms": 500},
    )
    events, published, expected = publish_sample(settings, bad_records)

    run = run_feature_job(settings, runtime_jars)

    check_against_reference(settings, run, events, published, expected, checks)


def test_embedding_versions_by_valid_from(make_settings, runtime_jars, checks) -> None:
    settings = make_settings()
    steps.create_topics(settings)
    bootstrap, kafka = settings.kafka.bootstrap_servers, settings.kafka
    dimension = settings.embedding.dimension
    event_codec = AvroCodec.for_schema(WATCH_EVENT)
    t0 = 1_700_000_000_000

    def embedding(video_id: str, axis: int, model_version: str = "test-v1",
                  valid_from_ms: int | None = None) -> list[tuple[bytes, bytes]]:
        vector = np.zeros(dimension, dtype=np.float32)
        vector[axis] = 1.0
        return list(video_embedding_records({video_id: vector}, model_version, valid_from_ms=valid_from_ms))

    def event(user_id: str, video_id: str, time_ms: int) -> list[tuple[bytes, bytes, int]]:
        record = {"user_id": user_id, "video_id": video_id, "watch_time_ms": 30_000.0, "duration_ms": 20_000,
                  "event_time_ms": time_ms}
        return [(user_id.encode(), event_codec.encode(record), time_ms)]

    # v1 has a version valid for every time and a second one, in another direction, from t0 + 10 s.
    kafka_io.produce(bootstrap, kafka.embeddings_topic,
                     embedding("v1", 1) + embedding("v1", 2, valid_from_ms=t0 + 10_000) + embedding("v5", 5, "test-v2"))
    kafka_io.produce(bootstrap, kafka.events_topic,
                     event("before", "v1", t0) + event("after", "v1", t0 + 20_000)
                     + event("switch", "v1", t0) + event("switch", "v5", t0 + 1)
                     + event("never", "v4", t0))

    run = run_feature_job(settings, runtime_jars)

    summary = summarise_run(settings)
    checks.accounted(run.counters, summary)
    assert sorted(summary.users) == ["after", "before", "switch"]
    assert summary.users["before"].vector[1] == pytest.approx(1.0)
    assert summary.users["after"].vector[2] == pytest.approx(1.0)
    # The second model version restarts the sum; the first event stays counted as superseded.
    assert summary.users["switch"].event_count == 1
    assert summary.users["switch"].superseded_event_count == 1
    assert summary.dead_letters_by_reason == Counter({"missing_embedding": 1})
    assert summary.balanced
