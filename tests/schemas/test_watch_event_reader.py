"""The fast WatchEvent reader gives what AvroCodec gives: the same records and the same errors."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import WATCH_EVENT, AvroCodec, DecodeError
from schemas.watch_event_reader import WatchEventReader

CODEC = AvroCodec.for_schema(WATCH_EVENT)
READER = WatchEventReader(CODEC)

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


def _outcome(decode, payload: bytes | None) -> object:
    try:
        return decode(payload)
    except DecodeError as error:
        return ("error", error.reason, error.detail)


@settings(max_examples=300, deadline=None)
@given(_records)
def test_reader_decodes_codec_output(record: dict) -> None:
    assert READER.decode(CODEC.encode(record)) == record


@settings(max_examples=300, deadline=None)
@given(_records, st.data())
def test_reader_damaged_values_fail_like_codec(record: dict, data: st.DataObject) -> None:
    payload = bytearray(CODEC.encode(record))
    cut = data.draw(st.integers(min_value=0, max_value=len(payload)))
    flip = data.draw(st.integers(min_value=0, max_value=len(payload) - 1))
    payload[flip] ^= data.draw(st.integers(min_value=1, max_value=255))
    for damaged in (bytes(payload), bytes(payload[:cut]), bytes(payload) + b"\x00"):
        expected, got = _outcome(CODEC.decode, damaged), _outcome(READER.decode, damaged)
        if isinstance(expected, dict) and isinstance(got, dict) and math.isnan(expected["watch_time_ms"]):
            assert math.isnan(got["watch_time_ms"])
            expected["watch_time_ms"] = got["watch_time_ms"] = 0.0
        assert got == expected


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
