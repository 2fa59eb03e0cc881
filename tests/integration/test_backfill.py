"""Backfills on the real broker and job: a bounded run over exactly a recording's offsets, and
over the offsets a replay of that recording wrote, give the same vectors."""

from __future__ import annotations

import pytest

from dreamumm import kafka_io, steps
from dreamumm.config import ConfigError, Settings
from dreamumm.records import watch_event_records
from dreamumm.summary import latest_user_vectors
from jobs.feature_job import run_feature_job
from jobs.preflight import check_before_start
from operators import cosine
from recording import record_topic, replay_recording

pytestmark = pytest.mark.integration


def with_range(settings: Settings, topic: str, start: dict[int, int], stop: dict[int, int]) -> Settings:
    data = settings.model_dump()
    data["kafka"]["events_topic"] = topic
    data["job"].update(bounded=True, events_startup_mode="specific-offsets", events_start_offsets=start,
                       events_stop_offsets=stop)
    return Settings.model_validate(data)


def test_recorded_range_and_replay_agree(make_settings, runtime_jars, sample_inputs, tmp_path) -> None:
    settings = make_settings()
    sample_inputs.publish(settings)
    bootstrap = settings.kafka.bootstrap_servers
    manifest = record_topic(bootstrap, settings.kafka.events_topic, tmp_path / "recording")
    # Events written after the recording lie outside its range, so the backfill must not read them.
    later = sample_inputs.events.head(100).assign(time_ms=lambda frame: frame["time_ms"] + 1)
    kafka_io.produce(bootstrap, settings.kafka.events_topic, watch_event_records(later))

    backfill = with_range(settings, settings.kafka.events_topic, manifest.start_offsets(), manifest.end_offsets())
    run = run_feature_job(backfill, runtime_jars)

    assert run.counters.get("events_read") == len(sample_inputs.events)
    assert run.counters.balanced, run.counters.describe()
    users, _records, _tombstones = latest_user_vectors(backfill)

    replayed_topic = f"{settings.kafka.events_topic}-replayed"
    replay = replay_recording(bootstrap, tmp_path / "recording", target_topic=replayed_topic)
    replayed = make_settings()
    replayed = with_range(replayed.model_copy(update={"kafka": replayed.kafka.model_copy(
        update={"embeddings_topic": settings.kafka.embeddings_topic})}),
        replayed_topic, replay.start_offsets(), replay.end_offsets())
    steps.create_topics(replayed)
    replay_run = run_feature_job(replayed, runtime_jars)

    assert replay_run.counters.get("events_read") == len(sample_inputs.events)
    replayed_users, _records, _tombstones = latest_user_vectors(replayed)
    assert set(replayed_users) == set(users)
    for user_id, user in users.items():
        assert cosine(replayed_users[user_id].vector, user.vector) >= 1 - 1e-6, f"user {user_id}"
        assert replayed_users[user_id].event_count == user.event_count, f"user {user_id}"


def test_transaction_timeout_above_broker_max(make_settings) -> None:
    settings = make_settings(job={"transaction_timeout_ms": 1_000_000})
    steps.create_topics(settings)

    with pytest.raises(ConfigError, match="transaction.max.timeout.ms = 900000"):
        check_before_start(settings)


def test_stop_offsets_must_cover_partitions(make_settings) -> None:
    settings = make_settings(job={"events_stop_offsets": {0: 5}})
    steps.create_topics(settings)

    with pytest.raises(ConfigError, match="give an end offset for every partition"):
        check_before_start(settings)
