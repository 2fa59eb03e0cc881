"""Fault tests on a real broker with the feature job as a child process.

One test kills the job's whole process group with SIGKILL at random points and restores it
from its newest checkpoint each time. Another kills the broker with SIGKILL mid-stream and
starts it again on the same data folder and ports. The tests feed events at a steady rate while
the job runs. Then they check the final vectors against the float64 reference, and every event's
fate against the topics. Each event must contribute once or become one dead letter with the
expected reason, and a record that the producer wrote twice must be dropped by its event id.

The events are SYNTHETIC: ``benchmarks.synthetic`` fitted to the shipped KuaiRand sample,
because its 4,405 real events would be consumed long before the fifth restart.

An unbounded job joins an event once the watermark has passed the event's time, and the
watermark does not move while no event arrives, so the newest events of a finished stream would
wait forever. Each stream therefore ends with one sentinel event per partition, an hour after
every other event. The sentinels release every other event and stay pending themselves.

The SIGKILL test prints the seed of its kill delays, and DREAMUMM_FAULT_SEED repeats them.
Set DREAMUMM_SLOW_FAULT_TESTS=1 to also run a broker outage of 150 s, which takes about 5 minutes.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.synthetic import EventProfile, fit_profile, generate_events
from dreamumm import kafka_io, steps
from dreamumm.config import Settings, load_settings
from dreamumm.records import video_embedding_records, watch_event_records
from dreamumm.summary import RunSummary, summarise_run
from embeddings import SAMPLE_EVENTS_PATH, load_events
from infra import BrokerSettings, LocalBroker, find_free_ports
from jobs.checkpoints import checkpoints_root, latest_checkpoint
from jobs.dead_letters import MISSING_EMBEDDING
from schemas import DEAD_LETTER, USER_INTEREST, WATCH_EVENT, AvroCodec
from tests.integration.job_process import (
    JobExitedError,
    JobProcess,
    OutgoingRecord,
    PacedProducer,
    completed_checkpoints,
    job_environment,
    read_view,
)

pytestmark = pytest.mark.integration

USERS = 100
VIDEOS = 3_000
VIDEOS_WITHOUT_EMBEDDING = 30
"""Videos 0 to 29 get no embedding, so their events are dead-lettered as missing_embedding."""
GENERATOR_SEED = 11
BAD_RECORD_REPEATS = 3
"""Each malformed record of the ``bad_records`` fixture goes into the stream this many times."""
SENTINEL_USER = "watermark-sentinel"
SENTINEL_GAP_MS = 3_600_000
MODEL_VERSION = "fault-test-v1"

CHECKPOINT_INTERVAL_MS = 1_000
JOB_START_TIMEOUT_S = 120.0
"""Timeout of a job's first checkpoint after its start. That took 13 to 50 s in runs on a 2-core
machine, the longer times while other tests ran."""
ACCOUNTING_TIMEOUT_S = 120.0

KILLS = 5
MAX_KILL_DELAY_S = 3.0
KILL_TEST_EVENTS = 30_000
KILL_TEST_RATE_PER_S = 400.0
"""75 s of input. The five kills and restarts took 85 to 200 s in runs on a 2-core machine."""

BROKER_TEST_EVENTS = 16_000
BROKER_TEST_RATE_PER_S = 400.0
"""40 s of input: the broker is killed 5 s in and is back about 15 to 25 s later."""
PRODUCING_BEFORE_BROKER_KILL_S = 5.0
BROKER_DOWN_S = 3.0
LONG_BROKER_DOWN_S = 150.0


@cache
def sample_profile() -> EventProfile:
    return fit_profile(load_events(SAMPLE_EVENTS_PATH))


CONTRIBUTES = "contributes"
PENDING = "pending"
"""Fate of a sentinel: it stays in the join until a later event moves the watermark past it."""


@dataclass(frozen=True)
class FaultInput:
    """A test's event stream, the fate of each record, and the embeddings the job can join."""

    records: list[OutgoingRecord]
    fates: list[str]
    """Per record: CONTRIBUTES, PENDING, or the reason of its expected dead letter."""
    events: pd.DataFrame
    """The synthetic events alone, for the reference."""
    embeddings: dict[int, np.ndarray]
    """The published embeddings, by video id."""


