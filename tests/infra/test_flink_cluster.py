"""The feature job on a standalone Flink cluster (a JobManager and a TaskManager, each its own
JVM) started from the apache-flink wheel, checked against the float64 reference."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from dreamumm import kafka_io
from dreamumm.summary import summarise_run
from infra import find_free_ports
from infra.flink_cluster import FlinkCluster
from infra.flink_cluster_config import FlinkClusterSettings
from jobs.feature_job import run_feature_job

pytestmark = pytest.mark.integration

# Flink restarts a failing job without end when checkpointing is on, and waits 5 minutes for
# the slots of a TaskManager that died. These limits make a broken job fail the test quickly.
FAIL_FAST_OPTIONS = {
    "restart-strategy.type": "fixed-delay",
    "restart-strategy.fixed-delay.attempts": "2",
    "restart-strategy.fixed-delay.delay": "1 s",
    "slot.request.timeout": "30 s",
}


def test_job_on_standalone_cluster(make_settings, runtime_jars, bad_records, sample_inputs, checks,
                                   tmp_path: Path) -> None:
    rpc_port, rest_port = find_free_ports(2)
    settings = make_settings(job={"jobmanager_address": f"127.0.0.1:{rest_port}"})
    cluster_settings = FlinkClusterSettings(root_dir=tmp_path / "flink-cluster", jobmanager_rpc_port=rpc_port,
                                            rest_port=rest_port, extra_options=FAIL_FAST_OPTIONS)
    vectors = sample_inputs.publish(settings)
    kafka_io.produce(settings.kafka.bootstrap_servers, settings.kafka.events_topic,
                     [(key, value) for key, value, _ in bad_records.events])

    with FlinkCluster(cluster_settings, taskmanagers=1) as cluster:
        run = run_feature_job(settings, runtime_jars)
        assert cluster.jobs() == {run.job_id: "FINISHED"}

    summary = summarise_run(settings)
    assert summary.events_read == len(sample_inputs.events) + len(bad_records.events)
    assert summary.balanced
    assert summary.dead_letters_by_reason == Counter(reason for _, _, reason in bad_records.events)
    checks.matches_reference(settings, summary, sample_inputs.events, vectors)
