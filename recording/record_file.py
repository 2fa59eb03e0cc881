"""The Avro object container files that hold a recording's Kafka records, one file per partition."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypedDict

import fastavro
from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME, Message
from fastavro.write import Writer

CODEC = "deflate"
CREATE_TIME = "CREATE_TIME"
LOG_APPEND_TIME = "LOG_APPEND_TIME"
# Kafka's message format v2 always carries a timestamp, but the client API can report none.
NOT_AVAILABLE = "NOT_AVAILABLE"

RECORD_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "RecordedKafkaRecord",
    "namespace": "dreamumm.recording",
    "doc": "One Kafka record as a read-committed consumer received it.",
    "fields": [
        {"name": "partition", "type": "int", "doc": "Partition the record was read from."},
        {"name": "offset", "type": "long", "doc": "Offset of the record in its partition."},
        {"name": "timestamp_ms", "type": "long", "doc": "Record timestamp in ms since the Unix epoch, -1 if none."},
        {
            "name": "timestamp_type",
            "type": {
                "type": "enum",
                "name": "TimestampType",
                "symbols": [CREATE_TIME, LOG_APPEND_TIME, NOT_AVAILABLE],
            },
            "doc": "Whether the producer (CreateTime) or the broker (LogAppendTime) set the timestamp.",
        },
        {"name": "key", "type": ["null", "bytes"], "doc": "Record key, null if the record has none."},
        {"name": "value", "type": ["null", "bytes"], "doc": "Record value, null for a tombstone."},
        {
            "name": "headers",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "Header",
                    "fields": [
                        {"name": "name", "type": "string"},
                        {"name": "value", "type": ["null", "bytes"]},
                    ],
                },
            },
            "doc": "Record headers in their original order. Names may repeat.",
        },
    ],
}

_PARSED_SCHEMA = fastavro.parse_schema(RECORD_SCHEMA)
_TIMESTAMP_TYPES = {TIMESTAMP_CREATE_TIME: CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME: LOG_APPEND_TIME}


class Header(TypedDict):
    name: str
    value: bytes | None


class RecordedRecord(TypedDict):
    """One record of a record file, as the fastavro reader returns it."""

    partition: int
    offset: int
    timestamp_ms: int
    timestamp_type: str
    key: bytes | None
    value: bytes | None
    headers: list[Header]


def partition_file_name(partition: int) -> str:
    return f"partition-{partition}.avro"


def recorded_record(message: Message) -> RecordedRecord:
    """Convert a consumed confluent-kafka message to a record of a record file."""
    timestamp_type, timestamp_ms = message.timestamp()
    return {
        "partition": message.partition(),
        "offset": message.offset(),
        "timestamp_ms": timestamp_ms,
        "timestamp_type": _TIMESTAMP_TYPES.get(timestamp_type, NOT_AVAILABLE),
        "key": message.key(),
        "value": message.value(),
        "headers": [{"name": name, "value": value} for name, value in message.headers() or []],
    }


class RecordFileWriter:
    """Writer of one partition's record file, deflate-compressed, with the topic in the file metadata."""

    def __init__(self, path: Path, topic: str, partition: int) -> None:
        self.path = path
        self._file: BinaryIO = path.open("xb")
        metadata = {"dreamumm.topic": topic, "dreamumm.partition": str(partition)}
        self._writer = Writer(self._file, _PARSED_SCHEMA, codec=CODEC, metadata=metadata)

    def write(self, record: RecordedRecord) -> None:
        self._writer.write(record)

    def close(self) -> None:
        """Write the last block and close the file."""
        try:
            self._writer.flush()
        finally:
            self._file.close()


def read_record_file(path: Path) -> Iterator[RecordedRecord]:
    """Yield the records of one record file in the order they were written (offset order)."""
    with path.open("rb") as handle:
        for record in fastavro.reader(handle, reader_schema=_PARSED_SCHEMA):
            yield record  # type: ignore[misc]
