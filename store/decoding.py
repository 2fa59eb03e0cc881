"""Turning records of the feature and embeddings topics into store writes, or into a reason to skip them.

The reasons are the dead-letter codes of ``jobs.dead_letters``, so a record the store skips
is counted under the same name the feature job would give it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from jobs.dead_letters import INVALID_EMBEDDING, INVALID_FIELD, MISSING_VALUE
from jobs.validation import check_embedding_vector
from operators.interest import normalise
from schemas import USER_INTEREST, VIDEO_EMBEDDING, AvroCodec, DecodeError
from schemas.user_interest_reader import UserInterestReader, UserInterestRecord
from store.layout import USERS, VIDEOS, encode_user_value, encode_video_value, video_key


class BadRecord(ValueError):
    """Raised for a topic record that the store skips. ``reason`` is a dead-letter reason code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class StoreWrite:
    """One change to a column family: put ``value`` at ``key``, or delete the key when ``value`` is None."""

    column_family: str
    key: bytes
    value: bytes | None


class RecordDecoder:
    """Decoder of feature and embedding records into store writes."""

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self._fast_reader = UserInterestReader()
        self._user_interest_codec = AvroCodec.for_schema(USER_INTEREST)
        self._embedding_codec = AvroCodec.for_schema(VIDEO_EMBEDDING)

    def feature_write(self, key: bytes | None, value: bytes | None) -> StoreWrite:
        """Return the write of a feature record: the user's new value, or a delete for a tombstone.

        Raises:
            BadRecord: if the key is missing or not UTF-8, the value does not decode, its user_id
                differs from the key, its vector has the wrong dimension or a non-finite component,
                or its total_weight is NaN or infinite.
        """
        user_id = _utf8_key(key, "user id")
        if value is None:
            return StoreWrite(USERS, user_id.encode("utf-8"), None)
        record = self._decode_user_interest(value)
        if record.user_id != user_id:
            raise BadRecord(INVALID_FIELD,
                            f"record key {user_id!r} differs from the value's user_id {record.user_id!r}")
        vector = record.vector
        if vector.shape != (self.dimension,):
            raise BadRecord(INVALID_FIELD, f"vector has {vector.size} dimensions, expected {self.dimension} "
                                           "(embedding.dimension)")
        if not np.isfinite(vector).all():
            raise BadRecord(INVALID_FIELD, "vector contains NaN or infinite values")
        # total_weight is the record's only float field besides the vector.
        if not math.isfinite(record.total_weight):
            raise BadRecord(INVALID_FIELD, f"total_weight is {record.total_weight}, expected a finite number")
        encoded = encode_user_value(vector, record.event_count, record.total_weight, record.last_event_time_ms,
                                    record.emit_time_ms, record.embedding_model_version)
        return StoreWrite(USERS, user_id.encode("utf-8"), encoded)

    def embedding_write(self, key: bytes | None, value: bytes | None) -> StoreWrite:
        """Return the write of an embedding record: the video's unit vector under its model version.

        The vector is L2-normalised as the feature job does before it sums embeddings, so that
        scores against stored user vectors use the same video vectors as the job.

        Raises:
            BadRecord: for a tombstone, a value that does not decode, an empty video id or model
                version, a model version that contains a 0x00 byte, or an unusable vector.
        """
        if value is None:
            raise BadRecord(MISSING_VALUE, "record has no value (a tombstone). The store keeps each video's "
                                           "vectors until newer records of the same model version replace them")
        try:
            record = self._embedding_codec.decode(value)
        except DecodeError as error:
            raise BadRecord(error.reason, error.detail) from error
        video_id, model_version = record["video_id"], record["model_version"]
        if not video_id:
            raise BadRecord(INVALID_FIELD, "video_id is empty")
        if not model_version or "\x00" in model_version:
            raise BadRecord(INVALID_FIELD, f"model_version {model_version!r} is empty or contains a 0x00 byte")
        vector = np.asarray(record["vector"], dtype=np.float32)
        problem = check_embedding_vector(vector, self.dimension)
        if problem is not None:
            raise BadRecord(INVALID_EMBEDDING, problem)
        unit = normalise(vector)
        if unit is None:  # check_embedding_vector already rejects these vectors.
            raise BadRecord(INVALID_EMBEDDING, "vector has no direction")
        encoded = encode_video_value(unit, record["produced_time_ms"], record["valid_from_ms"])
        return StoreWrite(VIDEOS, video_key(model_version, video_id), encoded)

    def _decode_user_interest(self, value: bytes) -> UserInterestRecord:
        try:
            return self._fast_reader.read(value)
        except DecodeError:
            pass
        # The fast reader accepts only the layout it expects. The codec decodes the rest, or
        # raises with the reason code when the value is unusable.
        try:
            record = self._user_interest_codec.decode(value)
        except DecodeError as error:
            raise BadRecord(error.reason, error.detail) from error
        return UserInterestRecord(
            user_id=record["user_id"],
            vector=np.asarray(record["vector"], dtype=np.float32),
            total_weight=record["total_weight"],
            event_count=record["event_count"],
            last_event_time_ms=record["last_event_time_ms"],
            emit_time_ms=record["emit_time_ms"],
            embedding_model_version=record["embedding_model_version"],
            superseded_event_count=record["superseded_event_count"],
            deduplicated_event_count=record["deduplicated_event_count"],
        )


def _utf8_key(key: bytes | None, field_name: str) -> str:
    if not key:
        raise BadRecord(INVALID_FIELD, f"record has no key, expected the {field_name} in UTF-8")
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRecord(INVALID_FIELD, f"record key {key[:64]!r} is not UTF-8, expected the {field_name}") from error
