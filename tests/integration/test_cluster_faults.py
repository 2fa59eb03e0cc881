"""The feature job on a standalone Flink cluster loses its only TaskManager to SIGKILL while it
reads the first half of the shipped KuaiRand sample, and a new TaskManager takes over.

The job runs unbounded with exactly-once sinks, a checkpoint every second and the every_event
emission policy. The first half of the sample is published at a steady rate while the job runs.
The TaskManager is killed once a checkpoint has committed some feature records and later records
sit in a transaction that is still open, before the next checkpoint starts. The second half is published while no TaskManager runs,
then a new one starts and the job restores its newest checkpoint there. The test checks the
final vectors against the float64 reference.

With every_event, each record of a user counts one event more than the one before. The job
replays the events after the restored checkpoint and writes their records again, so a
read_uncommitted reader sees a user's event_count repeat or fall where the aborted records end.
In the read_committed view each user's event_count must never decrease, and must run 1, 2, 3 and
so on, so no record of an aborted transaction may be visible.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass

import pandas as pd
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

from dreamumm import kafka_io
from dreamumm.config import Settings
from dreamumm.records import watch_event_records
from infra import find_free_ports
from infra.flink_cluster import TERMINAL_JOB_STATES, FlinkCluster
from infra.flink_cluster_config import FlinkClusterSettings
from jobs.feature_job import start_feature_job
from schemas import USER_INTEREST, WATCH_EVENT, AvroCodec

pytestmark = pytest.mark.integration

logger = logging.getLogger(__name__)

CHECKPOINT_INTERVAL_MS = 1_000
# A standalone ResourceManager fails a slot request that no registered TaskManager can serve,
# except during its start-up period (resourcemanager.standalone.start-up-time, by default
# slot.request.timeout). In Flink 2.2.1 a period of 0 never ends, so 1 ms gives the behaviour of
# a long-running cluster from the start: each restart attempt without a TaskManager fails with
# NoResourceAvailableException within 0.1 to 4 s (measured). The restart strategy must therefore
# outlast the start of the new TaskManager, which registered 4 to 11 s after the kill on a 2-core
# machine. 20 attempts 2 s apart take over 40 s, and a job without a TaskManager for 25 s recovered.
#
# The REST API caches checkpoint statistics for web.refresh-interval (3 s) by default, in which
# time three checkpoints complete. 10 ms keeps the statistics read before the kill current, and
# the metric fetcher's 500 ms (10 s by default) the record counts read before the feed.
CLUSTER_OPTIONS = {
    "resourcemanager.standalone.start-up-time": "1 ms",
    "rest.cache.checkpoint-statistics.timeout": "10 ms",
    "metrics.fetcher.update-interval": "500 ms",
    "restart-strategy.type": "fixed-delay",
    "restart-strategy.fixed-delay.attempts": "20",
    "restart-strategy.fixed-delay.delay": "2 s",
}
FEED_RATE_PER_S = 250.0
FEED_SLICE = 25
"""Events published at a time while the first half is fed."""
KILL_WINDOW_S = 20.0
"""Time after the first half is published in which a transaction with records must be seen open."""
LATER_USER = "later-user"
LATER_EVENT_GAP_MS = 60_000
"""Time from the sample's last event to the later event that moves the watermark past it."""
JOB_START_TIMEOUT_S = 120.0
ACCOUNTING_TIMEOUT_S = 120.0
COMMIT_DELAY_MS = 200
"""Time after a checkpoint completes by which the sinks have committed its transactions, an estimate."""
TRIGGER_MARGIN_MS = 150
"""The kill comes at least this long before the next checkpoint can be triggered."""


@dataclass(frozen=True)
class CheckpointStatus:
    """The newest completed checkpoint of a job, with times in epoch ms, and the number of checkpoints in progress."""

    completed_id: int | None
    triggered_ms: int
    completed_ms: int
    in_progress: int


@dataclass(frozen=True)
class KillPoint:
    """The job's progress when the TaskManager was killed."""

    events_published: int
    """Events of the first half published before the kill."""
    checkpoint_id: int | None
    """Newest completed checkpoint at the kill."""
    checkpoint_age_ms: int
    """Time from the completion of that checkpoint to the kill."""
    last_stable_offsets: int
    """Sum of the feature topic's last stable offsets, up to which a read_committed consumer reads."""
    high_watermarks: int
    """Sum of the feature topic's high watermarks, which also count the records of open transactions."""