def build_input(settings: Settings, event_count: int, bad_records) -> FaultInput:
    """Build synthetic events with malformed records spread through them and a sentinel per partition."""
    events = generate_events(sample_profile(), event_count, USERS, VIDEOS, seed=GENERATOR_SEED)
    # The job drops a repeat of (user, video, event time) as a duplicate, and the generator can
    # draw one, so keep only the first.
    events = events.drop_duplicates(["user_id", "video_id", "time_ms"]).reset_index(drop=True)
    rng = np.random.default_rng(GENERATOR_SEED)
    dimension = settings.embedding.dimension
    embeddings = {video: rng.standard_normal(dimension).astype(np.float32)
                  for video in range(VIDEOS_WITHOUT_EMBEDDING, VIDEOS)}

    bad = [record for _ in range(BAD_RECORD_REPEATS) for record in bad_records.events]
    stride = len(events) // (len(bad) + 1)
    video_ids = events["video_id"].to_numpy()
    records: list[OutgoingRecord] = []
    fates: list[str] = []
    for index, (key, value, timestamp) in enumerate(watch_event_records(events, sort_by_time=False)):
        if index and index % stride == 0 and bad:
            bad_key, bad_value, reason = bad.pop()
            records.append(OutgoingRecord(bad_key, bad_value, timestamp))
            fates.append(reason)
        records.append(OutgoingRecord(key, value, timestamp))
        fates.append(MISSING_EMBEDDING if video_ids[index] < VIDEOS_WITHOUT_EMBEDDING else CONTRIBUTES)

    sentinel_time = int(events["time_ms"].max()) + SENTINEL_GAP_MS
    codec = AvroCodec.for_schema(WATCH_EVENT)
    for partition in range(settings.kafka.partitions):
        value = codec.encode({"user_id": SENTINEL_USER, "video_id": str(VIDEOS - 1), "watch_time_ms": 30_000.0,
                              "duration_ms": 20_000, "event_time_ms": sentinel_time,
                              "event_id": f"sentinel-{partition}"})
        records.append(OutgoingRecord(SENTINEL_USER.encode(), value, sentinel_time, partition))
        fates.append(PENDING)
    return FaultInput(records, fates, events, embeddings)


def publish_embeddings(settings: Settings, fault_input: FaultInput) -> None:
    kafka_io.produce(settings.kafka.bootstrap_servers, settings.kafka.embeddings_topic,
                     video_embedding_records(fault_input.embeddings, MODEL_VERSION))


@dataclass(frozen=True)
class ExpectedAccounting:
    """What the job must make of the events topic as written, copies from producer retries included."""

    events_read: int
    accounted: int
    """Records that must be contributed, dead-lettered or deduplicated: all but the sentinels."""
    deduplicated: int
    """Extra copies of contributing events, which the job drops by their event id."""
    dead_letters: dict[tuple[int, int], str]
    """Reason of each record that must be dead-lettered, by (partition, offset)."""
    producer_copies: int
    """Records the producer wrote more than once."""


