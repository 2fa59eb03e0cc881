"""A batch encoder of UserInterest records that writes the Avro bytes directly.

fastavro encodes an ``array<float>`` one Python float at a time. Avro's binary encoding of a
float array is a block count, the little-endian floats and a zero end marker, so this encoder
copies each vector's float32 buffer as it is. The output is byte-for-byte what
``AvroCodec.encode`` writes for the same record, which the unit tests check.
"""

from __future__ import annotations

import struct
from typing import Any, Sequence

import numpy as np

from schemas.codec import AvroCodec, load_schema

_DOUBLE = struct.Struct("<d")

# The encoder writes the fields in this order; a schema change must update both.
_FIELD_ORDER = (
    "user_id",
    "vector",
    "total_weight",
    "event_count",
    "last_event_time_ms",
    "emit_time_ms",
    "embedding_model_version",
    "superseded_event_count",
    "deduplicated_event_count",
)


def _long(value: int) -> bytes:
    """Encode an Avro long: zig-zag, then a little-endian base-128 varint."""
    if 0 <= value < _SMALL_LONGS_END:
        return _SMALL_LONGS[value]
    zigzag = (value << 1) ^ (value >> 63)
    out = bytearray()
    while zigzag > 0x7F:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)
    return bytes(out)


# Counts and short lengths: one byte each, looked up instead of computed.
_SMALL_LONGS_END = 64
_SMALL_LONGS = tuple(bytes(((value << 1),)) for value in range(_SMALL_LONGS_END))


def _string(value: str) -> bytes:
    encoded = value.encode("utf-8")
    return _long(len(encoded)) + encoded


def check_field_order(schema: dict[str, Any], user: str) -> None:
    """Raise ``RuntimeError`` if ``schema``'s fields are not in the order this module writes them."""
    field_names = tuple(field["name"] for field in schema["fields"])
    if field_names != _FIELD_ORDER:
        raise RuntimeError(
            f"user_interest.avsc has fields {field_names}, but {user} expects {_FIELD_ORDER}; "
            "update schemas/user_interest_encoder.py and schemas/user_interest_reader.py with the schema"
        )


class UserInterestEncoder:
    """Encoder of many UserInterest records at once, in the single-object wire format."""

    def __init__(self) -> None:
        schema = load_schema("user_interest")
        check_field_order(schema, type(self).__name__)
        self._header = AvroCodec(schema).header

    def encode_many(
        self,
        user_ids: Sequence[str],
        unit_vectors: np.ndarray,
        total_weights: Sequence[float],
        event_counts: Sequence[int],
        last_event_times_ms: Sequence[int],
        emit_time_ms: int,
        model_versions: Sequence[str],
        superseded_event_counts: Sequence[int],
        deduplicated_event_counts: Sequence[int] | None = None,
    ) -> list[bytes]:
        """Encode one record per row of ``unit_vectors`` (float32, shape n x d).

        ``deduplicated_event_counts`` defaults to 0 for every row.
        """
        vectors = np.ascontiguousarray(unit_vectors, dtype="<f4")
        if vectors.ndim != 2 or vectors.shape[0] != len(user_ids):
            raise ValueError(f"expected {len(user_ids)} vectors in a 2-D array, got shape {vectors.shape}")
        dimension = vectors.shape[1]
        array_head = _long(dimension) if dimension else b""
        emit_time = _long(emit_time_ms)
        records = []
        for row, user_id in enumerate(user_ids):
            records.append(b"".join((
                self._header,
                _string(user_id),
                array_head,
                vectors[row].tobytes(),
                b"\x00",
                _DOUBLE.pack(total_weights[row]),
                _long(int(event_counts[row])),
                _long(int(last_event_times_ms[row])),
                emit_time,
                _string(model_versions[row]),
                _long(int(superseded_event_counts[row])),
                _long(0 if deduplicated_event_counts is None else int(deduplicated_event_counts[row])),
            )))
        return records