class FeatureTopicEnds:
    """Last stable offsets and high watermarks of the feature topic, from two consumers reused for each read."""

    def __init__(self, settings: Settings) -> None:
        self._topic = settings.kafka.features_topic
        self._consumers = {
            level: Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers,
                             "group.id": f"cluster-fault-ends-{level}", "isolation.level": level})
            for level in ("read_committed", "read_uncommitted")
        }

    def read(self) -> tuple[int, int]:
        """Return the sums over partitions of the last stable offset and of the high watermark.

        The two differ while a transaction with records is open.
        """
        totals = []
        for consumer in self._consumers.values():
            partitions = consumer.list_topics(self._topic, timeout=10).topics[self._topic].partitions
            totals.append(sum(consumer.get_watermark_offsets(TopicPartition(self._topic, partition), timeout=10)[1]
                              for partition in partitions))
        return totals[0], totals[1]

    def close(self) -> None:
        for consumer in self._consumers.values():
            consumer.close()


def later_event(events: pd.DataFrame) -> tuple[bytes, bytes, int]:
    """Return a record of a user outside the sample, beyond the disorder bound after its last event."""
    time_ms = int(events["time_ms"].max()) + LATER_EVENT_GAP_MS
    record = {"user_id": LATER_USER, "video_id": str(events["video_id"].iloc[0]), "watch_time_ms": 30_000.0,
              "duration_ms": 20_000, "event_time_ms": time_ms}
    return LATER_USER.encode(), AvroCodec.for_schema(WATCH_EVENT).encode(record), time_ms


def wait_for_join_input(cluster: FlinkCluster, job_id: str, expected_records: int, timeout_s: float) -> None:
    """Wait until the temporal join has read ``expected_records`` records, which before any event are embeddings."""
    deadline = time.monotonic() + timeout_s
    while True:
        vertices = cluster.rest_get(f"/jobs/{job_id}")["vertices"]
        join = next(vertex for vertex in vertices if vertex["name"].startswith("TemporalJoin"))
        read = join["metrics"]["read-records"]
        if read >= expected_records:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the temporal join of job {job_id} read {read} of {expected_records} embeddings "
                                 f"within {timeout_s:.0f} s")
        time.sleep(0.5)


def checkpoint_status(cluster: FlinkCluster, job_id: str) -> CheckpointStatus:
    """Return the newest completed checkpoint of ``job_id`` and the number in progress, from the REST API."""
    statistics = cluster.rest_get(f"/jobs/{job_id}/checkpoints")
    completed = (statistics.get("latest") or {}).get("completed") or {}
    return CheckpointStatus(completed.get("id"), completed.get("trigger_timestamp", 0),
                            completed.get("latest_ack_timestamp", 0), statistics["counts"]["in_progress"])


def in_kill_window(status: CheckpointStatus, now_ms: float) -> bool:
    """Return True if the newest checkpoint's transactions are committed and the next checkpoint has not started.

    Periodic checkpoints are due CHECKPOINT_INTERVAL_MS apart, so a kill in this window restores
    the newest checkpoint and aborts every record written since.
    """
    return (status.completed_id is not None and status.in_progress == 0
            and status.completed_ms + COMMIT_DELAY_MS <= now_ms
            and now_ms <= status.triggered_ms + CHECKPOINT_INTERVAL_MS - TRIGGER_MARGIN_MS)


