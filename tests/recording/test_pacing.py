"""Unit tests of replay pacing, speed parsing and the timestamp-ordered merge of partitions."""

from __future__ import annotations

from pathlib import Path

import pytest

from recording import Manifest, PartitionRecording, parse_speed
from recording.pacing import Pacer
from recording.record_file import RecordFileWriter, partition_file_name
from recording.replayer import _merged_records


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_pacer_scales_timestamp_gaps() -> None:
    clock = FakeClock()
    pacer = Pacer(4.0, clock)

    first = pacer.delay_s(10_000)
    second = pacer.delay_s(12_000)
    clock.now += 0.3
    third = pacer.delay_s(12_000)

    assert first == 0.0
    # 2000 ms of record time at 4x real time is 0.5 s after the first record.
    assert second == pytest.approx(0.5)
    assert third == pytest.approx(0.2)


def test_pacer_sends_late_records_at_once() -> None:
    clock = FakeClock()
    pacer = Pacer(1.0, clock)
    pacer.delay_s(10_000)
    clock.now += 5.0

    assert pacer.delay_s(12_000) == 0.0
    # An earlier timestamp than the first record's is due at once, never in the past.
    assert pacer.delay_s(9_000) == 0.0


def test_parse_speed() -> None:
    assert parse_speed("max") is None
    assert parse_speed("2.5") == 2.5


@pytest.mark.parametrize("text", ["0", "-1", "fast", "inf", "nan"])
def test_parse_speed_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=f"invalid speed '{text}': use max or a number greater than 0"):
        parse_speed(text)


def test_pacer_rejects_zero_speed() -> None:
    with pytest.raises(ValueError, match="invalid speed 0"):
        Pacer(0)


def test_merge_orders_partitions_by_timestamp(tmp_path: Path) -> None:
    timestamps = {0: [10, 30, 20, 50], 1: [15, 16, 60]}
    partitions = []
    for partition, values in timestamps.items():
        writer = RecordFileWriter(tmp_path / partition_file_name(partition), "t", partition)
        for offset, timestamp in enumerate(values):
            writer.write({"partition": partition, "offset": offset, "timestamp_ms": timestamp,
                          "timestamp_type": "CREATE_TIME", "key": None, "value": None, "headers": []})
        writer.close()
        partitions.append(PartitionRecording(
            partition, partition_file_name(partition), 0, len(values), len(values), values[0], values[-1]))
    manifest = Manifest("t", 2, tuple(partitions), (), null_value_count=7, unmarked_value_count=0)

    merged = [(record["partition"], record["timestamp_ms"]) for record in _merged_records(tmp_path, manifest)]

    # Partition 0's out-of-order 20 stays after its 30: each partition keeps its offset order.
    assert merged == [(0, 10), (1, 15), (1, 16), (0, 30), (0, 20), (0, 50), (1, 60)]
