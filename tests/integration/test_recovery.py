"""Savepoints and restores of the job on the real broker: stop halfway, change parallelism,
resume, and finish by itself at the recorded end offsets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer

from dreamumm import kafka_io, steps
from dreamumm.config import Settings
from dreamumm.records import video_embedding_records, watch_event_records
from dreamumm.summary import summarise_run
from embeddings import ContentEmbeddingConfig, model_version
from jobs.counters import read_counters
from jobs.environment import counters_dir
from jobs.feature_job import start_feature_job

pytestmark = pytest.mark.integration


def produce_to_partitions(settings: Settings, records: list[tuple[bytes, bytes, int]], partitions: list[int]) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "enable.idempotence": True})
    for (key, value, timestamp), partition in zip(records, partitions):
        producer.produce(settings.kafka.events_topic, key=key, value=value, timestamp=timestamp, partition=partition)
    assert producer.flush(30) == 0


def run_job_process(settings: Settings, arguments: list[str], log_path: Path,
                    timeout_s: float = 240.0) -> subprocess.CompletedProcess:
    """Run ``dreamumm run-job`` with ``settings`` passed as DREAMUMM__ environment overrides."""
    environment = dict(os.environ)
    for section, values in settings.model_dump(mode="json", exclude_none=True).items():
        for name, value in values.items():
            if not isinstance(value, dict) or value:
                environment[f"DREAMUMM__{section.upper()}__{name.upper()}"] = json.dumps(value)
    with log_path.open("w") as log:
        return subprocess.run([str(Path(sys.executable).parent / "dreamumm"), "run-job", *arguments],
                              env=environment, stdout=log, stderr=subprocess.STDOUT, timeout=timeout_s, check=False)


def wait_for_events_read(settings: Settings, expected: int, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while read_counters(counters_dir(settings)).get("events_read") < expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"the job did not read {expected} events within {timeout_s} s")
        time.sleep(0.5)


def test_savepoint_resume_at_parallelism_2(make_settings, runtime_jars, sample_inputs, checks, tmp_path) -> None:
    events = sample_inputs.events.sort_values(["time_ms", "user_id"], kind="stable")
    records = list(watch_event_records(events))
    partitions = [int(user) % 2 for user in events["user_id"]]
    # Each partition's end offset is known before anything is written: the producer is not
    # transactional, so offsets are 0, 1, 2, ... in each partition.
    stop_offsets = {partition: partitions.count(partition) for partition in (0, 1)}
    first = make_settings(job={"events_stop_offsets": stop_offsets, "checkpoint_interval_ms": 1_000})
    steps.create_topics(first)
    config = ContentEmbeddingConfig(dimension=first.embedding.dimension, salt=first.embedding.content_salt)
    vectors = sample_inputs.embeddings(first)
    kafka_io.produce(first.kafka.bootstrap_servers, first.kafka.embeddings_topic,
                     video_embedding_records(vectors, model_version(config)))
    half = len(records) // 2
    produce_to_partitions(first, records[:half], partitions[:half])

    # The job reads the first half, then waits for offsets that do not exist yet.
    job = start_feature_job(first, runtime_jars)
    wait_for_events_read(first, half)
    savepoint = job.stop_with_savepoint(tmp_path / "savepoints")
    first_counters = read_counters(counters_dir(first))

    produce_to_partitions(first, records[half:], partitions[half:])
    # Flink numbers the nodes of a SQL plan per process, so a restored job runs in a new process,
    # as it would in production.
    resumed = first.model_copy(update={"job": first.job.model_copy(update={"parallelism": 2})})
    result = run_job_process(resumed, ["--restore", str(savepoint)], tmp_path / "resumed.log")
    assert result.returncode == 0, (tmp_path / "resumed.log").read_text()[-3000:]
    resumed_counters = read_counters(counters_dir(resumed))

    summary = summarise_run(resumed)
    assert summary.balanced
    assert summary.events_read == len(records)
    assert first_counters.get("events_read") == half
    assert first_counters.get("events_read") + resumed_counters.get("events_read") == len(records)
    checks.matches_reference(resumed, summary, events, vectors)
