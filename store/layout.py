"""Keys and values of the store's RocksDB column families, layout version 1.

Column families (RocksDB's ``default`` stays empty):

``users``
    Key: the user id in UTF-8. Value: a user value (below).
``videos``
    Key: the embedding model version in UTF-8, a 0x00 byte, then the video id in UTF-8. The
    materialiser rejects model versions that contain 0x00, so the split is unambiguous.
    Value: a video value (below).
``offsets``
    Key: the topic name in UTF-8, a 0x00 byte, then the partition as a big-endian uint32.
    Value: the next offset to read from that partition, int64.
``meta``
    Key: an ASCII name. Value: int64. The names are ``layout_version``, ``heartbeat_ms``,
    ``caught_up_ms`` and ``bad_records/<source>/<reason>``, where ``source`` is ``features`` or
    ``embeddings`` and ``reason`` a dead-letter reason code of ``jobs.dead_letters``. One more
    name has a text value: ``topic_id/<topic>`` (the topic name in UTF-8), whose value is the Kafka
    topic id of that topic in UTF-8, as confluent-kafka prints it. The materialiser records it when
    it first reads the topic, to notice a topic that was deleted and created again.

Numbers are little-endian except the partition in offset keys. A read unpacks the fixed
header with ``struct`` and views the vector bytes as float32 without copying them. The
header sizes are multiples of 8, so the vector starts 8-byte aligned within the value.

User value, ``40 + 4 * d + m`` bytes:

====== ==== ============================================================
offset size field
====== ==== ============================================================
0      1    layout version (1)
1      3    reserved, zero
4      4    dimension d, uint32
8      8    event count, int64
16     8    total weight, float64
24     8    newest contributing event time, epoch ms, int64
32     8    emit time, epoch ms, int64
40     4*d  vector, float32
40+4*d m    embedding model version, UTF-8 (the rest of the value)
====== ==== ============================================================

Video value, ``24 + 4 * d`` bytes:

====== ==== ============================================================
offset size field
====== ==== ============================================================
0      1    layout version (1)
1      1    flags: bit 0 is set when valid_from_ms is present
2      2    reserved, zero
4      4    dimension d, uint32
8      8    produced time, epoch ms, int64
16     8    valid-from time, epoch ms, int64 (0 when absent)
24     4*d  vector, float32
====== ==== ============================================================
"""

from __future__ import annotations

import struct
from typing import NoReturn, Sequence

import numpy as np
from numpy.typing import NDArray

from store.errors import StoreLayoutError
from store.vectors import StoredVector

LAYOUT_VERSION = 1

USERS = "users"
VIDEOS = "videos"
OFFSETS = "offsets"
META = "meta"
COLUMN_FAMILIES = (USERS, VIDEOS, OFFSETS, META)

LAYOUT_VERSION_KEY = b"layout_version"
HEARTBEAT_KEY = b"heartbeat_ms"
CAUGHT_UP_KEY = b"caught_up_ms"
BAD_RECORDS_PREFIX = b"bad_records/"
TOPIC_ID_PREFIX = b"topic_id/"

_USER_HEADER = struct.Struct("<B3xIqdqq")
_VIDEO_HEADER = struct.Struct("<BB2xIqq")
_INT64 = struct.Struct("<q")
_PARTITION = struct.Struct(">I")
_FLAG_HAS_VALID_FROM = 0x01
FLOAT32_LE = np.dtype("<f4")
"""dtype of stored vectors. Built once, because np.frombuffer parses a dtype string on every call."""


def encode_int64(value: int) -> bytes:
    return _INT64.pack(value)


def decode_int64(value: bytes) -> int:
    return _INT64.unpack(value)[0]


def offset_key(topic: str, partition: int) -> bytes:
    return topic.encode("utf-8") + b"\x00" + _PARTITION.pack(partition)


def parse_offset_key(key: bytes) -> tuple[str, int]:
    """Return (topic, partition) of an ``offsets`` key."""
    # The partition is the fixed-size tail; its bytes may be 0x00 too.
    separator = len(key) - _PARTITION.size - 1
    if separator < 1 or key[separator] != 0:
        raise StoreLayoutError(f"offsets key {key!r} is not <topic> 0x00 <uint32 partition>")
    return key[:separator].decode("utf-8"), _PARTITION.unpack_from(key, separator + 1)[0]


def bad_records_key(reason: str) -> bytes:
    return BAD_RECORDS_PREFIX + reason.encode("utf-8")


def topic_id_key(topic: str) -> bytes:
    return TOPIC_ID_PREFIX + topic.encode("utf-8")


def video_key(model_version: str, video_id: str) -> bytes:
    return model_version.encode("utf-8") + b"\x00" + video_id.encode("utf-8")


def encode_user_value(
    vector: NDArray[np.float32],
    event_count: int,
    total_weight: float,
    last_event_time_ms: int,
    emit_time_ms: int,
    embedding_model_version: str,
) -> bytes:
    """Encode a user value; ``vector`` is written as little-endian float32."""
    body = np.ascontiguousarray(vector, dtype=FLOAT32_LE)
    header = _USER_HEADER.pack(LAYOUT_VERSION, body.shape[0], event_count, total_weight, last_event_time_ms,
                               emit_time_ms)
    return header + body.tobytes() + embedding_model_version.encode("utf-8")


