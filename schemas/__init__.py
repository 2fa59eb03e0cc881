"""Avro schemas of the pipeline's Kafka topics, and their wire format (see ``schemas.codec``)."""

from schemas.codec import AvroCodec, DecodeError, load_schema, rabin_fingerprint

WATCH_EVENT = "watch_event"
VIDEO_EMBEDDING = "video_embedding"
USER_INTEREST = "user_interest"
DEAD_LETTER = "dead_letter"

__all__ = [
    "AvroCodec",
    "DecodeError",
    "load_schema",
    "rabin_fingerprint",
    "WATCH_EVENT",
    "VIDEO_EMBEDDING",
    "USER_INTEREST",
    "DEAD_LETTER",
]
