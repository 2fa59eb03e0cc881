"""The fast WatchEvent reader gives what AvroCodec gives: the same records and the same errors."""

from __future__ import annotations

import json
import math
from typing import Any, Callable

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import VIDEO_EMBEDDING, WATCH_EVENT, WATCH_EVENT_V2, AvroCodec, DecodeError
from schemas.codec import SCHEMA_DIR
from schemas.watch_event_reader import WatchEventReader

CODEC = AvroCodec.for_schema(WATCH_EVENT)
READER = WatchEventReader(CODEC)

V2_CODEC = AvroCodec.for_schema(WATCH_EVENT_V2)
BOTH_CODEC = AvroCodec.for_schema(WATCH_EVENT_V2, also_reads=(WATCH_EVENT,))
BOTH_READER = WatchEventReader()
WRITERS = {1: CODEC, 2: V2_CODEC}

_longs = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_records = st.fixed_dictionaries({
    "user_id": st.text(max_size=40),
    "video_id": st.text(max_size=40),
    "watch_time_ms": st.floats(allow_nan=False),
    "duration_ms": st.none() | _longs,
    "event_time_ms": _longs,
    "event_id": st.none() | st.text(max_size=20),
    "attributes": st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=4),
})
_v2_records = _records.flatmap(
    lambda record: st.fixed_dictionaries({"client_platform": st.none() | st.text(max_size=12)}).map(
        lambda extra: {**record, **extra}))
_versioned_records = st.tuples(st.just(1), _records) | st.tuples(st.just(2), _v2_records)


def _outcome(decode: Callable[[bytes | None], dict[str, Any]], payload: bytes | None) -> object:
    try:
        return decode(payload)
    except DecodeError as error:
        return ("error", error.reason, error.detail)


def _assert_same_outcome(reader: WatchEventReader, codec: AvroCodec, payload: bytes | None) -> None:
    expected, got = _outcome(codec.decode, payload), _outcome(reader.decode, payload)
    if isinstance(expected, dict) and isinstance(got, dict) and math.isnan(expected["watch_time_ms"]):
        assert math.isnan(got["watch_time_ms"])
        expected["watch_time_ms"] = got["watch_time_ms"] = 0.0
    assert got == expected


def _damaged(payload: bytes, data: st.DataObject) -> tuple[bytes, ...]:
    """Return ``payload`` with one byte changed, cut short, and with a trailing byte."""
    changed = bytearray(payload)
    cut = data.draw(st.integers(min_value=0, max_value=len(payload)))
    flip = data.draw(st.integers(min_value=0, max_value=len(payload) - 1))
    changed[flip] ^= data.draw(st.integers(min_value=1, max_value=255))
    return bytes(changed), bytes(changed[:cut]), bytes(changed) + b"\x00"


class _NoFallbackCodec(AvroCodec):
    """A codec whose ``decode`` fails the test, to check that the reader's fast path handled a value."""

    def decode(self, payload: bytes | None) -> dict[str, Any]:
        raise AssertionError(f"WatchEventReader fell back to AvroCodec.decode for {payload!r}")


def _v3_codec() -> AvroCodec:
    """Return the codec of a third WatchEvent version, unknown to every reader here: version 2 plus one field."""
    raw = json.loads((SCHEMA_DIR / f"{WATCH_EVENT_V2}.avsc").read_text(encoding="utf-8"))
    raw["fields"].append({"name": "app_version", "type": ["null", "string"], "default": None})
    return AvroCodec(fastavro.parse_schema(raw))


@settings(max_examples=300, deadline=None)
@given(_records)
def test_reader_decodes_codec_output(record: dict) -> None:
    assert READER.decode(CODEC.encode(record)) == record


@settings(max_examples=300, deadline=None)
@given(_records, st.data())
def test_reader_damaged_values_fail_like_codec(record: dict, data: st.DataObject) -> None:
    for damaged in _damaged(CODEC.encode(record), data):
        _assert_same_outcome(READER, CODEC, damaged)


def test_reader_defers_tombstones_and_foreign_values() -> None:
    for payload in (None, b"", b"\xc3\x01" + bytes(8) + b"\x02a"):
        assert _outcome(READER.decode, payload) == _outcome(CODEC.decode, payload)


def test_reader_varint_past_64_bits() -> None:
    # A damaged event time whose tenth varint byte carries bits beyond 64 (found by hypothesis).
    record = {"user_id": "u", "video_id": "v", "watch_time_ms": 0.0, "duration_ms": None,
              "event_time_ms": 4_611_686_018_427_387_904, "event_id": None, "attributes": {}}
    payload = bytearray(CODEC.encode(record))
    payload[-3] ^= 2  # the last byte of the event time's 10-byte varint: bit 64 set
    assert _outcome(READER.decode, bytes(payload)) == _outcome(CODEC.decode, bytes(payload))


