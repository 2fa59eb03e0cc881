"""The feature job on a standalone Flink cluster (a JobManager and a TaskManager, each its own
JVM) started from the apache-flink wheel, checked against the float64 reference."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from dreamumm import kafka_io, steps
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
from infra import find_free_ports
from infra.flink_cluster import FlinkCluster
from infra.flink_cluster_config import FlinkClusterSettings
from jobs.feature_job import run_feature_job
from jobs.weighting import build_threshold_rule
from operators import cosine, reference_interests

pytestmark = pytest.mark.integration

# Flink restarts a failing job without end when checkpointing is on, and waits 5 minutes for
# the slots of a TaskManager that died. These limits make a broken job fail the test quickly.
FAIL_FAST_OPTIONS = {
    "restart-strategy.type": "fixed-delay",
    "restart-strategy.fixed-delay.attempts": "2",
    "restart-strategy.fixed-delay.delay": "1 s",
    "slot.request.timeout": "30 s",
}


def test_job_on_standalone_cluster(make_settings, runtime_jars, bad_records, tmp_path: Path) -> None:
    rpc_port, rest_port = find_free_ports(2)
    settings = make_settings(job={"jobmanager_address": f"127.0.0.1:{rest_port}"})
    cluster_settings = FlinkClusterSettings(root_dir=tmp_path / "flink-cluster", jobmanager_rpc_port=rpc_port,
                                            rest_port=rest_port, extra_options=FAIL_FAST_OPTIONS)

    steps.create_topics(settings)
    events = load_events(SAMPLE_EVENTS_PATH)
    config = ContentEmbeddingConfig(dimension=settings.embedding.dimension, salt=settings.embedding.content_salt)
    vectors = build_content_embeddings(load_video_table(VIDEO_FEATURES_PATH), config)
    bootstrap, kafka = settings.kafka.bootstrap_servers, settings.kafka
    kafka_io.produce(bootstrap, kafka.embeddings_topic, video_embedding_records(vectors, model_version(config)))
    kafka_io.produce(bootstrap, kafka.events_topic, watch_event_records(events))
    kafka_io.produce(bootstrap, kafka.events_topic, [(key, value) for key, value, _ in bad_records.events])

    with FlinkCluster(cluster_settings, taskmanagers=1) as cluster:
        run = run_feature_job(settings, runtime_jars)
        assert cluster.jobs() == {run.job_id: "FINISHED"}

    summary = summarise_run(settings)
    assert summary.events_read == len(events) + len(bad_records.events)
    assert summary.balanced
    assert summary.dead_letters_by_reason == Counter(reason for _, _, reason in bad_records.events)
    reference = reference_interests(events, vectors, settings.preference.alpha_per_s,
                                    build_threshold_rule(settings.preference))
    assert set(summary.users) == {str(user) for user, ref in reference.items() if ref.vector is not None}
    for user_id, emitted in summary.users.items():
        ref = reference[int(user_id)]
        assert cosine(emitted.vector, ref.vector) >= 1 - 1e-6, f"user {user_id}"
        assert emitted.total_weight == pytest.approx(ref.total_weight, rel=1e-6), f"user {user_id}"
        assert emitted.event_count == ref.event_count, f"user {user_id}"
