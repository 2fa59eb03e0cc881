"""Unit tests of the Avro single-object wire format."""

from __future__ import annotations

import json

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import (
    DEAD_LETTER,
    USER_INTEREST,
    VIDEO_EMBEDDING,
    WATCH_EVENT,
    WATCH_EVENT_V2,
    AvroCodec,
    DecodeError,
    load_schema,
)
from schemas.codec import SCHEMA_DIR, rabin_fingerprint, single_object_header

ALL_SCHEMAS = (WATCH_EVENT, WATCH_EVENT_V2, VIDEO_EMBEDDING, USER_INTEREST, DEAD_LETTER)


def make_event(**overrides: object) -> dict[str, object]:
    event: dict[str, object] = {
        "user_id": "42",
        "video_id": "7",
        "watch_time_ms": 1234.0,
        "duration_ms": 30_000,
        "event_time_ms": 1_651_314_030_792,
    }
    event.update(overrides)
    return event


def test_fingerprint_matches_avro_spec_vector() -> None:
    # The Avro specification's test data gives 7195948357588979594 for the schema "null".
    assert rabin_fingerprint(b'"null"') == 7195948357588979594


@pytest.mark.parametrize("name", ALL_SCHEMAS)
def test_schema_fields_have_doc_and_unit(name: str) -> None:
    raw = json.loads((SCHEMA_DIR / f"{name}.avsc").read_text(encoding="utf-8"))
    for field in raw["fields"]:
        assert field.get("doc"), f"{name}.{field['name']} has no doc"
        assert field.get("unit"), f"{name}.{field['name']} has no unit"


def test_event_round_trip_fills_defaults() -> None:
    codec = AvroCodec.for_schema(WATCH_EVENT)
    decoded = codec.decode(codec.encode(make_event()))
    assert decoded["user_id"] == "42"
    assert decoded["event_time_ms"] == 1_651_314_030_792
    assert decoded["event_id"] is None
    assert decoded["attributes"] == {}


