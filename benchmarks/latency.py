"""The live part of the benchmark: the job runs unbounded while events arrive at a fixed rate.

It measures three things at a load the caller picks (half the measured maximum). Latency is
the time from an event's append to the events topic to the append of the first UserInterest
record that includes it. State is what each user takes in the newest checkpoint. Memory is
that of the job's process tree.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from confluent_kafka import Producer

from benchmarks.alternatives import Topics, start_job
from benchmarks.flink_rest import FlinkRest
from benchmarks.measure import event_latencies_ms, read_output
from benchmarks.processes import TreeUsage
from benchmarks.workload import APPEND_TIME, Workload, recreate_topics
from dreamumm import kafka_io
from dreamumm.config import Settings
from infra import TopicSpec, find_free_ports

logger = logging.getLogger(__name__)

AGGREGATE_VERTEX = "GroupAggregate"
"""Name fragment of the job vertex that keeps the per-user sums."""


@dataclass
class LiveResult:
    """Latency, state and memory of one live run."""

    parallelism: int
    dimension: int
    target_rate: float
    achieved_rate: float
    latency_ms: dict[str, float]
    measured_events: int
    uncovered_events: int
    users: int
    aggregate_state_bytes: int | None
    state_bytes_by_vertex: dict[str, int]
    heap_used_bytes: int | None
    usage: TreeUsage = field(default_factory=TreeUsage)

    @property
    def state_bytes_per_user(self) -> float:
        if self.aggregate_state_bytes is None or self.users == 0:
            return math.nan
        return self.aggregate_state_bytes / self.users


def _produce_paced(bootstrap_servers: str, topic: str, records: list[tuple[bytes, bytes, int]], rate: float,
                   seconds: float) -> int:
    """Produce ``records`` at ``rate`` per second for ``seconds``, or until they run out.

    The records' own timestamps are dropped: the live topics stamp each record when it arrives.
    The records are not repeated, because their event times would then jump back, and the job's
    watermark, which follows event time, would stop advancing and hold every repeated event.
    """
    producer = Producer({"bootstrap.servers": bootstrap_servers, "linger.ms": 5, "compression.type": "lz4",
                         "queue.buffering.max.messages": 1_000_000})
    source = iter(records)
    started = time.monotonic()
    sent = 0
    while True:
        elapsed = time.monotonic() - started
        if elapsed >= seconds:
            break
        due = int(rate * elapsed) - sent
        if sent + due > len(records):
            logger.warning("the workload's %d events ran out after %.0f s of the planned %.0f s; "
                           "generate more events (--events) for a longer live run", len(records), elapsed, seconds)
            due = len(records) - sent
        for _ in range(due):
            key, value, _timestamp = next(source)
            while True:
                try:
                    producer.produce(topic, key=key, value=value)
                    break
                except BufferError:
                    producer.poll(0.05)  # The local queue is full: wait for deliveries.
        sent += max(due, 0)
        producer.poll(0)
        if sent >= len(records):
            break
        time.sleep(0.005)
    producer.flush(60)
    return sent


def live_run(settings: Settings, workload: Workload, dimension: int, parallelism: int, rate: float,
             warmup_s: float, measure_s: float, work_dir: Path) -> LiveResult:
    """Run the job unbounded on a fresh events topic fed at ``rate`` events/s and measure it."""
    bootstrap = settings.kafka.bootstrap_servers
    prefix = f"bench-live-d{dimension}-p{parallelism}"
    topics = Topics(f"{prefix}-events", f"bench-embeddings-d{dimension}", f"{prefix}-features",
                    f"{prefix}-dead-letters")
    partitions = settings.kafka.partitions
    recreate_topics(bootstrap, [TopicSpec(topics.events, partitions, config=APPEND_TIME),
                                TopicSpec(topics.features, partitions, config=APPEND_TIME),
                                TopicSpec(topics.dead_letters, partitions, config=APPEND_TIME)])
    rest_port = find_free_ports(1)[0]
    child = start_job(settings, topics, parallelism, dimension, work_dir, bounded=False, rest_port=rest_port)
    rest = FlinkRest(rest_port)
    try:
        job_id = rest.running_job_id(timeout_s=180)
        time.sleep(3)  # Let the sources find their partitions before the clock starts.
        logger.info("live run d=%d p=%d: %.0f events/s for %.0f s of warm-up and %.0f s measured",
                    dimension, parallelism, rate, warmup_s, measure_s)
        produce_started = time.monotonic()
        since_ms = int(time.time() * 1000 + warmup_s * 1000)
        sent = _produce_paced(bootstrap, topics.events, workload.records, rate, warmup_s + measure_s)
        achieved = sent / (time.monotonic() - produce_started)
        before = rest.latest_checkpoint(job_id)
        time.sleep(3)  # The last events' features are at most a few batches behind.
        # A checkpoint taken after the load contains every user the load touched.
        checkpoint = rest.wait_for_checkpoint(job_id, after_id=before.checkpoint_id if before else 0,
                                              timeout_s=3 * settings.job.checkpoint_interval_ms / 1000)
        heap = rest.heap_used_bytes()
    except BaseException:
        # Any failure here, not only a REST error, would otherwise leave the job running.
        child.stop()
        raise
    run = child.stop()
    output = read_output(bootstrap, topics.features, keep_updates=True)
    events = list(kafka_io.read_topic(bootstrap, topics.events, timeout_s=300))
    latencies, uncovered = event_latencies_ms(events, output, since_ms)
    quantiles = {name: float(np.quantile(latencies, q)) if len(latencies) else math.nan
                 for name, q in (("p50", 0.5), ("p99", 0.99))}
    quantiles["max"] = float(latencies.max()) if len(latencies) else math.nan
    by_vertex = checkpoint.bytes_by_vertex if checkpoint else {}
    aggregate = sum(size for name, size in by_vertex.items() if AGGREGATE_VERTEX in name) if checkpoint else None
    return LiveResult(parallelism, dimension, rate, achieved, quantiles, len(latencies), uncovered,
                      len(output.latest), aggregate, by_vertex, heap, run.usage)