def feed_and_kill(cluster: FlinkCluster, job_id: str, settings: Settings,
                  records: list[tuple[bytes, bytes, int]]) -> KillPoint:
    """Publish ``records`` at FEED_RATE_PER_S and kill TaskManager 0 while a transaction with records is open.

    The kill comes after a checkpoint has committed feature records, between two checkpoints
    (``in_kill_window``). Records not yet published at the kill are published right after it.
    Raises AssertionError if no such moment comes within KILL_WINDOW_S after the last record is published.
    """
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "enable.idempotence": True,
                         "linger.ms": 5})
    topic = settings.kafka.events_topic
    ends = FeatureTopicEnds(settings)
    published = 0
    started = time.monotonic()
    try:
        while True:
            if published < len(records):
                for key, value, timestamp in records[published:published + FEED_SLICE]:
                    producer.produce(topic, key=key, value=value, timestamp=timestamp)
                published = min(published + FEED_SLICE, len(records))
                assert producer.flush(30) == 0, f"events to {topic} were not acknowledged within 30 s"
            elif time.monotonic() > started + len(records) / FEED_RATE_PER_S + KILL_WINDOW_S:
                raise AssertionError(
                    f"no transaction with records was open between two checkpoints within {KILL_WINDOW_S:.0f} s "
                    f"of publishing the first half. Newest checkpoint: {checkpoint_status(cluster, job_id)}, last "
                    f"stable offsets and high watermarks of the feature topic: {ends.read()}")

            # Nothing aborts a transaction before the kill, so a last stable offset above 0 means
            # that a checkpoint has completed and committed feature records.
            before = checkpoint_status(cluster, job_id)
            last_stable, high_watermark = ends.read()
            after = checkpoint_status(cluster, job_id)
            now_ms = time.time() * 1000
            if (after == before and in_kill_window(after, now_ms)
                    and last_stable > 0 and high_watermark > last_stable):
                cluster.kill_taskmanager(0)
                kill_point = KillPoint(published, after.completed_id, round(now_ms - after.completed_ms),
                                       last_stable, high_watermark)
                break
            time.sleep(max(0.02, started + published / FEED_RATE_PER_S - time.monotonic()))
    finally:
        ends.close()
    kafka_io.produce(settings.kafka.bootstrap_servers, topic, records[published:])
    return kill_point


def read_event_counts(settings: Settings, isolation_level: str) -> dict[str, list[int]]:
    """Read the whole feature topic with ``isolation_level`` and return each user's event_count, record by record.

    Records of one user share a partition, so each list is in the order the job wrote them.
    """
    topic = settings.kafka.features_topic
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers,
                         "group.id": f"cluster-fault-reader-{isolation_level}", "enable.auto.commit": False,
                         "isolation.level": isolation_level, "enable.partition.eof": True})
    codec = AvroCodec.for_schema(USER_INTEREST)
    counts: dict[str, list[int]] = {}
    try:
        partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING) for partition in partitions])
        finished: set[int] = set()
        deadline = time.monotonic() + 60
        while len(finished) < len(partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} ({isolation_level}) timed out after 60 s, with partitions "
                                   f"{sorted(finished)} read to their end")
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:
                if message.error().code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(message.error())
                finished.add(message.partition())
                continue
            assert message.value() is not None, f"unexpected tombstone for user {message.key()!r}"
            value = codec.decode(message.value())
            counts.setdefault(value["user_id"], []).append(value["event_count"])
    finally:
        consumer.close()
    return counts


def decreases(counts: list[int]) -> list[tuple[int, int]]:
    """Return each pair of consecutive values in ``counts`` where the second is smaller."""
    return [(before, after) for before, after in zip(counts, counts[1:]) if after < before]


def non_increases(counts: list[int]) -> list[tuple[int, int]]:
    """Return each pair of consecutive values in ``counts`` where the second is not larger."""
    return [(before, after) for before, after in zip(counts, counts[1:]) if after <= before]


def describe_failure(cluster: FlinkCluster, job_id: str) -> str:
    """Return the job's state and the first line of each failure in its exception history."""
    history = cluster.rest_get(f"/jobs/{job_id}/exceptions")["exceptionHistory"]["entries"]
    failures = [entry["stacktrace"].splitlines()[0] for entry in history]
    return f"job {job_id} is {cluster.job_state(job_id)}. Failures, newest first: {failures}"


