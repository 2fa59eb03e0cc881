"""Replaying a recording into a topic with its keys, values, headers, timestamps and per-partition order."""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import OffsetSpec

from infra.admin import make_admin_client
from recording.errors import ReplayError
from recording.manifest import Manifest, PartitionRecording
from recording.offsets import list_offsets
from recording.pacing import Pacer, validate_speed
from recording.progress import Progress
from recording.record_file import NOT_AVAILABLE, RecordedRecord, read_record_file
from recording.replay_manifest import REPLAY_MANIFEST_FILE, ReplayedPartition, ReplayResult
from recording.target_topic import prepare_target_topic

logger = logging.getLogger(__name__)

Partitioning = Literal["same", "key"]
PARTITIONING_CHOICES: tuple[Partitioning, ...] = ("same", "key")
# Maximum wait in one producer poll while pacing, so that delivery reports are served meanwhile.
MAX_POLL_WAIT_S = 0.1
LOG_WAIT_ABOVE_S = 5.0
REQUEST_TIMEOUT_S = 30.0


def replay_recording(
    bootstrap_servers: str,
    in_dir: Path,
    target_topic: str | None = None,
    speed: float | None = None,
    partitioning: Partitioning = "same",
    *,
    allow_log_append_time: bool = False,
    manifest_out: Path | None = None,
    replication_factor: int = 1,
    show_progress: bool = False,
    flush_timeout_s: float = 60.0,
) -> ReplayResult:
    """Produce the records of the recording in ``in_dir`` to ``target_topic`` and return what was written.

    Keys, values, headers and timestamps are kept, and an idempotent producer keeps each
    partition's order through retries. ``target_topic`` defaults to the recorded topic and is
    created if missing (see ``prepare_target_topic``). ``partitioning="same"`` writes each
    record to its recorded partition number, and ``"key"`` lets the partitioner choose by key
    (murmur2, the Java client's default). ``speed`` None sends as fast as possible, and K > 0
    paces by record timestamps at K times real time, partitions merged in timestamp order.

    The replay manifest is written to ``manifest_out``, by default ``replay-manifest.json`` in
    ``in_dir``. Raises ManifestError for an invalid recording and ReplayError if the target
    topic is unusable or records are not delivered.
    """
    validate_speed(speed)
    if partitioning not in PARTITIONING_CHOICES:
        raise ValueError(f"invalid partitioning {partitioning!r}: use one of {PARTITIONING_CHOICES}")
    in_dir = Path(in_dir)
    manifest = Manifest.load(in_dir)
    _check_record_files(in_dir, manifest)
    target = target_topic or manifest.topic
    started = time.monotonic()

    first_timestamps = [p.first_timestamp_ms for p in manifest.partitions if p.first_timestamp_ms is not None]
    target_partitions = prepare_target_topic(
        bootstrap_servers,
        target,
        manifest.partition_count,
        min(first_timestamps, default=None),
        allow_log_append_time=allow_log_append_time,
        replication_factor=replication_factor,
        timeout_s=REQUEST_TIMEOUT_S,
    )
    if partitioning == "same" and target_partitions < manifest.partition_count:
        raise ReplayError(
            f"topic {target!r} has fewer partitions ({target_partitions}) than the recording of {manifest.topic!r} "
            f"({manifest.partition_count}), so records cannot keep their partition numbers. Replay into a new "
            "topic, or choose partitions by key with --partitioning key (partitioning=\"key\")."
        )
    admin = make_admin_client(bootstrap_servers)
    ends_before = list_offsets(admin, target, list(range(target_partitions)), OffsetSpec.latest(), REQUEST_TIMEOUT_S)

    deliveries = _Deliveries()
    replaced = _produce_all(
        bootstrap_servers, target, in_dir, manifest, speed, partitioning, deliveries, show_progress, flush_timeout_s)

    result = ReplayResult(
        source_topic=manifest.topic,
        target_topic=target,
        partitions=tuple(deliveries.partition_range(partition, ends_before[partition])
                         for partition in range(target_partitions)),
        replaced_timestamp_count=replaced,
        seconds=round(time.monotonic() - started, 3),
    )
    path = result.save(manifest_out or in_dir / REPLAY_MANIFEST_FILE)
    logger.info(
        "Replayed %d records of topic %s into topic %s in %.1f s, replay manifest %s",
        result.record_count, manifest.topic, target, result.seconds, path,
    )
    if replaced:
        logger.warning(
            "%d records had no usable timestamp (0, negative or missing), which the producer API cannot send, "
            "so they were given the producer's current time", replaced)
    return result


@dataclass
class _PartitionDeliveries:
    first_offset: int
    last_offset: int
    count: int


class _Deliveries:
    """Delivery reports of the replay: offsets per partition, and the failures."""

    def __init__(self) -> None:
        self.partitions: dict[int, _PartitionDeliveries] = {}
        self.failures: list[str] = []
        self.delivered = 0

    def on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.failures.append(f"partition {message.partition()}: {error.str()}")
            return
        self.delivered += 1
        partition, offset = message.partition(), message.offset()
        known = self.partitions.get(partition)
        if known is None:
            self.partitions[partition] = _PartitionDeliveries(offset, offset, 1)
        else:
            known.first_offset = min(known.first_offset, offset)
            known.last_offset = max(known.last_offset, offset)
            known.count += 1

    def partition_range(self, partition: int, end_before: int) -> ReplayedPartition:
        known = self.partitions.get(partition)
        if known is None:
            return ReplayedPartition(partition, end_before, end_before, 0)
        return ReplayedPartition(partition, known.first_offset, known.last_offset + 1, known.count)