def test_header_is_marker_and_little_endian_fingerprint() -> None:
    codec = AvroCodec.for_schema(WATCH_EVENT)
    payload = codec.encode(make_event())
    canonical = fastavro.schema.to_parsing_canonical_form(load_schema(WATCH_EVENT)).encode()
    assert payload[:2] == b"\xc3\x01"
    assert int.from_bytes(payload[2:10], "little") == rabin_fingerprint(canonical)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "invalid_avro"),
        (b"not avro at all", "invalid_avro"),
        (b"\xc3\x01" + b"\x00" * 8 + b"\x02", "unknown_schema"),
    ],
)
def test_decode_rejects_foreign_bytes(payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        AvroCodec.for_schema(WATCH_EVENT).decode(payload)
    assert caught.value.reason == reason


def test_decode_rejects_none_as_missing_value() -> None:
    with pytest.raises(DecodeError) as caught:
        AvroCodec.for_schema(WATCH_EVENT).decode(None)
    assert caught.value.reason == "missing_value"


def test_decode_rejects_truncated_body() -> None:
    codec = AvroCodec.for_schema(WATCH_EVENT)
    payload = codec.encode(make_event())
    with pytest.raises(DecodeError) as caught:
        codec.decode(payload[:-3])
    assert caught.value.reason == "invalid_avro"


def test_decode_rejects_trailing_bytes() -> None:
    codec = AvroCodec.for_schema(WATCH_EVENT)
    with pytest.raises(DecodeError) as caught:
        codec.decode(codec.encode(make_event()) + b"\x00")
    assert caught.value.reason == "invalid_avro"
    assert "trailing" in caught.value.detail


def test_decode_rejects_record_of_other_schema() -> None:
    embedding = AvroCodec.for_schema(VIDEO_EMBEDDING).encode(
        {"video_id": "7", "vector": [1.0, 0.0], "model_version": "v", "produced_time_ms": 0}
    )
    with pytest.raises(DecodeError) as caught:
        AvroCodec.for_schema(WATCH_EVENT).decode(embedding)
    assert caught.value.reason == "unknown_schema"


def test_encode_rejects_missing_field() -> None:
    event = make_event()
    del event["watch_time_ms"]
    with pytest.raises(ValueError, match="WatchEvent"):
        AvroCodec.for_schema(WATCH_EVENT).encode(event)


def test_load_schema_unknown_name_lists_known() -> None:
    with pytest.raises(FileNotFoundError, match="watch_event"):
        load_schema("no_such_schema")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_decode_random_body_raises_only_decode_error(body: bytes) -> None:
    codec = AvroCodec.for_schema(WATCH_EVENT)
    try:
        codec.decode(codec.header + body)
    except DecodeError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_decode_corrupted_record_raises_only_decode_error(data: st.DataObject) -> None:
    codec = AvroCodec.for_schema(WATCH_EVENT)
    payload = bytearray(codec.encode(make_event(attributes={"tab": "1"}, event_id="e")))
    position = data.draw(st.integers(10, len(payload) - 1))
    payload[position] = data.draw(st.integers(0, 255))
    try:
        codec.decode(bytes(payload))
    except DecodeError:
        pass


def _both_versions() -> AvroCodec:
    return AvroCodec.for_schema(WATCH_EVENT_V2, also_reads=(WATCH_EVENT,))


def _v3_schema() -> dict[str, object]:
    """Return a third WatchEvent version, unknown to every codec in these tests: version 2 plus one field."""
    raw = json.loads((SCHEMA_DIR / f"{WATCH_EVENT_V2}.avsc").read_text(encoding="utf-8"))
    raw["fields"].append({"name": "app_version", "type": ["null", "string"], "default": None})
    return fastavro.parse_schema(raw)


def test_v2_appends_only_client_platform() -> None:
    v1_fields = load_schema(WATCH_EVENT)["fields"]
    v2_fields = load_schema(WATCH_EVENT_V2)["fields"]
    assert v2_fields[:-1] == v1_fields
    assert v2_fields[-1]["name"] == "client_platform"
    assert v2_fields[-1]["type"] == ["null", "string"]
    assert v2_fields[-1]["default"] is None
    assert load_schema(WATCH_EVENT_V2)["name"] == load_schema(WATCH_EVENT)["name"]


def test_v2_fingerprint_differs_from_v1() -> None:
    assert single_object_header(load_schema(WATCH_EVENT_V2)) != single_object_header(load_schema(WATCH_EVENT))


def test_both_versions_codec_reads_v1() -> None:
    payload = AvroCodec.for_schema(WATCH_EVENT).encode(make_event())
    decoded = _both_versions().decode(payload)
    assert decoded == {**make_event(), "event_id": None, "attributes": {}, "client_platform": None}


def test_both_versions_codec_reads_v2() -> None:
    payload = AvroCodec.for_schema(WATCH_EVENT_V2).encode(make_event(client_platform="ios"))
    assert _both_versions().decode(payload)["client_platform"] == "ios"


def test_both_versions_codec_encodes_v2() -> None:
    codec = _both_versions()
    payload = codec.encode(make_event(client_platform="web"))
    assert payload.startswith(single_object_header(load_schema(WATCH_EVENT_V2)))
    assert codec.writer_headers == {
        single_object_header(load_schema(WATCH_EVENT)),
        single_object_header(load_schema(WATCH_EVENT_V2)),
    }


def test_v1_codec_reads_v2_without_platform() -> None:
    codec = AvroCodec.for_schema(WATCH_EVENT, also_reads=(WATCH_EVENT_V2,))
    payload = AvroCodec.for_schema(WATCH_EVENT_V2).encode(make_event(client_platform="android"))
    assert codec.decode(payload) == {**make_event(), "event_id": None, "attributes": {}}


def test_v1_codec_alone_rejects_v2() -> None:
    payload = AvroCodec.for_schema(WATCH_EVENT_V2).encode(make_event())
    with pytest.raises(DecodeError) as caught:
        AvroCodec.for_schema(WATCH_EVENT).decode(payload)
    assert caught.value.reason == "unknown_schema"


def test_both_versions_codec_rejects_third_version() -> None:
    payload = AvroCodec(_v3_schema()).encode(make_event(app_version="9.1"))
    with pytest.raises(DecodeError) as caught:
        _both_versions().decode(payload)
    assert caught.value.reason == "unknown_schema"
    assert payload[2:10].hex() in caught.value.detail


def test_also_reads_rejects_other_record() -> None:
    with pytest.raises(ValueError, match="VideoEmbedding cannot be resolved"):
        AvroCodec.for_schema(WATCH_EVENT, also_reads=(VIDEO_EMBEDDING,))


def test_also_reads_rejects_missing_field_without_default() -> None:
    raw = json.loads((SCHEMA_DIR / f"{WATCH_EVENT_V2}.avsc").read_text(encoding="utf-8"))
    del raw["fields"][-1]["default"]
    with pytest.raises(ValueError, match="no field 'client_platform'"):
        AvroCodec(fastavro.parse_schema(raw), (load_schema(WATCH_EVENT),))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_corrupted_v1_as_v2_raises_decode_error(data: st.DataObject) -> None:
    payload = bytearray(AvroCodec.for_schema(WATCH_EVENT).encode(make_event(attributes={"tab": "1"}, event_id="e")))
    position = data.draw(st.integers(10, len(payload) - 1))
    payload[position] = data.draw(st.integers(0, 255))
    try:
        _both_versions().decode(bytes(payload))
    except DecodeError:
        pass
