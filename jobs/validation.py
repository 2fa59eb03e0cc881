"""Validation of decoded watch events, apart from Flink so that it can be unit-tested."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from jobs.dead_letters import INVALID_FIELD

MAX_ID_LENGTH = 256


class InvalidEvent(ValueError):
    """Raised for a decoded event whose fields are unusable; ``reason`` is a dead-letter code."""

    def __init__(self, detail: str, reason: str = INVALID_FIELD) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """A watch event whose fields passed validation."""

    user_id: str
    video_id: str
    watch_time_ms: float
    duration_ms: int | None
    event_time_ms: int
    event_id: str | None = None


def validate_event(record: dict[str, Any], max_watch_time_ms: float) -> WatchEvent:
    """Check a decoded WatchEvent record and return it typed, or raise ``InvalidEvent``.

    Ids (user, video, and the event id when present) must be non-empty and at most 256
    characters long; any Unicode is accepted, since Avro strings are valid UTF-8 by the time they
    decode. The watch time must be a finite
    number in [0, ``max_watch_time_ms``], and the event time must not be negative. A negative
    duration counts as missing, so the threshold rule applies its no-duration threshold.
    """
    user_id = record["user_id"]
    video_id = record["video_id"]
    _check_id("user_id", user_id)
    _check_id("video_id", video_id)

    watch_time_ms = record["watch_time_ms"]
    if not math.isfinite(watch_time_ms) or watch_time_ms < 0:
        raise InvalidEvent(f"watch_time_ms must be a finite number >= 0, got {watch_time_ms!r}")
    if watch_time_ms > max_watch_time_ms:
        raise InvalidEvent(
            f"watch_time_ms {watch_time_ms!r} exceeds the plausible maximum of {max_watch_time_ms!r} "
            "(preference.max_watch_time_ms)"
        )

    duration_ms = record["duration_ms"]
    if duration_ms is not None and duration_ms < 0:
        duration_ms = None

    event_time_ms = record["event_time_ms"]
    if event_time_ms < 0:
        raise InvalidEvent(f"event_time_ms must not be negative, got {event_time_ms!r}")
    event_id = record.get("event_id")
    if event_id is not None:
        _check_id("event_id", event_id)
    return WatchEvent(user_id, video_id, float(watch_time_ms), duration_ms, event_time_ms, event_id)


def validate_deletion(record: dict[str, Any]) -> tuple[str, int]:
    """Check a decoded UserDeletion record; return (user id, requested time in ms) or raise ``InvalidEvent``."""
    user_id = record["user_id"]
    _check_id("user_id", user_id)
    requested_time_ms = record["requested_time_ms"]
    if requested_time_ms < 0:
        raise InvalidEvent(f"requested_time_ms must not be negative, got {requested_time_ms!r}")
    return user_id, requested_time_ms


def _check_id(field: str, value: str) -> None:
    if not value:
        raise InvalidEvent(f"{field} is empty")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidEvent(f"{field} has {len(value)} characters, more than the maximum of {MAX_ID_LENGTH}")


def check_embedding_vector(vector: np.ndarray, dimension: int) -> str | None:
    """Return why an embedding vector is unusable, or None when it is usable.

    The job applies the same rule, with the same messages, in ``DecodeEmbedding`` (``jvm/``);
    the benchmark's baselines use this one.
    """
    if vector.shape != (dimension,):
        return f"vector has {vector.size} dimensions, expected {dimension} (embedding.dimension)"
    if not np.all(np.isfinite(vector)):
        return "vector contains NaN or infinite values"
    if not np.any(vector):
        return "vector is all zeros"
    return None