def expected_accounting(settings: Settings, fault_input: FaultInput) -> ExpectedAccounting:
    """Read the events topic and derive, from each record's fate, what the job must write.

    The fates follow the records' contents, so a record that the producer wrote twice has two
    fates: a contributing event is deduplicated by its event id, and a rejected one becomes
    two dead letters.
    """
    fate_of = dict(zip(((record.key, record.value) for record in fault_input.records), fault_input.fates))
    copies: Counter[tuple[bytes | None, bytes | None]] = Counter()
    dead_letters: dict[tuple[int, int], str] = {}
    for record in kafka_io.read_topic(settings.kafka.bootstrap_servers, settings.kafka.events_topic):
        content = (record.key, record.value)
        assert content in fate_of, f"the events topic has a record the test did not produce at {record.offset}"
        copies[content] += 1
        if fate_of[content] not in (CONTRIBUTES, PENDING):
            dead_letters[(record.partition, record.offset)] = fate_of[content]
    assert set(copies) == set(fate_of), "records the producer acknowledged are missing from the events topic"

    events_read = sum(copies.values())
    pending = sum(count for content, count in copies.items() if fate_of[content] == PENDING)
    contributing = [count for content, count in copies.items() if fate_of[content] == CONTRIBUTES]
    return ExpectedAccounting(events_read=events_read, accounted=events_read - pending,
                              deduplicated=sum(contributing) - len(contributing), dead_letters=dead_letters,
                              producer_copies=events_read - len(fault_input.records))


def kill_seed() -> int:
    """Return DREAMUMM_FAULT_SEED if set, else a fresh random seed."""
    configured = os.environ.get("DREAMUMM_FAULT_SEED")
    return int(configured) if configured else random.SystemRandom().randrange(2**32)


def wait_for_accounting(settings: Settings, job: JobProcess, expected: ExpectedAccounting,
                        timeout_s: float = ACCOUNTING_TIMEOUT_S) -> RunSummary:
    """Poll the topics until every event but the sentinels is accounted for, and return the summary."""
    deadline = time.monotonic() + timeout_s
    while True:
        summary = summarise_run(settings)
        accounted = summary.events_contributed + summary.events_dead_lettered + summary.events_deduplicated
        if summary.events_read == expected.events_read and accounted >= expected.accounted:
            return summary
        job.check_running()
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{expected.accounted} events were not all accounted for within {timeout_s:.0f} s: "
                f"read {summary.events_read}, contributed {summary.events_contributed}, dead-lettered "
                f"{summary.events_dead_lettered}, deduplicated {summary.events_deduplicated}\n{job.log_tail()}")
        time.sleep(2.0)


def dead_letters_by_source(settings: Settings) -> list[tuple[tuple[int, int], str]]:
    """Return ((source partition, source offset), reason) of every dead letter of the events topic."""
    codec = AvroCodec.for_schema(DEAD_LETTER)
    letters = []
    for record in kafka_io.read_topic(settings.kafka.bootstrap_servers, settings.kafka.dead_letter_topic):
        letter = codec.decode(record.value)
        if letter["source_topic"] == settings.kafka.events_topic:
            letters.append(((letter["source_partition"], letter["source_offset"]), letter["reason"]))
    return letters


def check_result(settings: Settings, summary: RunSummary, fault_input: FaultInput, expected: ExpectedAccounting,
                 checks) -> None:
    """Assert the vectors equal the reference and every record of the events topic had its expected fate."""
    assert summary.events_read == expected.events_read
    assert summary.events_deduplicated == expected.deduplicated
    assert summary.events_contributed + summary.events_dead_lettered == expected.accounted - expected.deduplicated
    assert SENTINEL_USER not in summary.users
    assert summary.feature_tombstones == 0
    checks.matches_reference(settings, summary, fault_input.events, fault_input.embeddings)

    letters = dead_letters_by_source(settings)
    repeated = {position: count for position, count in Counter(position for position, _ in letters).items()
                if count > 1}
    assert not repeated, f"records dead-lettered more than once (position: count): {repeated}"
    assert dict(letters) == expected.dead_letters
    assert summary.embedding_dead_letters_by_reason == Counter()


def event_count_decreases(view_records) -> list[str]:
    """Describe every record whose event_count is lower than in the previous record of its user.

    Records of one user share a partition, and each view lists a partition in offset order.
    """
    codec = AvroCodec.for_schema(USER_INTEREST)
    last_count: dict[str, int] = {}
    decreases = []
    for record in view_records:
        if record.value is None:
            last_count.pop(record.key.decode("utf-8"), None)
            continue
        value = codec.decode(record.value)
        user, count = value["user_id"], value["event_count"]
        if count < last_count.get(user, 0):
            decreases.append(f"user {user} at {record.partition}:{record.offset}: {last_count[user]} -> {count}")
        last_count[user] = count
    return decreases


