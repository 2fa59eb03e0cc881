"""Avro single-object encoding of Kafka record values.

Wire format (the Avro specification's "single object encoding", which the Java Avro library
reads with ``BinaryMessageDecoder``)::

    byte 0-1   marker 0xC3 0x01
    byte 2-9   CRC-64-AVRO fingerprint of the writer schema's parsing canonical form,
               little-endian
    byte 10-   the record in Avro binary encoding

The fingerprint lets a reader reject a record written with a schema it does not know instead
of misreading its bytes. No schema registry is needed: the schemas ship in this package.

A codec encodes with one schema and decodes records written with that schema or with any of
its ``accepted_writer_schemas``. Those are other versions of the same record, and Avro schema
resolution turns each into a record of the codec's schema. For example,
``AvroCodec.for_schema(WATCH_EVENT_V2, also_reads=(WATCH_EVENT,))`` decodes WatchEvent records
of both versions as version 2 and fills ``client_platform`` with its default (null) for
version 1 records.
"""

from __future__ import annotations

import io
import json
import re
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import fastavro
from fastavro.schema import to_parsing_canonical_form

SINGLE_OBJECT_MARKER = b"\xc3\x01"
HEADER_SIZE = 10
SCHEMA_DIR = Path(__file__).resolve().parent

_FINGERPRINT_EMPTY = 0xC15D213AA4D7A795


def _fingerprint_table() -> list[int]:
    table = []
    for byte in range(256):
        value = byte
        for _ in range(8):
            value = (value >> 1) ^ (_FINGERPRINT_EMPTY & -(value & 1))
        table.append(value)
    return table


_FINGERPRINT_TABLE = _fingerprint_table()


def rabin_fingerprint(data: bytes) -> int:
    """Compute the 64-bit Rabin fingerprint that the Avro specification calls CRC-64-AVRO."""
    value = _FINGERPRINT_EMPTY
    for byte in data:
        value = (value >> 8) ^ _FINGERPRINT_TABLE[(value ^ byte) & 0xFF]
    return value


class DecodeError(ValueError):
    """Raised when record bytes cannot be decoded; ``reason`` is a dead-letter reason code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict[str, Any]:
    """Load and parse ``schemas/<name>.avsc``, for example ``load_schema("watch_event")``."""
    path = SCHEMA_DIR / f"{name}.avsc"
    if not path.is_file():
        known = sorted(p.stem for p in SCHEMA_DIR.glob("*.avsc"))
        raise FileNotFoundError(f"schema {name!r} not found in {SCHEMA_DIR}; known schemas: {known}")
    with path.open(encoding="utf-8") as handle:
        return fastavro.parse_schema(json.load(handle))


@dataclass(frozen=True)
class AvroCodec:
    """Encoder and decoder of one record type in the single-object wire format.

    ``schema`` is the reader and writer schema. Records written with one of
    ``accepted_writer_schemas`` are decoded too, resolved to ``schema`` by Avro's rules.
    """

    schema: dict[str, Any]
    accepted_writer_schemas: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        for writer in self.accepted_writer_schemas:
            check_resolvable(writer, self.schema)

    @classmethod
    def for_schema(cls, name: str, also_reads: Iterable[str] = ()) -> "AvroCodec":
        """Build the codec of ``schemas/<name>.avsc``.

        The codec encodes with that schema. It decodes records written with that schema and,
        resolved to it, records written with the schemas named in ``also_reads``. Raises
        ``ValueError`` if one of those cannot be resolved to ``name``'s schema.
        """
        return cls(load_schema(name), tuple(load_schema(other) for other in also_reads))

    @property
    def header(self) -> bytes:
        """Single-object header that ``encode`` writes: the marker and the schema's fingerprint."""
        return single_object_header(self.schema)

    @property
    def writer_headers(self) -> frozenset[bytes]:
        """Single-object headers of every writer schema that ``decode`` accepts."""
        return frozenset(_writers_by_header(self.schema, self.accepted_writer_schemas))

    def encode(self, record: dict[str, Any]) -> bytes:
        """Serialise ``record``; raises ``ValueError`` when it does not match the schema."""
        buffer = io.BytesIO()
        buffer.write(self.header)
        try:
            fastavro.schemaless_writer(buffer, self.schema, record, strict_allow_default=True)
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as error:
            raise ValueError(f"record does not match schema {self.schema['name']}: {error}") from error
        return buffer.getvalue()

    def decode(self, payload: bytes | None) -> dict[str, Any]:
        """Deserialise ``payload``, raising ``DecodeError`` with a dead-letter reason code."""
        if payload is None:
            raise DecodeError("missing_value", "record has no value (a tombstone)")
        if len(payload) < HEADER_SIZE or payload[:2] != SINGLE_OBJECT_MARKER:
            raise DecodeError(
                "invalid_avro",
                f"value of {len(payload)} bytes does not start with the Avro single-object marker C3 01",
            )
        writer = self._writer_for(payload[:HEADER_SIZE])
        buffer = io.BytesIO(payload)
        buffer.seek(HEADER_SIZE)
        try:
            record = fastavro.schemaless_reader(buffer, writer, self.schema)
        except (EOFError, ValueError, TypeError, IndexError, UnicodeDecodeError, struct.error) as error:
            # fastavro names its buffer object in some messages; the address would make equal
            # failures read differently.
            problem = _BUFFER_REPR.sub("", repr(error))
            raise DecodeError("invalid_avro", f"body is not a valid {self.schema['name']}: {problem}") from error
        if buffer.tell() != len(payload):
            raise DecodeError(
                "invalid_avro",
                f"{len(payload) - buffer.tell()} trailing bytes after a {self.schema['name']} record",
            )
        return record

    def _writer_for(self, header: bytes) -> dict[str, Any]:
        writers = _writers_by_header(self.schema, self.accepted_writer_schemas)
        writer = writers.get(header)
        if writer is None:
            raise DecodeError(
                "unknown_schema",
                f"writer schema fingerprint {header[2:].hex()} is not a known version of {self.schema['name']}",
            )
        return writer


