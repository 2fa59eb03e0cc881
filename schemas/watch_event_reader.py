"""A fast decoder of WatchEvent values, for the job's hot path.

``fastavro`` costs about 13 µs per WatchEvent in the job, most of it in per-call set-up.
This reader walks the Avro binary encoding of WatchEvent versions 1 and 2 by hand. Any
payload it does not fully understand, a value written with another accepted schema or a
broken one, goes to ``AvroCodec.decode``, so the result and every dead-letter reason and
detail stay exactly those of the codec.
"""

from __future__ import annotations

import struct
from typing import Any, Callable

from schemas import WATCH_EVENT, WATCH_EVENT_V2
from schemas.binary import read_block_count, read_double, read_long, read_string
from schemas.codec import AvroCodec, load_schema, single_object_header

# The fields and types that the hand-written reader expects, in the schema's order.
_V1_FIELDS: tuple[tuple[str, Any], ...] = (
    ("user_id", "string"),
    ("video_id", "string"),
    ("watch_time_ms", "double"),
    ("duration_ms", ["null", "long"]),
    ("event_time_ms", "long"),
    ("event_id", ["null", "string"]),
    ("attributes", {"type": "map", "values": "string"}),
)
_V2_FIELDS = (*_V1_FIELDS, ("client_platform", ["null", "string"]))
_LAYOUTS = {WATCH_EVENT: _V1_FIELDS, WATCH_EVENT_V2: _V2_FIELDS}


class WatchEventReader:
    """Decoder of WatchEvent values with the same results as ``AvroCodec.decode``.

    Without an argument the reader decodes versions 1 and 2, both as version 2 records: a
    version 1 record gets ``client_platform`` None. With a codec, it decodes exactly what that
    codec decodes, into records of the codec's schema.
    """

    def __init__(self, codec: AvroCodec | None = None) -> None:
        if codec is None:
            codec = AvroCodec.for_schema(WATCH_EVENT_V2, also_reads=(WATCH_EVENT,))
        reader_fields = _fields_of(codec.schema)
        if reader_fields not in (_V1_FIELDS, _V2_FIELDS):
            raise RuntimeError(
                f"codec schema {codec.schema['name']} has fields {reader_fields}, but WatchEventReader returns "
                f"WatchEvent version 1 {_V1_FIELDS} or version 2 {_V2_FIELDS}; use a WatchEvent codec"
            )
        self._codec = codec
        self._with_platform = reader_fields == _V2_FIELDS
        self._v1_header = self._fast_header(WATCH_EVENT)
        self._v2_header = self._fast_header(WATCH_EVENT_V2)

    def _fast_header(self, name: str) -> bytes | None:
        """Return the header of shipped version ``name`` if the codec decodes it, else None."""
        schema = load_schema(name)
        if _fields_of(schema) != _LAYOUTS[name]:
            raise RuntimeError(
                f"{name}.avsc has fields {_fields_of(schema)}, but WatchEventReader reads {_LAYOUTS[name]}; "
                "update schemas/watch_event_reader.py with the schema"
            )
        header = single_object_header(schema)
        return header if header in self._codec.writer_headers else None

    def decode(self, payload: bytes | None) -> dict[str, Any]:
        """Decode one value; raises ``DecodeError`` exactly as ``AvroCodec.decode`` does."""
        if payload is not None:
            # A header is None when the codec does not decode that version, and startswith(None) raises.
            v1_header, v2_header = self._v1_header, self._v2_header
            try:
                if v1_header is not None and payload.startswith(v1_header):
                    return _read_body(payload, len(v1_header), False, self._with_platform)
                if v2_header is not None and payload.startswith(v2_header):
                    return _read_body(payload, len(v2_header), True, self._with_platform)
            except (ValueError, IndexError, struct.error):
                pass  # The codec names what is wrong.
        return self._codec.decode(payload)


def _fields_of(schema: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple((field["name"], field["type"]) for field in schema["fields"])


def _read_body(payload: bytes, position: int, writer_has_platform: bool, reader_has_platform: bool) -> dict[str, Any]:
    """Read the body of a version 1 or 2 record and return it as a record of the reader's version."""
    user_id, position = read_string(payload, position)
    video_id, position = read_string(payload, position)
    watch_time_ms, position = read_double(payload, position)
    duration_ms, position = _read_optional(payload, position, read_long)
    event_time_ms, position = read_long(payload, position)
    event_id, position = _read_optional(payload, position, read_string)
    attributes: dict[str, str] = {}
    while True:
        count, position = read_block_count(payload, position)
        if count == 0:
            break
        for _ in range(count):
            key, position = read_string(payload, position)
            attributes[key], position = read_string(payload, position)
    client_platform = None
    if writer_has_platform:
        client_platform, position = _read_optional(payload, position, read_string)
    if position != len(payload):
        raise ValueError("trailing bytes")

    record = {"user_id": user_id, "video_id": video_id, "watch_time_ms": watch_time_ms, "duration_ms": duration_ms,
              "event_time_ms": event_time_ms, "event_id": event_id, "attributes": attributes}
    if reader_has_platform:
        record["client_platform"] = client_platform
    return record


def _read_optional(payload: bytes, position: int, read: Callable[[bytes, int], tuple[Any, int]]) -> tuple[Any, int]:
    """Read a ["null", T] union: branch 0 is null, branch 1 is read with ``read``."""
    branch, position = read_long(payload, position)
    if branch == 0:
        return None, position
    if branch != 1:
        raise ValueError(f"union branch {branch}")
    return read(payload, position)
