"""Unit tests of the --from and --to parsing and of offsets files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recording import Manifest, PartitionRecording, StartPosition, StopPosition, parse_start, parse_stop


def test_parse_start_forms(tmp_path: Path) -> None:
    offsets_file = tmp_path / "offsets.json"
    offsets_file.write_text(json.dumps({"0": 120, "1": 98}), encoding="utf-8")

    assert parse_start("earliest") == StartPosition.earliest()
    assert parse_start("timestamp:1700000000000") == StartPosition.at_timestamp(1_700_000_000_000)
    assert parse_start(f"offsets:{offsets_file}") == StartPosition.at_offsets({0: 120, 1: 98})


def test_parse_start_from_manifest(tmp_path: Path) -> None:
    Manifest(
        topic="t",
        partition_count=2,
        partitions=(PartitionRecording(0, "p0.avro", 0, 7, 7, 1, 2), PartitionRecording(1, "p1.avro", 0, 0, 0, None, None)),
        value_schemas=(),
        null_value_count=0,
        unmarked_value_count=7,
    ).save(tmp_path)

    # An earlier recording's end offsets are where the next one continues.
    assert parse_start(f"offsets:{tmp_path / 'manifest.json'}") == StartPosition.at_offsets({0: 7, 1: 0})


def test_parse_stop_forms() -> None:
    assert parse_stop("end") == StopPosition.end()
    assert parse_stop("timestamp:5") == StopPosition.at_timestamp(5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("latest", "invalid start 'latest': use earliest, timestamp:MS or offsets:FILE"),
        ("timestamp:", "invalid timestamp in 'timestamp:'"),
        ("timestamp:-5", "invalid timestamp in 'timestamp:-5'"),
        ("timestamp:1.5", "invalid timestamp in 'timestamp:1.5'"),
        ("offsets:/no/such/file.json", "reading offsets file /no/such/file.json failed"),
    ],
)
def test_parse_start_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_start(text)


def test_parse_stop_rejects() -> None:
    with pytest.raises(ValueError, match="invalid stop 'earliest': use end or timestamp:MS"):
        parse_stop("earliest")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "is not valid JSON"),
        ("[1, 2]", "must contain a JSON object"),
        ('{"zero": 1}', "maps 'zero' to 1: use a partition number as the key"),
        ('{"0": -1}', "maps '0' to -1"),
        ('{"0": "12"}', "maps '0' to '12'"),
    ],
)
def test_offsets_file_rejects(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "offsets.json"
    path.write_text(content, encoding="utf-8")

    with pytest.raises(ValueError, match=message):
        parse_start(f"offsets:{path}")


def test_positions_reject_negative_values() -> None:
    with pytest.raises(ValueError, match="start offsets must be at least 0, got offset -1 for partition 0"):
        StartPosition.at_offsets({0: -1})
    with pytest.raises(ValueError, match="stop timestamp must be a number of ms at least 0, got -3"):
        StopPosition.at_timestamp(-3)
