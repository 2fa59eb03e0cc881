"""Shared fixtures: a real single-node Kafka broker for the integration tests, and settings
whose topics are unique to each test."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

from dreamumm.config import Settings, load_settings
from infra import BrokerSettings, LocalBroker, ensure_jars, find_free_ports
from schemas import VIDEO_EMBEDDING, WATCH_EVENT, AvroCodec

SettingsFactory = Callable[..., Settings]


@pytest.fixture(scope="session")
def runtime_jars():
    """The Maven-fetched jars (fetched once, then reused from .cache/)."""
    jars, _reused = ensure_jars()
    return jars


@pytest.fixture(scope="session")
def kafka_broker(runtime_jars, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """A broker of this test session on free loopback ports, stopped at the end."""
    port, controller_port = find_free_ports(2)
    root_dir = tmp_path_factory.mktemp("kafka")
    broker = LocalBroker(BrokerSettings(port=port, controller_port=controller_port, root_dir=root_dir), runtime_jars)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def make_settings(kafka_broker: LocalBroker, tmp_path: Path) -> SettingsFactory:
    """Build settings that point at the session broker, with topics named for this test only.

    Keyword arguments override sections, for example ``make_settings(job={"parallelism": 2})``.
    """

    def factory(**sections: dict[str, object]) -> Settings:
        base = load_settings(environ={})
        suffix = uuid.uuid4().hex[:10]
        kafka = {
            "bootstrap_servers": kafka_broker.bootstrap_servers,
            "events_topic": f"events-{suffix}",
            "embeddings_topic": f"embeddings-{suffix}",
            "features_topic": f"features-{suffix}",
            "dead_letter_topic": f"dead-letters-{suffix}",
            "consumer_group": f"job-{suffix}",
        }
        job = {"bounded": True, "work_dir": tmp_path / "flink"}
        data = base.model_dump()
        data["kafka"].update(kafka)
        data["job"].update(job)
        for section, values in sections.items():
            data[section].update(values)
        return Settings.model_validate(data)

    return factory


@dataclass(frozen=True)
class BadRecords:
    """Malformed inputs that every implementation of the job must dead-letter.

    ``embedding`` is a VideoEmbedding of 2 dimensions, wrong for any configured dimension.
    ``events`` are (key, value, expected dead-letter reason) triples for the events topic.
    """

    embedding: bytes
    events: list[tuple[bytes, bytes | None, str]]


@pytest.fixture(scope="session")
def bad_records() -> BadRecords:
    embedding = AvroCodec.for_schema(VIDEO_EMBEDDING).encode(
        {"video_id": "bad", "vector": [1.0, 0.0], "model_version": "x", "produced_time_ms": 0})
    event_codec = AvroCodec.for_schema(WATCH_EVENT)
    good = {"user_id": "1", "video_id": "2", "watch_time_ms": 1.0, "duration_ms": 5, "event_time_ms": 1}
    events = [
        (b"1", b"garbage bytes", "invalid_avro"),
        (b"1", event_codec.encode(good)[:-4], "invalid_avro"),
        (b"1", embedding, "unknown_schema"),
        (b"1", None, "missing_value"),
        (b"1", event_codec.encode({**good, "watch_time_ms": math.nan}), "invalid_field"),
        (b"", event_codec.encode({**good, "user_id": ""}), "invalid_field"),
    ]
    return BadRecords(embedding, events)
