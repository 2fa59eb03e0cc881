"""Avro schemas of the pipeline's Kafka topics, and their wire format (see ``schemas.codec``)."""

from schemas.codec import AvroCodec, DecodeError, load_schema, rabin_fingerprint

WATCH_EVENT = "watch_event"
"""WatchEvent version 1, the version that the publisher and the tests write."""
WATCH_EVENT_V2 = "watch_event_v2"
"""WatchEvent version 2: version 1 plus the optional ``client_platform``, with the same full name."""
VIDEO_EMBEDDING = "video_embedding"
USER_INTEREST = "user_interest"
DEAD_LETTER = "dead_letter"
USER_DELETION = "user_deletion"

__all__ = [
    "AvroCodec",
    "DecodeError",
    "load_schema",
    "rabin_fingerprint",
    "WATCH_EVENT",
    "WATCH_EVENT_V2",
    "VIDEO_EMBEDDING",
    "USER_INTEREST",
    "DEAD_LETTER",
    "USER_DELETION",
]