def _produce_all(
    bootstrap_servers: str,
    target: str,
    in_dir: Path,
    manifest: Manifest,
    speed: float | None,
    partitioning: Partitioning,
    deliveries: _Deliveries,
    show_progress: bool,
    flush_timeout_s: float,
) -> int:
    """Produce every recorded record, wait for the deliveries, and return the count of replaced timestamps."""
    producer = Producer({
        "bootstrap.servers": bootstrap_servers,
        # Idempotence keeps each partition's order when the producer retries a batch.
        "enable.idempotence": True,
        # Used only with partitioning="key": the Java client's default, unlike librdkafka's CRC32 default.
        "partitioner": "murmur2_random",
        # A paced replay sends few records at a time, which should not wait for a fuller batch.
        "linger.ms": 20 if speed is None else 2,
        "compression.type": "lz4",
        # Errors only: right after topic creation the broker returns "coordinator load in progress"
        # to the idempotent producer, which retries and logs a warning that is only noise here.
        "log_level": 3,
    })
    pacer = Pacer(speed) if speed is not None else None
    progress = Progress(f"replay into {target}", manifest.record_count, enabled=show_progress)
    replaced = 0
    sent = 0
    try:
        for record in _merged_records(in_dir, manifest):
            if deliveries.failures:
                break
            timestamp_ms = record["timestamp_ms"]
            has_timestamp = timestamp_ms > 0 and record["timestamp_type"] != NOT_AVAILABLE
            if pacer is not None and has_timestamp:
                _wait(producer, pacer.delay_s(timestamp_ms))
            options: dict[str, Any] = {
                "key": record["key"],
                "value": record["value"],
                "headers": [(header["name"], header["value"]) for header in record["headers"]],
                "on_delivery": deliveries.on_delivery,
            }
            # The producer API reads timestamp 0 as "now", so records without a usable one get that.
            if has_timestamp:
                options["timestamp"] = timestamp_ms
            else:
                replaced += 1
            if partitioning == "same":
                options["partition"] = record["partition"]
            _produce(producer, target, options)
            sent += 1
            progress.update(sent, sent)
        remaining = producer.flush(flush_timeout_s)
    finally:
        progress.finish()
    if remaining or deliveries.failures:
        raise ReplayError(
            f"replay into topic {target!r}: {deliveries.delivered} of {sent} records sent were acknowledged, "
            f"{remaining} are still unacknowledged after {flush_timeout_s:.0f} s, and {len(deliveries.failures)} "
            f"failed (first error: {deliveries.failures[:1]}). Check the broker at {bootstrap_servers}. Records "
            "already written stay in the topic, so replay into a new topic to start clean."
        )
    return replaced


def _produce(producer: Producer, topic: str, options: dict[str, Any]) -> None:
    while True:
        try:
            producer.produce(topic, **options)
            return
        except BufferError:
            producer.poll(MAX_POLL_WAIT_S)  # The local queue is full: wait for deliveries.


def _wait(producer: Producer, delay_s: float) -> None:
    """Wait ``delay_s`` seconds while serving delivery reports."""
    if delay_s >= LOG_WAIT_ABOVE_S:
        logger.info("Waiting %.1f s for the next record's timestamp", delay_s)
    deadline = time.monotonic() + delay_s
    while (remaining := deadline - time.monotonic()) > 0:
        producer.poll(min(remaining, MAX_POLL_WAIT_S))


def _merged_records(in_dir: Path, manifest: Manifest) -> Iterator[RecordedRecord]:
    """Yield the records of all partitions in timestamp order, each partition in offset order.

    CreateTime timestamps need not grow within a partition. The merge then still keeps each
    partition's own order and only interleaves partitions by the next record's timestamp.
    """
    streams = [_partition_records(in_dir, partition) for partition in manifest.partitions]
    return heapq.merge(*streams, key=lambda record: record["timestamp_ms"])


def _partition_records(in_dir: Path, recording: PartitionRecording) -> Iterator[RecordedRecord]:
    """Yield one partition's records, checking them against the manifest."""
    path = in_dir / recording.file
    count = 0
    for record in read_record_file(path):
        if record["partition"] != recording.partition:
            raise ReplayError(
                f"record file {path} contains a record of partition {record['partition']}, but the manifest lists it "
                f"for partition {recording.partition}. Record the topic again."
            )
        if not recording.start_offset <= record["offset"] < recording.end_offset:
            raise ReplayError(
                f"record file {path} contains offset {record['offset']}, outside the manifest's range "
                f"{recording.start_offset} to {recording.end_offset}. Record the topic again."
            )
        count += 1
        yield record
    if count != recording.record_count:
        raise ReplayError(
            f"record file {path} has {count} records, but the manifest lists {recording.record_count}, so the "
            "file is damaged or was replaced. The records before the mismatch were already written. Record the "
            "topic again."
        )


def _check_record_files(in_dir: Path, manifest: Manifest) -> None:
    missing = [partition.file for partition in manifest.partitions if not (in_dir / partition.file).is_file()]
    if missing:
        raise ReplayError(f"record files {missing} listed in {in_dir}/manifest.json are missing. Record the topic again.")