def compare_isolation_views(settings: Settings) -> dict[str, int]:
    """Read the features topic with both isolation levels and return the record counts of the two views.

    Asserts that no user's event_count goes down in the committed view, as it would in a record
    replayed after a crash.
    """
    bootstrap, topic = settings.kafka.bootstrap_servers, settings.kafka.features_topic
    committed = read_view(bootstrap, topic, "read_committed")
    uncommitted = read_view(bootstrap, topic, "read_uncommitted")
    committed_positions = {(record.partition, record.offset) for record in committed.records}
    uncommitted_positions = {(record.partition, record.offset) for record in uncommitted.records}
    only_uncommitted = [record for record in uncommitted.records
                        if (record.partition, record.offset) not in committed_positions]
    # Below the last stable offset, a record missing from the committed view was aborted. Above
    # it, the record's transaction is still open.
    aborted = [record for record in only_uncommitted if record.offset < committed.end_offsets[record.partition]]
    committed_decreases = event_count_decreases(committed.records)
    uncommitted_decreases = event_count_decreases(uncommitted.records)
    stats = {
        "committed_records": len(committed.records),
        "uncommitted_records": len(uncommitted.records),
        "aborted_records": len(aborted),
        "open_transaction_records": len(only_uncommitted) - len(aborted),
        "event_count_decreases_uncommitted": len(uncommitted_decreases),
    }
    print(f"features topic views: {stats}; last stable offsets {committed.end_offsets}, "
          f"high watermarks {uncommitted.end_offsets}; first decreases in the uncommitted view: "
          f"{uncommitted_decreases[:3]}")

    assert committed_positions <= uncommitted_positions
    assert not committed_decreases, f"the committed view shows replayed records: {committed_decreases[:5]}"
    return stats


@dataclass(frozen=True)
class KillPoint:
    """When and where one SIGKILL hit the job."""

    attempt: int
    test_seconds: float
    """Seconds since the test started."""
    job_uptime_seconds: float
    startup_seconds: float
    """Seconds from starting this job process to its first new checkpoint."""
    delay_seconds: float
    """Random wait after that checkpoint, before the kill."""
    checkpoint_awaited: str
    restored_next: str
    """Checkpoint the next job restores (the newest completed one at the kill)."""
    events_handed_over: int


def checkpoint_name(folder: Path | None) -> str:
    return "none" if folder is None else f"{folder.parent.name[:8]}/{folder.name}"


