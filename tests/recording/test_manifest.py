"""Unit tests of the recording and replay manifests: round trips and validation errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from recording import (
    Manifest,
    ManifestError,
    PartitionRecording,
    ReplayedPartition,
    ReplayResult,
    ValueSchemaCount,
)


def sample_manifest() -> Manifest:
    return Manifest(
        topic="watch-events",
        partition_count=2,
        partitions=(
            PartitionRecording(0, "partition-0.avro", 0, 12, 10, 1_700_000_000_000, 1_700_000_005_000),
            PartitionRecording(1, "partition-1.avro", 5, 5, 0, None, None),
        ),
        value_schemas=(ValueSchemaCount("1c3469f4a81bd49d", "watch_event.avsc", "dev.dreamumm.v1.WatchEvent", 8),),
        null_value_count=1,
        unmarked_value_count=1,
    )


def sample_replay_result() -> ReplayResult:
    return ReplayResult(
        source_topic="watch-events",
        target_topic="watch-events-replay",
        partitions=(ReplayedPartition(0, 0, 10, 10), ReplayedPartition(1, 3, 3, 0)),
        replaced_timestamp_count=0,
        seconds=1.25,
    )


def test_manifest_round_trip(tmp_path: Path) -> None:
    manifest = sample_manifest()

    path = manifest.save(tmp_path)

    assert path == tmp_path / "manifest.json"
    assert Manifest.load(tmp_path) == manifest
    assert Manifest.load(path) == manifest


def test_manifest_offsets_and_count() -> None:
    manifest = sample_manifest()

    assert manifest.start_offsets() == {0: 0, 1: 5}
    assert manifest.end_offsets() == {0: 12, 1: 5}
    assert manifest.record_count == 10
    assert manifest.to_json()["record_count"] == 10


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Return an edit that sets the field at a dotted ``path`` (list indexes as numbers)."""

    def edit(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = data
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        key: Any = int(last) if isinstance(target, list) else last
        if value is _DELETE:
            del target[key]
        else:
            target[key] = value

    return edit


_DELETE = object()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set("format_version", 2), "field format_version is 2, but this version of dreamumm reads only version 1"),
        (_set("topic", _DELETE), "field topic is missing"),
        (_set("topic", ""), "field topic must be a non-empty string"),
        (_set("created_at", "yesterday"), "field created_at must be an ISO 8601 date and time"),
        (_set("partition_count", 0), "field partition_count must be at least 1, got 0"),
        (_set("partition_count", "2"), "field partition_count must be an integer, got '2'"),
        (_set("partition_count", True), "field partition_count must be an integer, got True"),
        (_set("partition_count", 3), r"field partitions must list each partition 0 to 2 once, got partitions \[0, 1\]"),
        (_set("partitions.1.partition", 0), r"must list each partition 0 to 1 once, got partitions \[0, 0\]"),
        (_set("partitions.1.partition", 2), "field partitions\\[1\\].partition is 2, but partition_count is 2"),
        (_set("partitions.0.file", "../x.avro"), r"field partitions\[0\].file must be a file name without a folder"),
        (_set("partitions.1.file", "partition-0.avro"), "must name a different file for each partition"),
        (_set("partitions.0.start_offset", -1), r"field partitions\[0\].start_offset must be at least 0, got -1"),
        (_set("partitions.0.end_offset", 9), r"field partitions\[0\].record_count is 10, more than the 9 offsets"),
        (_set("partitions.1.end_offset", 4), r"field partitions\[1\].end_offset must be at least 5, got 4"),
        (_set("partitions.1.first_timestamp_ms", 7), "must be null for a partition without records, got 7"),
        (_set("partitions.0.last_timestamp_ms", None), "must be an integer for a partition with 10 records, got null"),
        (_set("partitions", {}), "field partitions must be a list, got dict"),
        (_set("partitions.0", []), r"partitions\[0\] must be a JSON object, got list"),
        (_set("record_count", 11), "field record_count is 11, but the partitions' record counts add up to 10"),
        (_set("value_schemas.0.fingerprint", "XYZ"), "fingerprint must be 16 lowercase hex digits, got 'XYZ'"),
        (_set("value_schemas.0.record_count", 0), r"value_schemas\[0\].record_count must be at least 1, got 0"),
        (_set("null_value_count", 2), "add up to 11, but record_count is 10"),
        (_set("record_schema", {"type": "enum"}), "field record_schema must be an Avro record schema"),
    ],
)
def test_manifest_rejects_invalid_field(
    tmp_path: Path, edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    data = sample_manifest().to_json()
    edit(data)
    (tmp_path / "manifest.json").write_text(json.dumps(data), encoding="utf-8")

    with pytest.raises(ManifestError, match=message) as error:
        Manifest.load(tmp_path)

    assert str(tmp_path / "manifest.json") in str(error.value)


def test_manifest_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="not found. Pass a recording folder or the manifest file itself"):
        Manifest.load(tmp_path)


def test_manifest_invalid_json(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{", encoding="utf-8")

    with pytest.raises(ManifestError, match="is not valid JSON"):
        Manifest.load(tmp_path)


def test_manifest_top_level_not_object(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("[]", encoding="utf-8")

    with pytest.raises(ManifestError, match="the top level must be a JSON object, got list"):
        Manifest.load(tmp_path)


def test_replay_result_round_trip(tmp_path: Path) -> None:
    result = sample_replay_result()

    folder_path = result.save(tmp_path)
    file_path = result.save(tmp_path / "elsewhere.json")

    assert folder_path == tmp_path / "replay-manifest.json"
    assert ReplayResult.load(tmp_path) == result
    assert ReplayResult.load(file_path) == result
    assert result.end_offsets() == {0: 10, 1: 3}
    assert result.start_offsets() == {0: 0, 1: 3}
    assert result.record_count == 10


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set("target_topic", None), "field target_topic must be a non-empty string, got None"),
        (_set("seconds", -1), "field seconds must be at least 0, got -1"),
        (_set("seconds", "fast"), "field seconds must be a number, got 'fast'"),
        (_set("partitions.1.partition", 0), r"must list each partition once, got partitions \[0, 0\]"),
        (_set("partitions.0.end_offset", 5), r"partitions\[0\].record_count is 10, more than the 5 offsets"),
        (_set("record_count", 3), "field record_count is 3, but the partitions' record counts add up to 10"),
        (_set("replaced_timestamp_count", -2), "field replaced_timestamp_count must be at least 0, got -2"),
    ],
)
def test_replay_result_rejects_invalid_field(
    tmp_path: Path, edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    data = sample_replay_result().to_json()
    edit(data)
    (tmp_path / "replay-manifest.json").write_text(json.dumps(data), encoding="utf-8")

    with pytest.raises(ManifestError, match=message):
        ReplayResult.load(tmp_path)
