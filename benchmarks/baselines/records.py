"""Decoding of single records and the dead letters of rejected ones, shared by both baselines.

The checks come from ``jobs.validation``. The error handling around them mirrors the Flink
job's ``DecodeEvent`` function (``jobs/udfs.py``), which this virtualenv cannot import because
that module imports pyflink, and its ``DecodeEmbedding`` function (``jvm/``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from jobs import dead_letters
from jobs.dead_letters import DeadLetterEncoder
from jobs.validation import InvalidEvent, WatchEvent, validate_event
from schemas import DecodeError
from schemas.watch_event_reader import WatchEventReader

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a record cannot be used: a dead-letter reason code and a detail message."""

    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """A rejected input record with everything its dead letter carries."""

    rejection: Rejection
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    def encode(self, encoder: DeadLetterEncoder) -> bytes:
        """Serialise the record's DeadLetter with ``encoder``."""
        return encoder.encode(self.rejection.reason, self.rejection.detail, (self.topic, self.partition, self.offset),
                              self.key, self.value)


def decode_watch_event(reader: WatchEventReader, value: bytes | None,
                       max_watch_time_ms: float) -> WatchEvent | Rejection:
    """Decode and validate one WatchEvent value, or return why it is rejected."""
    try:
        return validate_event(reader.decode(value), max_watch_time_ms)
    except (DecodeError, InvalidEvent) as error:
        return Rejection(error.reason, error.detail)
    except Exception as error:  # noqa: BLE001 - one bad record must not stop the job
        # The codec maps every known failure to DecodeError, so this is a bug or an unforeseen input.
        logger.warning("unexpected error decoding a watch event, dead-lettered: %r", error)
        return Rejection(dead_letters.INVALID_AVRO, f"unexpected decoder error: {error!r}")


def missing_embedding(video_id: str, embeddings_topic: str) -> Rejection:
    """Return the rejection of an event whose video has no valid embedding."""
    return Rejection(dead_letters.MISSING_EMBEDDING,
                     f"video {video_id}: no valid embedding of the video in {embeddings_topic} "
                     "when the baseline started")