def test_job_survives_repeated_sigkill(kafka_broker, tmp_path, bad_records, checks, record_property) -> None:
    test_started = time.monotonic()
    seed = kill_seed()
    print(f"kill delay seed {seed} (repeat with DREAMUMM_FAULT_SEED={seed})")
    record_property("kill_seed", seed)
    delays = random.Random(seed)

    work_dir = tmp_path / "flink"
    env = job_environment(kafka_broker.bootstrap_servers, uuid.uuid4().hex[:10], work_dir, CHECKPOINT_INTERVAL_MS)
    settings = load_settings(environ=env)
    steps.create_topics(settings)
    fault_input = build_input(settings, KILL_TEST_EVENTS, bad_records)
    publish_embeddings(settings, fault_input)

    producer = PacedProducer(settings.kafka.bootstrap_servers, settings.kafka.events_topic, fault_input.records,
                             KILL_TEST_RATE_PER_S)
    known = completed_checkpoints(work_dir)
    job = JobProcess(env, tmp_path / "logs", "job-0")
    kill_points: list[KillPoint] = []
    try:
        # Events start once the first job runs, so that its slow start does not use up the stream.
        job.wait_for_checkpoint(work_dir, known, JOB_START_TIMEOUT_S)
        producer.start()
        for attempt in range(1, KILLS + 1):
            checkpoint = job.wait_for_checkpoint(work_dir, known, JOB_START_TIMEOUT_S)
            startup = time.monotonic() - job.started
            delay = delays.uniform(0.0, MAX_KILL_DELAY_S)
            time.sleep(delay)
            job.kill()
            restored = latest_checkpoint(checkpoints_root(settings))
            point = KillPoint(attempt, time.monotonic() - test_started, time.monotonic() - job.started, startup, delay,
                              checkpoint_name(checkpoint), checkpoint_name(restored), producer.handed_over)
            kill_points.append(point)
            print(f"kill {attempt}: {asdict(point)}")
            known = completed_checkpoints(work_dir)
            job = JobProcess(env, tmp_path / "logs", f"job-{attempt}", restore_latest=True)

        producer.wait(timeout_s=KILL_TEST_EVENTS / KILL_TEST_RATE_PER_S + 120)
        produced_at = time.monotonic() - test_started
        # The last job must restore and commit a checkpoint of its own before the topics are read,
        # even when the jobs before it already wrote every result.
        job.wait_for_checkpoint(work_dir, known, JOB_START_TIMEOUT_S)
        expected = expected_accounting(settings, fault_input)
        print(f"records the producer wrote more than once: {expected.producer_copies}")
        summary = wait_for_accounting(settings, job, expected)
        accounted_at = time.monotonic() - test_started
        view_stats = compare_isolation_views(settings)
    finally:
        producer.cancel()
        job.stop()

    timings = {"producer_seconds": producer.seconds, "produced_at": produced_at, "accounted_at": accounted_at}
    print(f"timings: {timings}")
    record_property("kill_points", [asdict(point) for point in kill_points])
    record_property("timings", timings)
    record_property("producer_copies", expected.producer_copies)
    record_property("isolation_views", view_stats)
    check_result(settings, summary, fault_input, expected, checks)
    print(f"test took {time.monotonic() - test_started:.1f} s")


def test_job_recovers_from_broker_kill(runtime_jars, tmp_path, bad_records, checks, record_property) -> None:
    run_broker_outage(runtime_jars, tmp_path, bad_records, checks, record_property, BROKER_DOWN_S,
                      restart_exited_job=False)


@pytest.mark.skipif(os.environ.get("DREAMUMM_SLOW_FAULT_TESTS") != "1",
                    reason="takes about 5 minutes; set DREAMUMM_SLOW_FAULT_TESTS=1 to run it")
def test_job_recovers_from_long_broker_outage(runtime_jars, tmp_path, bad_records, checks, record_property) -> None:
    # Longer than the Kafka clients' max.block.ms (60 s) and delivery.timeout.ms (120 s), so the
    # sinks fail and the job must recover through Flink's restart strategy, or exit and be
    # restarted from its newest checkpoint as a supervisor would.
    run_broker_outage(runtime_jars, tmp_path, bad_records, checks, record_property, LONG_BROKER_DOWN_S,
                      restart_exited_job=True)


