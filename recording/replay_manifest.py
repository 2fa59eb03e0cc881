"""The result of a replay: the target topic and the offset range the replay wrote to each partition.

It is saved as ``replay-manifest.json``, so that a bounded job can stop exactly at the end of
the replayed records.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from recording.json_fields import (
    JsonObject,
    load_json_object,
    read_format_version,
    read_offset_range,
    resolve_file,
    write_json,
)
from recording.manifest import FORMAT_VERSION, PartitionRangeTotals, utc_now_iso

REPLAY_MANIFEST_FILE = "replay-manifest.json"


@dataclass(frozen=True)
class ReplayedPartition:
    """Offsets of one target partition: ``start_offset`` inclusive, ``end_offset`` exclusive.

    For a partition that the replay wrote to, the range runs from the first to one past the
    last offset the broker acknowledged. It contains other producers' records too if they
    wrote to the partition meanwhile, and then ``record_count`` is lower than the range. For
    a partition the replay did not write to, both offsets are the partition's end offset
    before the replay.
    """

    partition: int
    start_offset: int
    end_offset: int
    record_count: int


@dataclass(frozen=True)
class ReplayResult(PartitionRangeTotals):
    """Summary of a replay: the source and target topics and the offsets written per partition.

    ``replaced_timestamp_count`` counts records whose recorded timestamp the producer could
    not send (0, negative or missing). The broker gave them the producer's current time.
    """

    source_topic: str
    target_topic: str
    partitions: tuple[ReplayedPartition, ...]
    replaced_timestamp_count: int
    seconds: float
    created_at: str = field(default_factory=utc_now_iso)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "source_topic": self.source_topic,
            "target_topic": self.target_topic,
            "created_at": self.created_at,
            "seconds": self.seconds,
            "record_count": self.record_count,
            "replaced_timestamp_count": self.replaced_timestamp_count,
            "partitions": [asdict(partition) for partition in self.partitions],
        }

    def save(self, path: Path) -> Path:
        """Write the replay manifest to ``path`` (a file, or a folder to put ``replay-manifest.json`` in)."""
        path = resolve_file(path, REPLAY_MANIFEST_FILE)
        write_json(path, self.to_json())
        return path

    @classmethod
    def load(cls, path: Path) -> "ReplayResult":
        """Read and validate a replay manifest from ``path``, the file or the folder that contains it.

        Raises ManifestError naming the file and the first invalid field.
        """
        return _replay_result_from_json(load_json_object(resolve_file(path, REPLAY_MANIFEST_FILE)))


def _replay_result_from_json(fields: JsonObject) -> ReplayResult:
    version = read_format_version(fields, FORMAT_VERSION)
    partitions = tuple(_partition_from_json(item) for item in fields.objects("partitions"))
    numbers = [partition.partition for partition in partitions]
    if len(set(numbers)) != len(numbers):
        raise fields.error("partitions", f"must list each partition once, got partitions {numbers}")
    result = ReplayResult(
        source_topic=fields.string("source_topic"),
        target_topic=fields.string("target_topic"),
        partitions=partitions,
        replaced_timestamp_count=fields.integer("replaced_timestamp_count", minimum=0),
        seconds=fields.number("seconds", minimum=0),
        created_at=fields.iso_datetime("created_at"),
        format_version=version,
    )
    record_count = fields.integer("record_count", minimum=0)
    if record_count != result.record_count:
        raise fields.error(
            "record_count", f"is {record_count}, but the partitions' record counts add up to {result.record_count}"
        )
    return result


def _partition_from_json(fields: JsonObject) -> ReplayedPartition:
    start_offset, end_offset, record_count = read_offset_range(fields)
    return ReplayedPartition(fields.integer("partition", minimum=0), start_offset, end_offset, record_count)
