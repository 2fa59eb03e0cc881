"""Dead-letter reason codes and the DeadLetter record builder.

Every input record either contributes to a user vector, is dropped as a duplicate, or is
written to the dead-letter topic with one of these codes, so that events read = contributed +
dead-lettered + deduplicated.
"""

from __future__ import annotations

import time
from typing import Any

from schemas import DEAD_LETTER, AvroCodec

INVALID_AVRO = "invalid_avro"
"""The value is not a single-object Avro record, or its body does not parse."""
UNKNOWN_SCHEMA = "unknown_schema"
"""The value was written with a schema whose fingerprint the job does not know."""
MISSING_VALUE = "missing_value"
"""The record has no value (a tombstone on a topic that should have none)."""
INVALID_FIELD = "invalid_field"
"""A field decoded but its value is unusable: an empty id, a negative or NaN watch time."""
MISSING_EMBEDDING = "missing_embedding"
"""No embedding of the event's video arrived within the configured wait."""
INVALID_EMBEDDING = "invalid_embedding"
"""An embedding record has the wrong dimension or a non-finite or zero vector."""
TOO_LATE = "too_late"
"""The event's time was more than job.allowed_lateness_ms behind the watermark when it was read."""

REASONS = (INVALID_AVRO, UNKNOWN_SCHEMA, MISSING_VALUE, INVALID_FIELD, MISSING_EMBEDDING, INVALID_EMBEDDING,
           TOO_LATE)


MAX_ORIGINAL_KEY_BYTES = 64 * 1024
"""Maximum length in bytes of the original key kept in a dead letter; longer keys are cut."""
MAX_ORIGINAL_VALUE_BYTES = 512 * 1024
"""Maximum length in bytes of the original value kept in a dead letter; longer values are cut.

Together with the key limit this keeps a dead letter under Kafka's default 1 MiB record
limit, even for an input record at that limit, because a larger dead letter would fail the sink.
"""


class DeadLetterEncoder:
    """Encoder of DeadLetter records for the dead-letter topic."""

    def __init__(self) -> None:
        self._codec = AvroCodec.for_schema(DEAD_LETTER)

    def encode(
        self,
        reason: str,
        detail: str,
        source: tuple[str, int, int],
        key: bytes | None,
        value: bytes | None,
    ) -> bytes:
        """Build and serialise one DeadLetter record; ``source`` is (topic, partition, offset)."""
        if reason not in REASONS:
            raise ValueError(f"unknown dead-letter reason {reason!r}; expected one of {REASONS}")
        topic, partition, offset = source
        record: dict[str, Any] = {
            "reason": reason,
            "detail": detail,
            "source_topic": topic,
            "source_partition": partition,
            "source_offset": offset,
            "original_key": None if key is None else key[:MAX_ORIGINAL_KEY_BYTES],
            "original_value": None if value is None else value[:MAX_ORIGINAL_VALUE_BYTES],
            "original_key_size": 0 if key is None else len(key),
            "original_value_size": 0 if value is None else len(value),
            "dead_letter_time_ms": int(time.time() * 1000),
        }
        return self._codec.encode(record)