_BUFFER_REPR = re.compile(r" from <_io\.BytesIO object at 0x[0-9a-f]+>")


def single_object_header(schema: dict[str, Any]) -> bytes:
    """Return the 10-byte single-object header of records written with ``schema``."""
    canonical = to_parsing_canonical_form(schema).encode("utf-8")
    return SINGLE_OBJECT_MARKER + struct.pack("<Q", rabin_fingerprint(canonical))


def check_resolvable(writer: dict[str, Any], reader: dict[str, Any]) -> None:
    """Raise ``ValueError`` if records of ``writer`` cannot be resolved to ``reader``.

    Avro resolves two record schemas when their full names match, or the writer's full name is
    one of the reader's aliases, and every reader field that the writer lacks has a default.
    NOTE: this checks only those two rules. fastavro checks the types of the shared fields
    while it decodes, and raises ``SchemaResolutionError`` there when they do not match.
    """
    reader_names = {reader["name"], *reader.get("aliases", ())}
    if writer["name"] not in reader_names:
        raise ValueError(
            f"writer schema {writer['name']} cannot be resolved to reader schema {reader['name']}: "
            "Avro resolves records only when their full names match or the reader lists the writer's name as an alias"
        )
    writer_fields = {field["name"] for field in writer["fields"]}
    for field in reader["fields"]:
        field_names = {field["name"], *field.get("aliases", ())}
        if field_names.isdisjoint(writer_fields) and "default" not in field:
            raise ValueError(
                f"writer schema {writer['name']} has no field {field['name']!r}, and the reader schema gives "
                "it no default; add a default to the reader's field to read records of that writer"
            )


# Codecs are frozen dataclasses holding dicts, so they are not hashable: cache by id instead.
_WRITER_CACHE: dict[tuple[int, ...], dict[bytes, dict[str, Any]]] = {}


def _writers_by_header(
    schema: dict[str, Any], accepted: tuple[dict[str, Any], ...]
) -> dict[bytes, dict[str, Any]]:
    cache_key = (id(schema), *map(id, accepted))
    writers = _WRITER_CACHE.get(cache_key)
    if writers is None:
        writers = {single_object_header(candidate): candidate for candidate in (schema, *accepted)}
        _WRITER_CACHE[cache_key] = writers
    return writers