def run_broker_outage(runtime_jars, tmp_path: Path, bad_records, checks, record_property, down_s: float,
                      restart_exited_job: bool) -> None:
    """Kill the test's own broker mid-stream for ``down_s`` seconds, then check the job's final result.

    With ``restart_exited_job``, a job process that exits is restarted with ``--restore latest``.
    """
    test_started = time.monotonic()
    port, controller_port = find_free_ports(2)
    broker = LocalBroker(BrokerSettings(port=port, controller_port=controller_port, root_dir=tmp_path / "kafka"),
                         runtime_jars)
    broker.start()
    job: JobProcess | None = None
    producer: PacedProducer | None = None
    try:
        work_dir = tmp_path / "flink"
        env = job_environment(broker.bootstrap_servers, uuid.uuid4().hex[:10], work_dir, CHECKPOINT_INTERVAL_MS)
        settings = load_settings(environ=env)
        steps.create_topics(settings)
        fault_input = build_input(settings, BROKER_TEST_EVENTS, bad_records)
        publish_embeddings(settings, fault_input)

        # Records must outlive the outage in the producer's queue.
        producer = PacedProducer(settings.kafka.bootstrap_servers, settings.kafka.events_topic, fault_input.records,
                                 BROKER_TEST_RATE_PER_S, message_timeout_ms=int((down_s + 180) * 1000))
        job = JobProcess(env, tmp_path / "logs", "job")
        job.wait_for_checkpoint(work_dir, set(), JOB_START_TIMEOUT_S)
        producer.start()
        time.sleep(PRODUCING_BEFORE_BROKER_KILL_S)

        killed_at = time.monotonic()
        broker.kill()
        handed_over_at_kill = producer.handed_over
        time.sleep(down_s)
        broker.start(timeout_s=120)
        restarted_at = time.monotonic()
        known = completed_checkpoints(work_dir)
        try:
            job.wait_for_checkpoint(work_dir, known, JOB_START_TIMEOUT_S)
        except JobExitedError:
            if not restart_exited_job:
                raise
            print(f"job exited with code {job.process.returncode} during the outage; restarting it from "
                  f"{checkpoint_name(latest_checkpoint(checkpoints_root(settings)))}")
            report_recovery(job)
            job = JobProcess(env, tmp_path / "logs", "job-restored", restore_latest=True)
            job.wait_for_checkpoint(work_dir, known, JOB_START_TIMEOUT_S)
        first_checkpoint_after_restart = time.monotonic() - restarted_at

        producer.wait(timeout_s=BROKER_TEST_EVENTS / BROKER_TEST_RATE_PER_S + down_s + 200)
        expected = expected_accounting(settings, fault_input)
        print(f"records the producer wrote more than once: {expected.producer_copies}")
        summary = wait_for_accounting(settings, job, expected)
        accounted_at = time.monotonic() - test_started
        timings = {"killed_at": killed_at - test_started, "broker_down_seconds": restarted_at - killed_at,
                   "events_handed_over_at_kill": handed_over_at_kill,
                   "first_checkpoint_after_restart_seconds": first_checkpoint_after_restart,
                   "accounted_at": accounted_at}
        print(f"timings: {timings}")
        record_property("timings", timings)
        record_property("producer_copies", expected.producer_copies)
        record_property("job_failovers", report_recovery(job))
        record_property("isolation_views", compare_isolation_views(settings))
        check_result(settings, summary, fault_input, expected, checks)
    except (AssertionError, TimeoutError):
        if job is not None:
            report_recovery(job)
        raise
    finally:
        if producer is not None:
            producer.cancel()
        if job is not None:
            job.stop()
        broker.stop()
    print(f"test took {time.monotonic() - test_started:.1f} s")


def report_recovery(job: JobProcess) -> int:
    """Print how the job got through the broker outage, from its Flink log, and return its failover count."""
    # Flink logs every job status change, and RESTARTING is a failover inside the job's process.
    transitions = job.flink_log_lines(r"switched from state \w+ to (FAILING|RESTARTING|FAILED)")
    task_failures = job.flink_log_lines(r"switched from RUNNING to FAILED")
    # A checkpoint that spans the outage waits in the sinks' flush until the broker is back.
    slow_checkpoints = job.flink_log_lines(r"Completed checkpoint .*checkpointDuration=\d{4,} ms")
    checkpoint_failures = job.flink_log_lines(r"[Dd]eclined checkpoint|expired before completing|"
                                              r"Failed to commit consumer offsets")
    for title, lines in (("job status changes to FAILING, RESTARTING or FAILED", transitions),
                         ("task failures", task_failures),
                         ("checkpoints that took 1 s or more", slow_checkpoints),
                         ("checkpoints declined or expired, and failed offset commits", checkpoint_failures)):
        print(f"{title}: {len(lines)}")
        for line in lines[:5]:
            print(f"  {line}")
    return len(transitions)