@settings(max_examples=300, deadline=None)
@given(_records)
def test_both_versions_reader_decodes_v1(record: dict) -> None:
    assert BOTH_READER.decode(CODEC.encode(record)) == {**record, "client_platform": None}


@settings(max_examples=300, deadline=None)
@given(_v2_records)
def test_both_versions_reader_decodes_v2(record: dict) -> None:
    assert BOTH_READER.decode(V2_CODEC.encode(record)) == record


@settings(max_examples=300, deadline=None)
@given(_versioned_records, st.data())
def test_both_versions_damaged_like_codec(versioned: tuple[int, dict], data: st.DataObject) -> None:
    version, record = versioned
    for damaged in _damaged(WRITERS[version].encode(record), data):
        _assert_same_outcome(BOTH_READER, BOTH_CODEC, damaged)


@settings(max_examples=100, deadline=None)
@given(st.lists(_versioned_records, max_size=20), st.data())
def test_mixed_batch_matches_codec(batch: list[tuple[int, dict]], data: st.DataObject) -> None:
    payloads: list[bytes | None] = []
    for version, record in batch:
        payload = WRITERS[version].encode(record)
        if data.draw(st.booleans()):
            payload = data.draw(st.sampled_from(_damaged(payload, data)))
        payloads.append(payload)
    payloads.append(None)
    payloads.append(_v3_codec().encode(batch[0][1] if batch else {"user_id": "u", "video_id": "v",
                                                                  "watch_time_ms": 1.0, "event_time_ms": 0}))

    for payload in payloads:
        _assert_same_outcome(BOTH_READER, BOTH_CODEC, payload)


def test_mixed_batch_decodes_each_version() -> None:
    v1_record = {"user_id": "u1", "video_id": "v1", "watch_time_ms": 1.5, "duration_ms": None,
                 "event_time_ms": 10, "event_id": None, "attributes": {}}
    v2_record = {"user_id": "u2", "video_id": "v2", "watch_time_ms": 2.5, "duration_ms": 7,
                 "event_time_ms": 20, "event_id": "e", "attributes": {"tab": "1"}, "client_platform": "ios"}
    payloads = [CODEC.encode(v1_record), V2_CODEC.encode(v2_record), CODEC.encode(v1_record)]

    decoded = [BOTH_READER.decode(payload) for payload in payloads]

    assert decoded[0] == {**v1_record, "client_platform": None}
    assert decoded[1] == v2_record
    assert decoded[2] == decoded[0]


def test_reader_rejects_third_version_like_codec() -> None:
    payload = _v3_codec().encode({"user_id": "u", "video_id": "v", "watch_time_ms": 1.0, "event_time_ms": 0,
                                  "app_version": "9.1"})
    outcome = _outcome(BOTH_READER.decode, payload)
    assert outcome == _outcome(BOTH_CODEC.decode, payload)
    assert isinstance(outcome, tuple)
    assert outcome[1] == "unknown_schema"


def test_v1_reader_rejects_v2_like_codec() -> None:
    payload = V2_CODEC.encode({"user_id": "u", "video_id": "v", "watch_time_ms": 1.0, "event_time_ms": 0})
    outcome = _outcome(READER.decode, payload)
    assert outcome == _outcome(CODEC.decode, payload)
    assert isinstance(outcome, tuple)
    assert outcome[1] == "unknown_schema"


@settings(max_examples=100, deadline=None)
@given(_v2_records, st.data())
def test_v1_schema_reader_drops_platform(record: dict, data: st.DataObject) -> None:
    codec = AvroCodec.for_schema(WATCH_EVENT, also_reads=(WATCH_EVENT_V2,))
    reader = WatchEventReader(codec)
    payload = V2_CODEC.encode(record)
    expected = {name: value for name, value in record.items() if name != "client_platform"}
    assert reader.decode(payload) == expected
    for damaged in _damaged(payload, data):
        _assert_same_outcome(reader, codec, damaged)


def test_reader_rejects_codec_of_other_record() -> None:
    with pytest.raises(RuntimeError, match="use a WatchEvent codec"):
        WatchEventReader(AvroCodec.for_schema(VIDEO_EMBEDDING))


@settings(max_examples=300, deadline=None)
@given(_versioned_records)
def test_fast_path_reads_both_versions(versioned: tuple[int, dict]) -> None:
    version, record = versioned
    reader = WatchEventReader(_NoFallbackCodec(BOTH_CODEC.schema, BOTH_CODEC.accepted_writer_schemas))
    decoded = reader.decode(WRITERS[version].encode(record))
    assert decoded == {"client_platform": None, **record}
