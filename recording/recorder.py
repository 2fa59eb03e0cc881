"""Recording a topic's committed records into a folder of Avro files and a manifest."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from infra.admin import make_admin_client
from recording.errors import RecordingError
from recording.manifest import Manifest, PartitionRecording
from recording.positions import OffsetRange, StartPosition, StopPosition, resolve_offset_ranges
from recording.progress import Progress
from recording.record_file import RecordFileWriter, partition_file_name, recorded_record
from recording.value_schemas import ValueSchemaCounter

logger = logging.getLogger(__name__)

CONSUME_BATCH_SIZE = 1000
# consume() waits for a full batch or this timeout, so a short timeout ends small reads quickly.
POLL_TIMEOUT_S = 0.1


class _PartitionRecorder:
    """Record file and counts of one partition while it is being recorded."""

    def __init__(self, out_dir: Path, topic: str, partition: int, offset_range: OffsetRange) -> None:
        self.partition = partition
        self.offset_range = offset_range
        self.file_name = partition_file_name(partition)
        self.writer = RecordFileWriter(out_dir / self.file_name, topic, partition)
        self.record_count = 0
        self.first_timestamp_ms: int | None = None
        self.last_timestamp_ms: int | None = None
        # Next offset to read. Besides records, transaction markers and aborted records move it on.
        self.position = offset_range.start

    @property
    def is_done(self) -> bool:
        return self.position >= self.offset_range.end

    def write(self, message: Message) -> bytes | None:
        """Write the message to the record file and return its value."""
        record = recorded_record(message)
        self.writer.write(record)
        self.record_count += 1
        if self.first_timestamp_ms is None:
            self.first_timestamp_ms = record["timestamp_ms"]
        self.last_timestamp_ms = record["timestamp_ms"]
        self.position = max(self.position, record["offset"] + 1)
        return record["value"]

    def summary(self) -> PartitionRecording:
        return PartitionRecording(
            partition=self.partition,
            file=self.file_name,
            start_offset=self.offset_range.start,
            end_offset=self.offset_range.end,
            record_count=self.record_count,
            first_timestamp_ms=self.first_timestamp_ms,
            last_timestamp_ms=self.last_timestamp_ms,
        )


def record_topic(
    bootstrap_servers: str,
    topic: str,
    out_dir: Path,
    start: StartPosition | None = None,
    stop: StopPosition | None = None,
    *,
    show_progress: bool = False,
    idle_timeout_s: float = 60.0,
    request_timeout_s: float = 30.0,
) -> Manifest:
    """Record the committed records of ``topic`` into ``out_dir`` and return the manifest written there.

    Each partition gets one deflate-compressed Avro file, then ``manifest.json`` is written.
    The reader uses isolation.level=read_committed, so aborted records are left out. By
    default it starts at the earliest offset and stops at the last stable offsets seen at
    start, so the call returns even while producers keep writing. ``out_dir`` must be
    missing or empty. Raises RecordingError if the topic, an offset or the folder is
    unusable, and TimeoutError if reading makes no progress for ``idle_timeout_s``.
    """
    start = start or StartPosition.earliest()
    stop = stop or StopPosition.end()
    out_dir = Path(out_dir)
    _prepare_output_folder(out_dir)
    started = time.monotonic()

    admin = make_admin_client(bootstrap_servers)
    partitions = _topic_partitions(admin, bootstrap_servers, topic, request_timeout_s)
    ranges = resolve_offset_ranges(admin, topic, partitions, start, stop, request_timeout_s)
    recorders = {partition: _PartitionRecorder(out_dir, topic, partition, ranges[partition]) for partition in partitions}
    values = ValueSchemaCounter()
    total_offsets = sum(offset_range.end - offset_range.start for offset_range in ranges.values())
    progress = Progress(f"record {topic}", total_offsets, enabled=show_progress)
    try:
        _read_partitions(bootstrap_servers, topic, recorders, values, progress, idle_timeout_s)
    finally:
        progress.finish()
        for recorder in recorders.values():
            recorder.writer.close()

    manifest = Manifest(
        topic=topic,
        partition_count=len(partitions),
        partitions=tuple(recorders[partition].summary() for partition in partitions),
        value_schemas=values.schema_counts(),
        null_value_count=values.null_value_count,
        unmarked_value_count=values.unmarked_value_count,
    )
    manifest.save(out_dir)
    logger.info(
        "Recorded %d records of topic %s (%d partitions, %d offsets) into %s in %.1f s",
        manifest.record_count, topic, len(partitions), total_offsets, out_dir, time.monotonic() - started,
    )
    return manifest


def _prepare_output_folder(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise RecordingError(f"output path {out_dir} is a file, not a folder. Choose a new folder.")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise RecordingError(
            f"output folder {out_dir} is not empty. Choose a new folder, or delete the old recording first."
        )
    out_dir.mkdir(parents=True, exist_ok=True)


def _topic_partitions(admin: AdminClient, bootstrap_servers: str, topic: str, timeout_s: float) -> list[int]:
    try:
        metadata = admin.list_topics(topic, timeout=timeout_s)
    except KafkaException as error:
        raise RecordingError(
            f"could not reach Kafka at {bootstrap_servers} within {timeout_s:.0f} s ({error}). Check that the "
            "broker is running, or set DREAMUMM__KAFKA__BOOTSTRAP_SERVERS."
        ) from error
    topic_metadata = metadata.topics.get(topic)
    if topic_metadata is None or topic_metadata.error is not None:
        raise RecordingError(f"topic {topic!r} not found on {bootstrap_servers}. Check the topic name.")
    return sorted(topic_metadata.partitions)


def _read_partitions(
    bootstrap_servers: str,
    topic: str,
    recorders: dict[int, _PartitionRecorder],
    values: ValueSchemaCounter,
    progress: Progress,
    idle_timeout_s: float,
) -> None:
    """Read each partition up to its end offset into its recorder."""
    pending = {partition: recorder for partition, recorder in recorders.items() if not recorder.is_done}
    if not pending:
        return
    consumer = Consumer({
        "bootstrap.servers": bootstrap_servers,
        # The consumer is assigned its partitions and never commits, so the group id is only a label.
        "group.id": "dreamumm-recorder",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "isolation.level": "read_committed",
        "auto.offset.reset": "earliest",
    })
    try:
        consumer.assign([TopicPartition(topic, partition, recorder.position) for partition, recorder in pending.items()])
        last_progress = time.monotonic()
        record_count = 0
        while pending:
            messages = consumer.consume(CONSUME_BATCH_SIZE, POLL_TIMEOUT_S)
            for message in messages:
                recorder = _recorder_for(message, topic, pending)
                if recorder is not None:
                    values.add(recorder.write(message))
                    record_count += 1

            moved = _advance_positions(consumer, topic, pending)
            if messages or moved:
                last_progress = time.monotonic()
            for partition in [partition for partition, recorder in pending.items() if recorder.is_done]:
                del pending[partition]
                consumer.incremental_unassign([TopicPartition(topic, partition)])

            offsets_done = sum(min(r.position, r.offset_range.end) - r.offset_range.start for r in recorders.values())
            progress.update(offsets_done, record_count)
            if pending and time.monotonic() - last_progress > idle_timeout_s:
                raise TimeoutError(_stalled_message(topic, pending, idle_timeout_s, bootstrap_servers))
    finally:
        consumer.close()


def _recorder_for(message: Message, topic: str, pending: dict[int, _PartitionRecorder]) -> _PartitionRecorder | None:
    """Return the recorder of the message's partition, or None if the message is past the range."""
    error = message.error()
    if error is not None:
        if error.code() == KafkaError._PARTITION_EOF:
            return None
        raise RecordingError(f"reading topic {topic!r} partition {message.partition()} failed: {error}")
    recorder = pending.get(message.partition())
    if recorder is None or message.offset() >= recorder.offset_range.end:
        return None
    return recorder


def _advance_positions(consumer: Consumer, topic: str, pending: dict[int, _PartitionRecorder]) -> bool:
    """Move each recorder's position up to the consumer's, and return whether any moved.

    A read-committed consumer never returns transaction markers or aborted records, but its
    position moves past them. That is how a partition whose last offsets hold them is done.
    """
    moved = False
    for position in consumer.position([TopicPartition(topic, partition) for partition in pending]):
        recorder = pending[position.partition]
        if position.offset > recorder.position:
            recorder.position = position.offset
            moved = True
    return moved


def _stalled_message(
    topic: str, pending: dict[int, _PartitionRecorder], idle_timeout_s: float, bootstrap_servers: str
) -> str:
    stalled = ", ".join(
        f"partition {partition} at offset {recorder.position} of end {recorder.offset_range.end}"
        for partition, recorder in sorted(pending.items())
    )
    return (
        f"recording topic {topic!r} made no progress for {idle_timeout_s:.0f} s ({stalled}). "
        f"Check that the broker at {bootstrap_servers} is up, then record again into an empty folder."
    )
