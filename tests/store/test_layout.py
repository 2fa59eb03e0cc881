"""The byte layout of stored users, videos and offsets: round trips and rejected values."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.errors import StoreLayoutError
from store.layout import (
    LAYOUT_VERSION,
    decode_user_value,
    decode_video_value,
    encode_user_value,
    encode_video_value,
    offset_key,
    parse_offset_key,
    video_key,
    video_vector_bytes,
    video_vector_rows,
)

finite_floats = st.floats(width=32, allow_nan=False, allow_infinity=False)


@given(
    vector=st.lists(finite_floats, min_size=0, max_size=64),
    event_count=st.integers(min_value=0, max_value=2**63 - 1),
    total_weight=st.floats(allow_nan=False),
    last_event_time_ms=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    emit_time_ms=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    model_version=st.text(max_size=40),
)
def test_user_value_round_trip(vector, event_count, total_weight, last_event_time_ms, emit_time_ms,
                               model_version) -> None:
    array = np.array(vector, dtype=np.float32)
    value = encode_user_value(array, event_count, total_weight, last_event_time_ms, emit_time_ms, model_version)
    stored = decode_user_value("user-1", value)
    assert stored.user_id == "user-1"
    assert stored.vector.dtype == np.float32
    assert stored.vector.tobytes() == array.tobytes()
    assert stored.event_count == event_count
    assert stored.total_weight == total_weight
    assert stored.last_event_time_ms == last_event_time_ms
    assert stored.emit_time_ms == emit_time_ms
    assert stored.embedding_model_version == model_version


def test_user_value_size_and_vector_offset() -> None:
    value = encode_user_value(np.ones(64, dtype=np.float32), 3, 1.5, 10, 20, "v1")
    assert len(value) == 40 + 4 * 64 + 2
    assert value[0] == LAYOUT_VERSION
    assert np.frombuffer(value, dtype="<f4", count=64, offset=40).tolist() == [1.0] * 64


def test_stored_vector_is_read_only_view() -> None:
    stored = decode_user_value("u", encode_user_value(np.ones(4, dtype=np.float32), 1, 1.0, 1, 1, "v1"))
    with pytest.raises(ValueError):
        stored.vector[0] = 2.0


def test_stored_vector_age() -> None:
    stored = decode_user_value("u", encode_user_value(np.ones(4, dtype=np.float32), 1, 1.0, 1_000, 1_500, "v1"))
    assert stored.age_ms(now_ms=4_000) == 3_000


@pytest.mark.parametrize("valid_from_ms", [None, 0, 1_700_000_000_000])
def test_video_value_round_trip(valid_from_ms) -> None:
    vector = np.array([0.6, 0.8, 0.0], dtype=np.float32)
    value = encode_video_value(vector, 123, valid_from_ms)
    decoded, produced_time_ms, valid_from = decode_video_value(b"key", value)
    assert decoded.tolist() == vector.tolist()
    assert produced_time_ms == 123
    assert valid_from == valid_from_ms
    assert len(value) == 24 + 4 * 3


def test_video_key_separates_version_and_id() -> None:
    assert video_key("v1", "video-9") == b"v1\x00video-9"
    assert video_key("caf\u00e9", "1") == "caf\u00e9".encode() + b"\x00" + b"1"


@pytest.mark.parametrize("topic,partition", [("features", 0), ("a.b-c_d", 1), ("t", 256), ("t", 2**32 - 1)])
def test_offset_key_round_trip(topic, partition) -> None:
    assert parse_offset_key(offset_key(topic, partition)) == (topic, partition)


def test_offset_keys_sort_by_partition() -> None:
    keys = [offset_key("t", partition) for partition in (10, 2, 300, 0)]
    assert [parse_offset_key(key)[1] for key in sorted(keys)] == [0, 2, 10, 300]


@pytest.mark.parametrize("key", [b"", b"\x00\x00\x00\x00", b"topic", b"topicX\x00\x00\x00\x01"])
def test_malformed_offset_key_raises(key) -> None:
    with pytest.raises(StoreLayoutError, match="offsets key"):
        parse_offset_key(key)


def test_other_layout_version_raises() -> None:
    value = bytearray(encode_user_value(np.ones(4, dtype=np.float32), 1, 1.0, 1, 1, "v1"))
    value[0] = LAYOUT_VERSION + 1
    with pytest.raises(StoreLayoutError, match="layout version 2"):
        decode_user_value("u", bytes(value))
    video = bytearray(encode_video_value(np.ones(4, dtype=np.float32), 1, None))
    video[0] = LAYOUT_VERSION + 1
    with pytest.raises(StoreLayoutError, match="layout version 2"):
        video_vector_bytes(b"k", bytes(video))


def test_truncated_values_raise() -> None:
    user = encode_user_value(np.ones(4, dtype=np.float32), 1, 1.0, 1, 1, "")
    with pytest.raises(StoreLayoutError, match="too short for 4 dimensions"):
        decode_user_value("u", user[:-1])
    with pytest.raises(StoreLayoutError, match="shorter than the 40-byte header"):
        decode_user_value("u", user[:10])
    video = encode_video_value(np.ones(4, dtype=np.float32), 1, None)
    with pytest.raises(StoreLayoutError, match="expected 40 for 4 dimensions"):
        video_vector_bytes(b"k", video[:-4])


def test_user_header_is_little_endian() -> None:
    value = encode_user_value(np.zeros(2, dtype=np.float32), 7, 0.25, 11, 13, "m")
    assert struct.unpack_from("<B3xIqdqq", value) == (LAYOUT_VERSION, 2, 7, 0.25, 11, 13)


def test_video_vector_rows_decodes_all() -> None:
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4)
    values = [encode_video_value(row, 1, None) for row in vectors]
    rows = video_vector_rows([b"a", b"b", b"c"], values)
    assert rows.dtype == np.float32
    assert rows.tolist() == vectors.tolist()


def test_video_vector_rows_names_bad_key() -> None:
    good = encode_video_value(np.ones(4, dtype=np.float32), 1, None)
    other_version = bytearray(good)
    other_version[0] = LAYOUT_VERSION + 1
    with pytest.raises(StoreLayoutError, match="video key b'bad'.*layout version 2"):
        video_vector_rows([b"good", b"bad"], [good, bytes(other_version)])
    narrow = encode_video_value(np.ones(3, dtype=np.float32), 1, None)
    with pytest.raises(StoreLayoutError, match="differ in dimension: 4 and 3 \\(key b'narrow'\\)"):
        video_vector_rows([b"good", b"narrow"], [good, narrow])
    with pytest.raises(StoreLayoutError, match="shorter than the 24-byte header"):
        video_vector_rows([b"short"], [good[:10]])
