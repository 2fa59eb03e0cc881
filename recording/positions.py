"""Start and stop positions of a recording, and their resolution into offsets per partition."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from confluent_kafka.admin import AdminClient, OffsetSpec

from recording.errors import RecordingError
from recording.manifest import Manifest
from recording.offsets import list_offsets

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StartPosition:
    """First offset to record in each partition.

    ``earliest`` is the oldest retained offset. ``timestamp`` is the first offset whose
    timestamp is at or after ``timestamp_ms``. ``offsets`` gives the offset per partition,
    and partitions it does not list start at the earliest offset.
    """

    kind: Literal["earliest", "timestamp", "offsets"] = "earliest"
    timestamp_ms: int | None = None
    offsets: Mapping[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind == "timestamp" and (self.timestamp_ms is None or self.timestamp_ms < 0):
            raise ValueError(f"start timestamp must be a number of ms at least 0, got {self.timestamp_ms}")
        for partition, offset in self.offsets.items():
            if partition < 0 or offset < 0:
                raise ValueError(f"start offsets must be at least 0, got offset {offset} for partition {partition}")

    @classmethod
    def earliest(cls) -> "StartPosition":
        return cls("earliest")

    @classmethod
    def at_timestamp(cls, timestamp_ms: int) -> "StartPosition":
        return cls("timestamp", timestamp_ms=timestamp_ms)

    @classmethod
    def at_offsets(cls, offsets: Mapping[int, int]) -> "StartPosition":
        return cls("offsets", offsets=dict(offsets))


@dataclass(frozen=True)
class StopPosition:
    """End offset (exclusive) of each partition.

    ``end`` is the last stable offset when recording starts, so later records and records of
    open transactions are left out. ``timestamp`` stops at the first offset whose timestamp
    is at or after ``timestamp_ms``, and at the last stable offset if no record is that late.
    """

    kind: Literal["end", "timestamp"] = "end"
    timestamp_ms: int | None = None

    def __post_init__(self) -> None:
        if self.kind == "timestamp" and (self.timestamp_ms is None or self.timestamp_ms < 0):
            raise ValueError(f"stop timestamp must be a number of ms at least 0, got {self.timestamp_ms}")

    @classmethod
    def end(cls) -> "StopPosition":
        return cls("end")

    @classmethod
    def at_timestamp(cls, timestamp_ms: int) -> "StopPosition":
        return cls("timestamp", timestamp_ms=timestamp_ms)


@dataclass(frozen=True)
class OffsetRange:
    """Offsets ``start`` (inclusive) to ``end`` (exclusive) of one partition."""

    start: int
    end: int

    @property
    def is_empty(self) -> bool:
        return self.end <= self.start


def parse_start(text: str) -> StartPosition:
    """Parse ``earliest``, ``timestamp:MS`` or ``offsets:FILE``, raising ValueError that names the text."""
    if text == "earliest":
        return StartPosition.earliest()
    if text.startswith("timestamp:"):
        return StartPosition.at_timestamp(_parse_timestamp(text))
    if text.startswith("offsets:"):
        return StartPosition.at_offsets(read_offsets_file(Path(text.removeprefix("offsets:"))))
    raise ValueError(f"invalid start {text!r}: use earliest, timestamp:MS or offsets:FILE")


def parse_stop(text: str) -> StopPosition:
    """Parse ``end`` or ``timestamp:MS``, raising ValueError that names the text."""
    if text == "end":
        return StopPosition.end()
    if text.startswith("timestamp:"):
        return StopPosition.at_timestamp(_parse_timestamp(text))
    raise ValueError(f"invalid stop {text!r}: use end or timestamp:MS")


def read_offsets_file(path: Path) -> dict[int, int]:
    """Read {partition: offset} from a JSON file.

    The file is either an object such as ``{"0": 120, "1": 98}`` or the ``manifest.json`` of
    an earlier recording, whose end offsets continue that recording.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"reading offsets file {path} failed: {error}") from error
    except json.JSONDecodeError as error:
        raise ValueError(f"offsets file {path} is not valid JSON: {error}") from error
    if isinstance(data, dict) and "format_version" in data and "partitions" in data:
        return Manifest.load(path).end_offsets()
    if not isinstance(data, dict):
        raise ValueError(f"offsets file {path} must contain a JSON object such as {{\"0\": 120, \"1\": 98}}")
    offsets: dict[int, int] = {}
    for partition, offset in data.items():
        if not partition.isdigit() or not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise ValueError(
                f"offsets file {path} maps {partition!r} to {offset!r}: use a partition number as the key "
                "and an offset of at least 0 as the value"
            )
        offsets[int(partition)] = offset
    return offsets


def _parse_timestamp(text: str) -> int:
    number = text.partition(":")[2]
    if not number.isdigit():
        raise ValueError(f"invalid timestamp in {text!r}: use ms since the Unix epoch, for example timestamp:1700000000000")
    return int(number)


def resolve_offset_ranges(
    admin: AdminClient,
    topic: str,
    partitions: list[int],
    start: StartPosition,
    stop: StopPosition,
    timeout_s: float,
) -> dict[int, OffsetRange]:
    """Return the offset range to record in each partition, counting only committed records.

    Raises RecordingError if a start offset lies past a partition's end, or if the start
    timestamp is after the stop timestamp.
    """
    if start.timestamp_ms is not None and stop.timestamp_ms is not None and start.timestamp_ms > stop.timestamp_ms:
        raise RecordingError(
            f"start timestamp {start.timestamp_ms} is after stop timestamp {stop.timestamp_ms}. Swap them."
        )
    earliest = list_offsets(admin, topic, partitions, OffsetSpec.earliest(), timeout_s)
    stable_end = list_offsets(admin, topic, partitions, OffsetSpec.latest(), timeout_s)

    unknown = sorted(set(start.offsets) - set(partitions))
    if unknown:
        raise RecordingError(
            f"start offsets name partitions {unknown}, but topic {topic!r} has partitions {partitions}. "
            "Remove them from the offsets file."
        )
    if start.kind == "timestamp":
        first = list_offsets(admin, topic, partitions, OffsetSpec.for_timestamp(start.timestamp_ms), timeout_s)
    else:
        first = {partition: start.offsets.get(partition, earliest[partition]) for partition in partitions}
    if stop.kind == "timestamp":
        last = list_offsets(admin, topic, partitions, OffsetSpec.for_timestamp(stop.timestamp_ms), timeout_s)
    else:
        last = stable_end

    ranges: dict[int, OffsetRange] = {}
    for partition in partitions:
        # A timestamp later than every record lists offset -1: nothing to record from there on.
        end = last[partition] if 0 <= last[partition] <= stable_end[partition] else stable_end[partition]
        begin = first[partition] if first[partition] >= 0 else stable_end[partition]
        if begin > stable_end[partition]:
            raise RecordingError(
                f"start offset {begin} of {topic!r} partition {partition} is past its end offset "
                f"{stable_end[partition]}. Use an offset from {earliest[partition]} to {stable_end[partition]}."
            )
        if begin < earliest[partition]:
            logger.warning(
                "Start offset %s of %s partition %s was deleted by retention. Recording from the earliest "
                "offset %s, so offsets %s to %s are missing",
                begin, topic, partition, earliest[partition], begin, earliest[partition] - 1,
            )
            begin = earliest[partition]
        ranges[partition] = OffsetRange(begin, max(begin, end))
    return ranges
