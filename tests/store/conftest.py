"""Fixtures of the store's unit tests: a real store in tmp_path, and builders of topic records."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pytest

from dreamumm.config import StoreSettings
from dreamumm.kafka_io import KafkaRecord
from schemas import USER_INTEREST, VIDEO_EMBEDDING, AvroCodec
from store.writer import StoreWriter

FEATURES = "features"
EMBEDDINGS = "embeddings"
DIMENSION = 4
MODEL_VERSION = "content-v1"


class RecordFactory:
    """Builder of feature and embedding records with increasing offsets per partition."""

    features_topic = FEATURES
    embeddings_topic = EMBEDDINGS
    dimension = DIMENSION
    model_version = MODEL_VERSION

    def __init__(self) -> None:
        self.next_offsets: dict[tuple[str, int], int] = {}
        self._user_interest = AvroCodec.for_schema(USER_INTEREST)
        self._embedding = AvroCodec.for_schema(VIDEO_EMBEDDING)

    def record(self, topic: str, key: bytes | None, value: bytes | None, partition: int = 0) -> KafkaRecord:
        offset = self.next_offsets.get((topic, partition), 0)
        self.next_offsets[(topic, partition)] = offset + 1
        return KafkaRecord(topic, partition, offset, key, value, 0)

    def user_value(self, user_id: str, event_count: int = 1, vector: Sequence[float] | None = None,
                   model_version: str = MODEL_VERSION, total_weight: float | None = None) -> bytes:
        """Encode a UserInterest whose fields derive from ``event_count`` unless given."""
        if vector is None:
            vector = np.zeros(DIMENSION, dtype=np.float32)
            vector[event_count % DIMENSION] = 1.0
        return self._user_interest.encode({
            "user_id": user_id,
            "vector": [float(component) for component in vector],
            "total_weight": 0.5 * event_count if total_weight is None else total_weight,
            "event_count": event_count,
            "last_event_time_ms": 1_000 + event_count,
            "emit_time_ms": 2_000 + event_count,
            "embedding_model_version": model_version,
            "superseded_event_count": 0,
            "deduplicated_event_count": 0,
        })

    def user(self, user_id: str, event_count: int = 1, partition: int = 0, **fields: object) -> KafkaRecord:
        return self.record(FEATURES, user_id.encode("utf-8"), self.user_value(user_id, event_count, **fields),
                           partition)

    def tombstone(self, user_id: str, partition: int = 0) -> KafkaRecord:
        return self.record(FEATURES, user_id.encode("utf-8"), None, partition)

    def embedding_value(self, video_id: str, vector: Sequence[float], model_version: str = MODEL_VERSION,
                        valid_from_ms: int | None = None) -> bytes:
        return self._embedding.encode({
            "video_id": video_id,
            "vector": [float(component) for component in vector],
            "model_version": model_version,
            "produced_time_ms": 5,
            "valid_from_ms": valid_from_ms,
        })

    def embedding(self, video_id: str, vector: Sequence[float], model_version: str = MODEL_VERSION,
                  partition: int = 0) -> KafkaRecord:
        return self.record(EMBEDDINGS, video_id.encode("utf-8"),
                           self.embedding_value(video_id, vector, model_version), partition)


@pytest.fixture
def records() -> RecordFactory:
    return RecordFactory()


@pytest.fixture
def store_settings(tmp_path: Path) -> StoreSettings:
    return StoreSettings(path=tmp_path / "store", secondary_dir=tmp_path / "readers")


@pytest.fixture
def writer(store_settings: StoreSettings) -> Iterator[StoreWriter]:
    """A store writer for the topics ``features`` and ``embeddings`` with 4-dimensional vectors."""
    store_writer = StoreWriter(store_settings.path, FEATURES, EMBEDDINGS, DIMENSION)
    try:
        yield store_writer
    finally:
        store_writer.close()
