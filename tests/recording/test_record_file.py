"""Unit tests of the record files and of the value schema counts."""

from __future__ import annotations

from pathlib import Path

import fastavro

from recording import RECORD_SCHEMA, RecordedRecord, read_record_file
from recording.record_file import RecordFileWriter
from recording.value_schemas import ValueSchemaCounter
from schemas import WATCH_EVENT, AvroCodec


def test_record_file_round_trip(tmp_path: Path) -> None:
    records: list[RecordedRecord] = [
        {"partition": 3, "offset": 7, "timestamp_ms": 1_700_000_000_000, "timestamp_type": "CREATE_TIME",
         "key": b"k", "value": b"v", "headers": [{"name": "a", "value": b"1"}, {"name": "a", "value": None}]},
        {"partition": 3, "offset": 9, "timestamp_ms": 1_700_000_000_005, "timestamp_type": "LOG_APPEND_TIME",
         "key": None, "value": None, "headers": []},
    ]
    path = tmp_path / "partition-3.avro"
    writer = RecordFileWriter(path, "events", 3)
    for record in records:
        writer.write(record)
    writer.close()

    assert list(read_record_file(path)) == records
    with path.open("rb") as handle:
        reader = fastavro.reader(handle)
        assert reader.codec == "deflate"
        assert reader.metadata["dreamumm.topic"] == "events"
        assert reader.writer_schema["name"] == "dreamumm.recording.RecordedKafkaRecord"


def test_record_file_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "partition-0.avro"
    path.write_bytes(b"earlier")

    try:
        RecordFileWriter(path, "events", 0)
    except FileExistsError:
        pass
    else:
        raise AssertionError("RecordFileWriter overwrote an existing file")

    assert path.read_bytes() == b"earlier"


def test_record_schema_is_valid_avro() -> None:
    parsed = fastavro.parse_schema(RECORD_SCHEMA)

    assert [field["name"] for field in parsed["fields"]] == [
        "partition", "offset", "timestamp_ms", "timestamp_type", "key", "value", "headers"]


def test_value_schema_counts() -> None:
    event = AvroCodec.for_schema(WATCH_EVENT).encode(
        {"user_id": "1", "video_id": "2", "watch_time_ms": 1.0, "duration_ms": 5, "event_time_ms": 1})
    unknown = b"\xc3\x01" + bytes(range(8)) + b"body"
    counter = ValueSchemaCounter()

    for value in [event, event, event, unknown, None, b"plain text", b"\xc3\x01short"]:
        counter.add(value)
    counts = counter.schema_counts()

    assert [(c.fingerprint, c.schema_file, c.record_count) for c in counts] == [
        (event[2:10].hex(), "watch_event.avsc", 3),
        ("0001020304050607", None, 1),
    ]
    assert counts[0].schema_name == "dev.dreamumm.v1.WatchEvent"
    assert counter.null_value_count == 1
    assert counter.unmarked_value_count == 2
