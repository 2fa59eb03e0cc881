"""A fast reader of UserInterest records, for consumers that read many of them.

``AvroCodec.decode`` builds a Python float per vector component. This reader walks the Avro
binary encoding of the fields in ``schemas.user_interest_encoder``'s order and returns the
vector as one float32 array over the record's bytes. It accepts only records written with the
current UserInterest schema, whose single-object header must match. Anything else raises
``DecodeError``, so the caller can fall back to ``AvroCodec``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from schemas.binary import read_block_count, read_double, read_long, read_string
from schemas.codec import AvroCodec, DecodeError, load_schema
from schemas.user_interest_encoder import check_field_order

@dataclass(frozen=True)
class UserInterestRecord:
    """One decoded UserInterest record; field meanings are in ``user_interest.avsc``."""

    user_id: str
    vector: NDArray[np.float32]
    total_weight: float
    event_count: int
    last_event_time_ms: int
    emit_time_ms: int
    embedding_model_version: str
    superseded_event_count: int
    deduplicated_event_count: int


class UserInterestReader:
    """Decoder of UserInterest records in the single-object wire format."""

    def __init__(self) -> None:
        schema = load_schema("user_interest")
        check_field_order(schema, type(self).__name__)
        self._header = AvroCodec(schema).header

    def read(self, payload: bytes) -> UserInterestRecord:
        """Decode one record.

        Raises:
            DecodeError: if the payload is not a complete UserInterest record of this schema.
        """
        if not payload.startswith(self._header):
            raise DecodeError("unknown_schema", "payload does not start with the UserInterest schema header")
        try:
            return self._read_body(payload, len(self._header))
        except (IndexError, ValueError, struct.error) as error:
            raise DecodeError("invalid_avro", f"truncated or malformed UserInterest record: {error}") from error

    def _read_body(self, payload: bytes, position: int) -> UserInterestRecord:
        user_id, position = read_string(payload, position)
        vector, position = _read_float_array(payload, position)
        total_weight, position = read_double(payload, position)
        event_count, position = read_long(payload, position)
        last_event_time_ms, position = read_long(payload, position)
        emit_time_ms, position = read_long(payload, position)
        model_version, position = read_string(payload, position)
        superseded, position = read_long(payload, position)
        deduplicated, position = read_long(payload, position)
        if position != len(payload):
            raise ValueError(f"{len(payload) - position} bytes after the last field")
        return UserInterestRecord(user_id, vector, total_weight, event_count, last_event_time_ms,
                                  emit_time_ms, model_version, superseded, deduplicated)


def _read_float_array(payload: bytes, position: int) -> tuple[NDArray[np.float32], int]:
    """Read an Avro array of floats, in one or more blocks, as one float32 array."""
    blocks: list[NDArray[np.float32]] = []
    while True:
        count, position = read_block_count(payload, position)
        if count == 0:
            break
        end = position + 4 * count
        if end > len(payload):
            raise ValueError(f"float array block of {count} items runs past the record")
        blocks.append(np.frombuffer(payload, dtype="<f4", count=count, offset=position))
        position = end
    if len(blocks) == 1:
        return blocks[0], position
    return (np.concatenate(blocks) if blocks else np.zeros(0, dtype="<f4")), position
