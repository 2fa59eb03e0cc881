"""Counting the Avro single-object schema fingerprints of recorded values (wire format in schemas/codec.py)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from schemas.codec import HEADER_SIZE, SCHEMA_DIR, SINGLE_OBJECT_MARKER, AvroCodec


@dataclass(frozen=True)
class ValueSchemaCount:
    """Number of recorded values written with one schema.

    ``fingerprint`` is bytes 2-9 of the value in hex, in wire order (the CRC-64-AVRO
    fingerprint, little-endian), as the job's ``unknown_schema`` dead letters print it.
    ``schema_file`` is the file in ``schemas/`` with that fingerprint and ``schema_name`` its
    full Avro name. Both are None when no shipped schema has the fingerprint. Two versions
    of a record have the same full name but different files.
    """

    fingerprint: str
    schema_file: str | None
    schema_name: str | None
    record_count: int


class ValueSchemaCounter:
    """Tally of the values of a recording: per schema fingerprint, null, and without the marker."""

    def __init__(self) -> None:
        self.fingerprints: Counter[str] = Counter()
        self.null_value_count = 0
        self.unmarked_value_count = 0

    def add(self, value: bytes | None) -> None:
        if value is None:
            self.null_value_count += 1
        elif len(value) >= HEADER_SIZE and value[:2] == SINGLE_OBJECT_MARKER:
            self.fingerprints[value[2:HEADER_SIZE].hex()] += 1
        else:
            self.unmarked_value_count += 1

    def schema_counts(self) -> tuple[ValueSchemaCount, ...]:
        """Return one count per fingerprint seen, the most frequent first."""
        shipped = shipped_schemas()
        counts = []
        for fingerprint, count in sorted(self.fingerprints.items(), key=lambda item: (-item[1], item[0])):
            schema_file, schema_name = shipped.get(fingerprint, (None, None))
            counts.append(ValueSchemaCount(fingerprint, schema_file, schema_name, count))
        return tuple(counts)


@lru_cache(maxsize=1)
def shipped_schemas() -> dict[str, tuple[str, str]]:
    """Return {fingerprint hex: (file name, full Avro name)} of the schemas in ``schemas/*.avsc``."""
    schemas: dict[str, tuple[str, str]] = {}
    for path in sorted(SCHEMA_DIR.glob("*.avsc")):
        codec = AvroCodec.for_schema(path.stem)
        schemas[codec.header[2:HEADER_SIZE].hex()] = (path.name, codec.schema["name"])
    return schemas