def test_taskmanager_kill_keeps_exactly_once(make_settings, runtime_jars, sample_inputs, checks, tmp_path) -> None:
    rpc_port, rest_port = find_free_ports(2)
    settings = make_settings(
        # make_settings keeps the default deletions topic, which every test shares, so this job gets its own.
        kafka={"deletions_topic": f"deletions-{uuid.uuid4().hex[:10]}"},
        job={"bounded": False, "delivery_guarantee": "exactly-once", "checkpoint_interval_ms": CHECKPOINT_INTERVAL_MS,
             "jobmanager_address": f"127.0.0.1:{rest_port}"},
        emission={"policy": "every_event"})
    cluster_settings = FlinkClusterSettings(root_dir=tmp_path / "flink-cluster", jobmanager_rpc_port=rpc_port,
                                            rest_port=rest_port, extra_options=CLUSTER_OPTIONS)
    events = sample_inputs.events.sort_values(["time_ms", "user_id"], kind="stable")
    records = list(watch_event_records(events))
    half = len(records) // 2
    started = time.monotonic()

    with FlinkCluster(cluster_settings, taskmanagers=1) as cluster:
        # Topics and embeddings only: the events follow once the job runs.
        vectors = sample_inputs.publish(settings, events.iloc[:0])
        job = start_feature_job(settings, runtime_jars)
        try:
            # This test is about the kill, so the feed waits until the embeddings reached the join.
            # Once, before embeddings were decoded in the JVM, 141 early events were dead-lettered as
            # missing_embedding; the cause was the likely one, not a proven one.
            wait_for_join_input(cluster, job.job_id, len(vectors), JOB_START_TIMEOUT_S)
            logger.info("job %s has its embeddings at the join %.1f s after the test started", job.job_id,
                        time.monotonic() - started)

            kill_point = feed_and_kill(cluster, job.job_id, settings, records[:half])
            logger.info("killed the TaskManager %.1f s after the test started: %s", time.monotonic() - started,
                        kill_point)
            kafka_io.produce(settings.kafka.bootstrap_servers, settings.kafka.events_topic,
                             [*records[half:], later_event(events)])
            cluster.add_taskmanager()
            logger.info("new TaskManager registered %.1f s after the test started", time.monotonic() - started)

            # The later event stays pending: it waits for an event beyond the disorder bound after it.
            try:
                summary = checks.wait_until_balanced(settings, expected_events=len(records) + 1, pending=1,
                                                     timeout_s=ACCOUNTING_TIMEOUT_S)
            except AssertionError as error:
                raise AssertionError(f"{error}\n{describe_failure(cluster, job.job_id)}") from error
            logger.info("every event accounted for %.1f s after the test started", time.monotonic() - started)
            checkpoints = cluster.rest_get(f"/jobs/{job.job_id}/checkpoints")
            failures = cluster.rest_get(f"/jobs/{job.job_id}/exceptions")["exceptionHistory"]["entries"]
        finally:
            if cluster.job_state(job.job_id) not in TERMINAL_JOB_STATES:
                cluster.cancel_job(job.job_id)
        assert cluster.wait_for_job_state(job.job_id, TERMINAL_JOB_STATES) == "CANCELED"
    logger.info("cluster stopped %.1f s after the test started, restored %s after %d failures",
                time.monotonic() - started, checkpoints["latest"].get("restored"), len(failures))

    restored = checkpoints["latest"].get("restored")
    assert restored is not None, "the job restored no checkpoint after the TaskManager was killed"
    assert restored["id"] == kill_point.checkpoint_id
    assert failures, "the job's exception history lists no failure"
    assert LATER_USER not in summary.users
    assert summary.dead_letters_by_reason == Counter()
    assert summary.events_deduplicated == 0
    checks.matches_reference(settings, summary, events, vectors)

    committed = read_event_counts(settings, "read_committed")
    written = read_event_counts(settings, "read_uncommitted")
    replayed_users = sorted(user_id for user_id, counts in written.items() if non_increases(counts))
    logger.info("feature records: %d committed, %d written. Users whose written event_count repeats or falls: %s",
                sum(map(len, committed.values())), sum(map(len, written.values())), replayed_users)
    assert replayed_users, "no aborted record is followed by its replay, so the kill tested no aborted transaction"
    for user_id, counts in committed.items():
        assert not decreases(counts), f"user {user_id}: event_count decreases in the committed records {counts}"
        assert counts == list(range(1, len(counts) + 1)), f"user {user_id}: committed event_counts {counts}"
