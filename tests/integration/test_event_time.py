"""Event time on the real broker and job: lateness, clocks ahead, idle partitions, recency,
and the same result whatever the arrival order."""

from __future__ import annotations

from collections import Counter
from typing import Iterator

import numpy as np
import pytest
from confluent_kafka import Producer

from dreamumm import kafka_io, steps
from dreamumm.config import Settings
from dreamumm.records import video_embedding_records, watch_event_records
from dreamumm.summary import summarise_run
from jobs.feature_job import run_feature_job, start_feature_job
from operators import cosine
from schemas import WATCH_EVENT, AvroCodec

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000
HOUR_MS = 3_600_000


def event_record(user_id: str, video_id: str, time_ms: int, timestamp_ms: int) -> tuple[bytes, bytes, int]:
    record = {"user_id": user_id, "video_id": video_id, "watch_time_ms": 30_000.0, "duration_ms": 20_000,
              "event_time_ms": time_ms}
    return user_id.encode(), AvroCodec.for_schema(WATCH_EVENT).encode(record), timestamp_ms


def unit_embeddings(dimension: int, count: int) -> dict[str, np.ndarray]:
    vectors = {}
    for index in range(count):
        vector = np.zeros(dimension, dtype=np.float32)
        vector[index % dimension] = 1.0
        vectors[f"v{index}"] = vector
    return vectors


def test_late_and_ahead_events_dead_lettered(make_settings, runtime_jars, checks) -> None:
    settings = make_settings(job={"allowed_lateness_ms": HOUR_MS, "max_event_time_ahead_ms": HOUR_MS})
    steps.create_topics(settings)
    bootstrap, kafka = settings.kafka.bootstrap_servers, settings.kafka
    kafka_io.produce(bootstrap, kafka.embeddings_topic,
                     video_embedding_records(unit_embeddings(settings.embedding.dimension, 1), "m1"))
    kafka_io.produce(bootstrap, kafka.events_topic, [
        event_record("on-time", "v0", T0, T0),
        event_record("half-hour-late", "v0", T0, T0 + HOUR_MS // 2),
        event_record("two-hours-late", "v0", T0, T0 + 2 * HOUR_MS),
        event_record("two-hours-ahead", "v0", T0 + 2 * HOUR_MS, T0),
    ])

    run = run_feature_job(settings, runtime_jars)

    summary = summarise_run(settings)
    checks.accounted(run.counters, summary)
    assert sorted(summary.users) == ["half-hour-late", "on-time"]
    assert summary.dead_letters_by_reason == Counter({"too_late": 1, "invalid_field": 1})
    assert run.counters.get("dead_letters_too_late") == 1


def test_silent_partition_does_not_stall(make_settings, runtime_jars, checks) -> None:
    settings = make_settings(kafka={"partitions": 4}, job={"bounded": False, "checkpoint_interval_ms": 1_000})
    steps.create_topics(settings)
    bootstrap, kafka = settings.kafka.bootstrap_servers, settings.kafka
    kafka_io.produce(bootstrap, kafka.embeddings_topic,
                     video_embedding_records(unit_embeddings(settings.embedding.dimension, 3), "m1"))
    job = start_feature_job(settings, runtime_jars)
    try:
        # Partitions 0 to 2 get events; partition 3 never gets a record.
        producer = Producer({"bootstrap.servers": bootstrap})
        for second in range(20):
            for partition in range(3):
                key, value, timestamp = event_record(f"user-{partition}", f"v{partition}", T0 + second * 1_000,
                                                     T0 + second * 1_000)
                producer.produce(kafka.events_topic, key=key, value=value, timestamp=timestamp, partition=partition)
        producer.flush(30)

        # The three newest events stay within the watermark's disorder bound until later events
        # arrive; all older ones must be joined although partition 3 is silent.
        summary = checks.wait_until_balanced(settings, expected_events=60, pending=3, timeout_s=90)
    finally:
        job.cancel()

    for partition in range(3):
        assert summary.users[f"user-{partition}"].event_count == 19


def test_recency_half_life_matches_reference(make_settings, runtime_jars, sample_inputs, checks) -> None:
    settings = make_settings(preference={"recency_half_life_ms": 2 * 86_400_000.0})
    vectors = sample_inputs.publish(settings)

    run = run_feature_job(settings, runtime_jars)

    summary = summarise_run(settings)
    checks.accounted(run.counters, summary)
    checks.matches_reference(settings, summary, sample_inputs.events, vectors, weight_tolerance=1e-5)


def test_shuffled_replay_matches_live(make_settings, runtime_jars, sample_inputs, checks) -> None:
    live = make_settings(job={"bounded": False, "checkpoint_interval_ms": 1_000})
    vectors = sample_inputs.publish(live)
    # The last events wait until the watermark passes them, which in a live run takes a later
    # event: one of another user, beyond the disorder bound, plays that part.
    last_time = int(sample_inputs.events["time_ms"].max())
    first_video = str(sample_inputs.events["video_id"].iloc[0])
    kafka_io.produce(live.kafka.bootstrap_servers, live.kafka.events_topic,
                     [event_record("later-user", first_video, last_time + 60_000, last_time + 60_000)])
    job = start_feature_job(live, runtime_jars)
    try:
        live_summary = checks.wait_until_balanced(live, expected_events=len(sample_inputs.events) + 1,
                                                  pending=1, timeout_s=120)
    finally:
        job.cancel()
    assert "later-user" not in live_summary.users

    # The same events, shuffled across four partitions: every user's events arrive out of order.
    replay = make_settings(kafka={"partitions": 4})
    steps.create_topics(replay)
    kafka_io.produce(replay.kafka.bootstrap_servers, replay.kafka.embeddings_topic,
                     list(embedding_records_of(live)))
    order = np.random.default_rng(7).permutation(len(sample_inputs.events))
    shuffled = sample_inputs.events.iloc[order]
    producer = Producer({"bootstrap.servers": replay.kafka.bootstrap_servers})
    for index, (key, value, timestamp) in enumerate(watch_event_records(shuffled, sort_by_time=False)):
        producer.produce(replay.kafka.events_topic, key=key, value=value, timestamp=timestamp, partition=index % 4)
        if index % 1_000 == 0:
            producer.poll(0)
    producer.flush(30)
    run = run_feature_job(replay, runtime_jars)

    replay_summary = summarise_run(replay)
    checks.accounted(run.counters, replay_summary)
    assert set(replay_summary.users) == set(live_summary.users)
    for user_id, live_vector in live_summary.users.items():
        replayed = replay_summary.users[user_id]
        assert cosine(replayed.vector, live_vector.vector) >= 1 - 1e-6, f"user {user_id}"
        assert replayed.event_count == live_vector.event_count, f"user {user_id}"
    checks.matches_reference(replay, replay_summary, sample_inputs.events, vectors)


def embedding_records_of(settings: Settings) -> Iterator[tuple[bytes | None, bytes | None]]:
    """Yield the (key, value) records of the settings' embeddings topic, to copy them to another topic."""
    for record in kafka_io.read_topic(settings.kafka.bootstrap_servers, settings.kafka.embeddings_topic):
        yield record.key, record.value
