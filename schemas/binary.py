"""Readers of Avro binary primitives, for the hand-written fast record readers of this package.

Each function takes the payload and a position and returns the value and the next position.
They raise ``ValueError`` or ``IndexError`` on malformed input; callers turn those into
``DecodeError`` or fall back to ``AvroCodec``.
"""

from __future__ import annotations

import struct

DOUBLE = struct.Struct("<d")


def read_long(payload: bytes, position: int) -> tuple[int, int]:
    """Read a zig-zag varint long."""
    byte = payload[position]
    if byte < 0x80:  # One byte: values -64 to 63, the common case for counts and lengths.
        return (byte >> 1) ^ -(byte & 1), position + 1
    shift = 0
    zigzag = 0
    while True:
        byte = payload[position]
        position += 1
        zigzag |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")
    if zigzag >> 64:
        # fastavro wraps such a value to 64 bits; callers fall back to it to get the same result.
        raise ValueError("varint longer than 64 bits")
    return (zigzag >> 1) ^ -(zigzag & 1), position


def read_string(payload: bytes, position: int) -> tuple[str, int]:
    """Read a length-prefixed UTF-8 string."""
    length, position = read_long(payload, position)
    end = position + length
    if length < 0 or end > len(payload):
        raise ValueError(f"string length {length} runs past the record")
    return payload[position:end].decode("utf-8"), end


def read_double(payload: bytes, position: int) -> tuple[float, int]:
    """Read a little-endian IEEE 754 double."""
    return DOUBLE.unpack_from(payload, position)[0], position + 8


def read_block_count(payload: bytes, position: int) -> tuple[int, int]:
    """Read the item count of an array or map block. A negative count is followed by a byte size."""
    count, position = read_long(payload, position)
    if count < 0:
        count = -count
        _, position = read_long(payload, position)
    return count, position