def decode_user_value(user_id: str, value: bytes) -> StoredVector:
    """Decode a user value into a StoredVector whose vector is a read-only view of ``value``."""
    if len(value) < _USER_HEADER.size:
        raise StoreLayoutError(f"value of user {user_id!r} is {len(value)} bytes, shorter than the "
                               f"{_USER_HEADER.size}-byte header")
    version, dimension, event_count, total_weight, last_event_time_ms, emit_time_ms = _USER_HEADER.unpack_from(value)
    _check_version(version, f"user {user_id!r}")
    end = _USER_HEADER.size + 4 * dimension
    if end > len(value):
        raise StoreLayoutError(f"value of user {user_id!r} is {len(value)} bytes, too short for {dimension} dimensions")
    vector = np.frombuffer(value, dtype=FLOAT32_LE, count=dimension, offset=_USER_HEADER.size)
    return StoredVector(
        user_id=user_id,
        vector=vector,
        embedding_model_version=value[end:].decode("utf-8"),
        event_count=event_count,
        total_weight=total_weight,
        last_event_time_ms=last_event_time_ms,
        emit_time_ms=emit_time_ms,
    )


def encode_video_value(vector: NDArray[np.float32], produced_time_ms: int, valid_from_ms: int | None) -> bytes:
    """Encode a video value; ``vector`` is written as little-endian float32."""
    body = np.ascontiguousarray(vector, dtype=FLOAT32_LE)
    flags = 0 if valid_from_ms is None else _FLAG_HAS_VALID_FROM
    header = _VIDEO_HEADER.pack(LAYOUT_VERSION, flags, body.shape[0], produced_time_ms,
                                0 if valid_from_ms is None else valid_from_ms)
    return header + body.tobytes()


def video_vector_bytes(key: bytes, value: bytes) -> bytes:
    """Return the float32 vector bytes of a video value, checking the header against the length."""
    if len(value) < _VIDEO_HEADER.size:
        raise StoreLayoutError(f"value of video key {key!r} is {len(value)} bytes, shorter than the "
                               f"{_VIDEO_HEADER.size}-byte header")
    version, _flags, dimension, _produced, _valid_from = _VIDEO_HEADER.unpack_from(value)
    _check_version(version, f"video key {key!r}")
    if len(value) != _VIDEO_HEADER.size + 4 * dimension:
        raise StoreLayoutError(f"value of video key {key!r} is {len(value)} bytes, expected "
                               f"{_VIDEO_HEADER.size + 4 * dimension} for {dimension} dimensions")
    return value[_VIDEO_HEADER.size:]


def video_vector_rows(keys: Sequence[bytes], values: Sequence[bytes]) -> NDArray[np.float32]:
    """Return the vectors of one or more video values as the rows of a float32 matrix.

    The values are checked and decoded together, which costs far less than one call per value.
    The matrix is a read-only view of one buffer that joins the values.

    Raises:
        StoreLayoutError: if a value is malformed or of another layout version, or the values differ
            in dimension. The message names the first such key.
    """
    size = len(values[0])
    if size < _VIDEO_HEADER.size or (size - _VIDEO_HEADER.size) % 4 or any(len(value) != size for value in values):
        _raise_first_video_problem(keys, values)
    block = np.frombuffer(b"".join(values), dtype=np.uint8).reshape(len(values), size)
    dimension = (size - _VIDEO_HEADER.size) // 4
    versions_ok = block[:, 0] == LAYOUT_VERSION
    dimensions_ok = block[:, 4:8].view("<u4")[:, 0] == dimension
    if not (versions_ok.all() and dimensions_ok.all()):
        _raise_first_video_problem(keys, values)
    return block[:, _VIDEO_HEADER.size:].view(FLOAT32_LE)


def _raise_first_video_problem(keys: Sequence[bytes], values: Sequence[bytes]) -> NoReturn:
    dimension = None
    for key, value in zip(keys, values):
        row_dimension = len(video_vector_bytes(key, value)) // 4
        if dimension is None:
            dimension = row_dimension
        elif row_dimension != dimension:
            raise StoreLayoutError(
                f"video vectors differ in dimension: {dimension} and {row_dimension} (key {key!r}). The store was "
                "filled under two settings of embedding.dimension. Run `dreamumm materialise --rebuild` to rebuild it."
            )
    raise AssertionError("_raise_first_video_problem found no problem")


def decode_video_value(key: bytes, value: bytes) -> tuple[NDArray[np.float32], int, int | None]:
    """Return (vector, produced time in ms, valid-from time in ms or None) of a video value."""
    vector = np.frombuffer(video_vector_bytes(key, value), dtype=FLOAT32_LE)
    _version, flags, _dimension, produced_time_ms, valid_from_ms = _VIDEO_HEADER.unpack_from(value)
    return vector, produced_time_ms, valid_from_ms if flags & _FLAG_HAS_VALID_FROM else None


def _check_version(version: int, value_owner: str) -> None:
    if version != LAYOUT_VERSION:
        raise StoreLayoutError(f"value of {value_owner} has layout version {version}, but this version of dreamumm "
                               f"reads {LAYOUT_VERSION}. Rebuild the store with `dreamumm materialise --rebuild`")
