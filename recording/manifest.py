"""The manifest of a recording: topic, per-partition offset ranges and counts, and value schemas.

``manifest.json`` is written last, so a folder with a manifest contains a complete recording.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from recording.json_fields import (
    JsonObject,
    load_json_object,
    read_format_version,
    read_offset_range,
    resolve_file,
    write_json,
)
from recording.record_file import RECORD_SCHEMA
from recording.value_schemas import ValueSchemaCount

MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1
_FINGERPRINT_PATTERN = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class PartitionRecording:
    """One partition of a recording: its record file and the offset range it covers.

    ``start_offset`` is inclusive and ``end_offset`` exclusive. ``record_count`` can be lower
    than the range, because transaction markers and aborted records take offsets too.
    The timestamps are those of the first and last record in offset order, None when the
    partition has no records. With CreateTime they need not be the minimum and maximum.
    """

    partition: int
    file: str
    start_offset: int
    end_offset: int
    record_count: int
    first_timestamp_ms: int | None
    last_timestamp_ms: int | None


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class PartitionRange(Protocol):
    """Offset range and record count of one partition, in a recording or a replay."""

    @property
    def partition(self) -> int: ...

    @property
    def start_offset(self) -> int: ...

    @property
    def end_offset(self) -> int: ...

    @property
    def record_count(self) -> int: ...


class PartitionRangeTotals:
    """Totals and offset maps of a manifest whose ``partitions`` each have an offset range and a count."""

    partitions: tuple[PartitionRange, ...]

    @property
    def record_count(self) -> int:
        return sum(partition.record_count for partition in self.partitions)

    def start_offsets(self) -> dict[int, int]:
        """Return {partition: first offset of the range (inclusive)}."""
        return {partition.partition: partition.start_offset for partition in self.partitions}

    def end_offsets(self) -> dict[int, int]:
        """Return {partition: end offset (exclusive)}, where a bounded reader stops."""
        return {partition.partition: partition.end_offset for partition in self.partitions}


@dataclass(frozen=True)
class Manifest(PartitionRangeTotals):
    """Description of a recording folder, stored in its ``manifest.json``.

    ``value_schemas`` counts the values per Avro single-object schema fingerprint.
    ``null_value_count`` counts tombstones, and ``unmarked_value_count`` counts values that
    do not start with the single-object marker C3 01. The three add up to ``record_count``.
    """

    topic: str
    partition_count: int
    partitions: tuple[PartitionRecording, ...]
    value_schemas: tuple[ValueSchemaCount, ...]
    null_value_count: int
    unmarked_value_count: int
    created_at: str = field(default_factory=utc_now_iso)
    record_schema: dict[str, Any] = field(default_factory=lambda: RECORD_SCHEMA)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "topic": self.topic,
            "created_at": self.created_at,
            "partition_count": self.partition_count,
            "record_count": self.record_count,
            "partitions": [asdict(partition) for partition in self.partitions],
            "value_schemas": [asdict(count) for count in self.value_schemas],
            "null_value_count": self.null_value_count,
            "unmarked_value_count": self.unmarked_value_count,
            "record_schema": self.record_schema,
        }

    def save(self, folder: Path) -> Path:
        """Write ``manifest.json`` into ``folder`` and return its path."""
        path = folder / MANIFEST_FILE
        write_json(path, self.to_json())
        return path

    @classmethod
    def load(cls, path: Path) -> "Manifest":
        """Read and validate a manifest from ``path``, the file or the recording folder.

        Raises ManifestError naming the file and the first invalid field.
        """
        return _manifest_from_json(load_json_object(resolve_file(path, MANIFEST_FILE)))


def _manifest_from_json(fields: JsonObject) -> Manifest:
    version = read_format_version(fields, FORMAT_VERSION)
    created_at = fields.iso_datetime("created_at")
    record_schema = fields.raw_object("record_schema")
    if record_schema.get("type") != "record":
        raise fields.error("record_schema", "must be an Avro record schema (\"type\": \"record\")")

    partition_count = fields.integer("partition_count", minimum=1)
    partitions = tuple(_partition_from_json(item, partition_count) for item in fields.objects("partitions"))
    numbers = sorted(partition.partition for partition in partitions)
    if numbers != list(range(partition_count)):
        raise fields.error(
            "partitions", f"must list each partition 0 to {partition_count - 1} once, got partitions {numbers}"
        )
    files = [partition.file for partition in partitions]
    if len(set(files)) != len(files):
        raise fields.error("partitions", f"must name a different file for each partition, got {files}")

    value_schemas = tuple(_value_schema_from_json(item) for item in fields.objects("value_schemas"))
    fingerprints = [count.fingerprint for count in value_schemas]
    if len(set(fingerprints)) != len(fingerprints):
        raise fields.error("value_schemas", f"must list each fingerprint once, got {fingerprints}")

    manifest = Manifest(
        topic=fields.string("topic"),
        partition_count=partition_count,
        partitions=partitions,
        value_schemas=value_schemas,
        null_value_count=fields.integer("null_value_count", minimum=0),
        unmarked_value_count=fields.integer("unmarked_value_count", minimum=0),
        created_at=created_at,
        record_schema=record_schema,
        format_version=version,
    )
    record_count = fields.integer("record_count", minimum=0)
    if record_count != manifest.record_count:
        raise fields.error(
            "record_count", f"is {record_count}, but the partitions' record counts add up to {manifest.record_count}"
        )
    value_count = manifest.null_value_count + manifest.unmarked_value_count + sum(
        count.record_count for count in value_schemas)
    if value_count != record_count:
        raise fields.error(
            "value_schemas",
            f"counts plus null_value_count and unmarked_value_count add up to {value_count}, "
            f"but record_count is {record_count}",
        )
    return manifest


def _partition_from_json(fields: JsonObject, partition_count: int) -> PartitionRecording:
    partition = fields.integer("partition", minimum=0)
    if partition >= partition_count:
        raise fields.error("partition", f"is {partition}, but partition_count is {partition_count}")
    file_name = fields.string("file")
    # The file must sit in the recording folder: a path could point a replay at any file.
    if Path(file_name).name != file_name or file_name in (".", ".."):
        raise fields.error("file", f"must be a file name without a folder, got {file_name!r}")
    start_offset, end_offset, record_count = read_offset_range(fields)
    first_timestamp = fields.optional_integer("first_timestamp_ms")
    last_timestamp = fields.optional_integer("last_timestamp_ms")
    for key, timestamp in (("first_timestamp_ms", first_timestamp), ("last_timestamp_ms", last_timestamp)):
        if record_count == 0 and timestamp is not None:
            raise fields.error(key, f"must be null for a partition without records, got {timestamp}")
        if record_count > 0 and timestamp is None:
            raise fields.error(key, f"must be an integer for a partition with {record_count} records, got null")
    return PartitionRecording(
        partition, file_name, start_offset, end_offset, record_count, first_timestamp, last_timestamp)


def _value_schema_from_json(fields: JsonObject) -> ValueSchemaCount:
    fingerprint = fields.string("fingerprint")
    if not _FINGERPRINT_PATTERN.fullmatch(fingerprint):
        raise fields.error("fingerprint", f"must be 16 lowercase hex digits, got {fingerprint!r}")
    return ValueSchemaCount(
        fingerprint=fingerprint,
        schema_file=fields.optional_string("schema_file"),
        schema_name=fields.optional_string("schema_name"),
        record_count=fields.integer("record_count", minimum=1),
    )
