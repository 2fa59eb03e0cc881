"""Decoding of feature and embedding records into store writes, and the reasons for skipping bad ones."""

from __future__ import annotations

import numpy as np
import pytest

from schemas import WATCH_EVENT, AvroCodec
from store.decoding import BadRecord, RecordDecoder
from store.layout import USERS, VIDEOS, decode_user_value, decode_video_value


@pytest.fixture
def decoder(records) -> RecordDecoder:
    return RecordDecoder(records.dimension)


def test_feature_record_becomes_user_value(decoder, records) -> None:
    value = records.user_value("user-1", event_count=6, vector=[0.0, 0.6, 0.8, 0.0])
    write = decoder.feature_write(b"user-1", value)
    assert write.column_family == USERS
    assert write.key == b"user-1"
    stored = decode_user_value("user-1", write.value)
    assert stored.vector.tolist() == pytest.approx([0.0, 0.6, 0.8, 0.0])
    assert stored.event_count == 6
    assert stored.total_weight == 3.0
    assert stored.last_event_time_ms == 1_006
    assert stored.emit_time_ms == 2_006
    assert stored.embedding_model_version == records.model_version


def test_zero_user_vector_is_kept(decoder, records) -> None:
    write = decoder.feature_write(b"u", records.user_value("u", vector=[0.0, 0.0, 0.0, 0.0]))
    assert decode_user_value("u", write.value).vector.tolist() == [0.0, 0.0, 0.0, 0.0]


def test_feature_tombstone_deletes_user(decoder) -> None:
    write = decoder.feature_write(b"user-1", None)
    assert write.column_family == USERS
    assert write.key == b"user-1"
    assert write.value is None


def test_embedding_record_normalised_and_keyed(decoder, records) -> None:
    write = decoder.embedding_write(b"v9", records.embedding_value("v9", [3.0, 0.0, 4.0, 0.0], "m2", 77))
    assert write.column_family == VIDEOS
    assert write.key == b"m2\x00v9"
    vector, produced_time_ms, valid_from_ms = decode_video_value(write.key, write.value)
    assert vector.tolist() == pytest.approx([0.6, 0.0, 0.8, 0.0])
    assert produced_time_ms == 5
    assert valid_from_ms == 77


BAD_FEATURE_CASES = [
    ("no key", None, "value", "invalid_field", "no key"),
    ("empty key", b"", "value", "invalid_field", "no key"),
    ("key not UTF-8", b"\xff\xfe", "value", "invalid_field", "not UTF-8"),
    ("garbage value", b"user-1", b"garbage bytes", "invalid_avro", "single-object marker"),
    ("truncated value", b"user-1", "truncated", "invalid_avro", "UserInterest"),
    ("other schema", b"user-1", "watch event", "unknown_schema", "fingerprint"),
    ("key differs from user_id", b"user-2", "value", "invalid_field", "differs from the value's user_id"),
    ("wrong dimension", b"user-1", "wide", "invalid_field", "5 dimensions, expected 4"),
    ("NaN component", b"user-1", "nan", "invalid_field", "NaN or infinite"),
    ("NaN total weight", b"user-1", "nan weight", "invalid_field", "total_weight is nan"),
    ("infinite total weight", b"user-1", "inf weight", "invalid_field", "total_weight is inf"),
    ("negative infinite total weight", b"user-1", "-inf weight", "invalid_field", "total_weight is -inf"),
]


@pytest.mark.parametrize("case,key,value,reason,detail", BAD_FEATURE_CASES, ids=[c[0] for c in BAD_FEATURE_CASES])
def test_bad_feature_record_raises_reason(decoder, records, case, key, value, reason, detail) -> None:
    payloads = {
        "value": records.user_value("user-1"),
        "truncated": records.user_value("user-1")[:-3],
        "watch event": AvroCodec.for_schema(WATCH_EVENT).encode(
            {"user_id": "user-1", "video_id": "v", "watch_time_ms": 1.0, "duration_ms": 5, "event_time_ms": 1}),
        "wide": records.user_value("user-1", vector=[1.0, 0.0, 0.0, 0.0, 0.0]),
        "nan": records.user_value("user-1", vector=[float("nan"), 0.0, 0.0, 0.0]),
        "nan weight": records.user_value("user-1", total_weight=float("nan")),
        "inf weight": records.user_value("user-1", total_weight=float("inf")),
        "-inf weight": records.user_value("user-1", total_weight=float("-inf")),
    }
    payload = payloads.get(value, value) if isinstance(value, str) else value
    with pytest.raises(BadRecord) as caught:
        decoder.feature_write(key, payload)
    assert caught.value.reason == reason
    assert detail in caught.value.detail


BAD_EMBEDDING_CASES = [
    ("tombstone", None, "missing_value", "tombstone"),
    ("garbage value", b"\xc3\x01garbage!!!", "unknown_schema", "fingerprint"),
    ("wrong dimension", "wide", "invalid_embedding", "5 dimensions, expected 4"),
    ("zero vector", "zero", "invalid_embedding", "all zeros"),
    ("infinite component", "inf", "invalid_embedding", "NaN or infinite"),
    ("empty video id", "no id", "invalid_field", "video_id is empty"),
    ("NUL in model version", "nul", "invalid_field", "0x00"),
]


@pytest.mark.parametrize("case,value,reason,detail", BAD_EMBEDDING_CASES, ids=[c[0] for c in BAD_EMBEDDING_CASES])
def test_bad_embedding_record_raises_reason(decoder, records, case, value, reason, detail) -> None:
    payloads = {
        "wide": records.embedding_value("v", [1.0, 0.0, 0.0, 0.0, 0.0]),
        "zero": records.embedding_value("v", [0.0, 0.0, 0.0, 0.0]),
        "inf": records.embedding_value("v", [np.inf, 0.0, 0.0, 0.0]),
        "no id": records.embedding_value("", [1.0, 0.0, 0.0, 0.0]),
        "nul": records.embedding_value("v", [1.0, 0.0, 0.0, 0.0], model_version="a\x00b"),
    }
    payload = payloads.get(value, value) if isinstance(value, str) else value
    with pytest.raises(BadRecord) as caught:
        decoder.embedding_write(b"v", payload)
    assert caught.value.reason == reason
    assert detail in caught.value.detail
