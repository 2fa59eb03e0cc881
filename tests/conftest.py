"""Shared fixtures: a real single-node Kafka broker for the integration tests, settings whose
topics are unique to each test, the shipped sample as job input, and checks of a job run."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import httpx
import pytest
import yaml

from dreamumm import kafka_io, steps
from dreamumm.config import Settings, load_settings
from dreamumm.records import video_embedding_records, watch_event_records
from dreamumm.summary import RunSummary, summarise_run
from embeddings import (
    SAMPLE_EVENTS_PATH,
    VIDEO_FEATURES_PATH,
    ContentEmbeddingConfig,
    build_content_embeddings,
    load_events,
    load_video_table,
    model_version,
)
from infra import BrokerSettings, LocalBroker, ensure_jars, find_free_ports
from jobs.counters import JobCounters
from jobs.weighting import build_threshold_rule
from operators import cosine, reference_interests
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

    The feature store lives in the test's tmp_path. Keyword arguments override sections, for
    example ``make_settings(job={"parallelism": 2})``.
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
            "deletions_topic": f"deletions-{suffix}",
            "consumer_group": f"job-{suffix}",
        }
        job = {"bounded": True, "work_dir": tmp_path / "flink"}
        data = base.model_dump()
        data["kafka"].update(kafka)
        data["job"].update(job)
        data["store"].update({"path": tmp_path / "store", "secondary_dir": tmp_path / "store-readers"})
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


class SampleInputs:
    """The shipped KuaiRand sample and its content embeddings, published to a test's topics."""

    def __init__(self) -> None:
        self.events = load_events(SAMPLE_EVENTS_PATH)
        self._video_table = load_video_table(VIDEO_FEATURES_PATH)

    def embeddings(self, settings: Settings) -> dict[int, np.ndarray]:
        """Return the content embedding of every video at the settings' dimension."""
        config = ContentEmbeddingConfig(dimension=settings.embedding.dimension, salt=settings.embedding.content_salt)
        return build_content_embeddings(self._video_table, config)

    def publish(self, settings: Settings, events: pd.DataFrame | None = None) -> dict[int, np.ndarray]:
        """Create the topics, publish every embedding and the events (the sample by default) in time order."""
        steps.create_topics(settings)
        vectors = self.embeddings(settings)
        config = ContentEmbeddingConfig(dimension=settings.embedding.dimension, salt=settings.embedding.content_salt)
        bootstrap = settings.kafka.bootstrap_servers
        kafka_io.produce(bootstrap, settings.kafka.embeddings_topic,
                         video_embedding_records(vectors, model_version(config)))
        kafka_io.produce(bootstrap, settings.kafka.events_topic,
                         watch_event_records(self.events if events is None else events))
        return vectors


@pytest.fixture(scope="session")
def sample_inputs() -> SampleInputs:
    return SampleInputs()


class RunChecks:
    """Checks of a job run, shared by the integration tests through the ``checks`` fixture."""

    @staticmethod
    def matches_reference(settings: Settings, summary: RunSummary, events: pd.DataFrame,
                          vectors: dict[int, np.ndarray], weight_tolerance: float = 1e-6) -> None:
        """Assert the emitted users, vectors, weights and counts equal the float64 reference of ``events``.

        ``weight_tolerance`` is the relative tolerance of the total weight; a decayed sum, rescaled
        in float32 at every newer event, needs a looser one.
        """
        reference = reference_interests(events, vectors, settings.preference.alpha_per_s,
                                        build_threshold_rule(settings.preference),
                                        settings.preference.recency_half_life_ms)
        expected_users = {str(user) for user, ref in reference.items() if ref.vector is not None}
        assert set(summary.users) == expected_users
        for user_id, emitted in summary.users.items():
            ref = reference[int(user_id)]
            assert cosine(emitted.vector, ref.vector) >= 1 - 1e-6, f"user {user_id}"
            assert emitted.total_weight == pytest.approx(ref.total_weight, rel=weight_tolerance), f"user {user_id}"
            assert emitted.event_count == ref.event_count, f"user {user_id}"
            assert emitted.last_event_time_ms == ref.last_event_time_ms, f"user {user_id}"

    @staticmethod
    def accounted(counters: JobCounters, summary: RunSummary) -> None:
        """Assert the job's counters balance and agree with what the topics hold."""
        assert counters.balanced, counters.describe()
        assert counters.get("events_read") == summary.events_read
        assert counters.get("events_dead_lettered") == summary.events_dead_lettered
        assert counters.get("events_deduplicated") == summary.events_deduplicated

    @staticmethod
    def wait_until_balanced(settings: Settings, expected_events: int, timeout_s: float = 120.0,
                            check: Callable[[RunSummary], bool] | None = None, pending: int = 0) -> RunSummary:
        """Poll the topics until ``expected_events`` events were read and all but ``pending`` of them are
        accounted for (and ``check`` holds); return the summary."""
        deadline = time.monotonic() + timeout_s
        summary = summarise_run(settings)
        while time.monotonic() < deadline:
            accounted = summary.events_contributed + summary.events_dead_lettered + summary.events_deduplicated
            if (summary.events_read == expected_events and accounted == expected_events - pending
                    and (check is None or check(summary))):
                return summary
            time.sleep(1.0)
            summary = summarise_run(settings)
        raise AssertionError(f"not all {expected_events} events were accounted for within {timeout_s} s: read "
                             f"{summary.events_read}, contributed {summary.events_contributed}, dead-lettered "
                             f"{summary.events_dead_lettered}, deduplicated {summary.events_deduplicated}")


@pytest.fixture(scope="session")
def checks() -> type[RunChecks]:
    return RunChecks


class ServiceProcess:
    """``dreamumm serve`` in a child process on a free loopback port, configured by a YAML file of
    the test's settings, so the test talks to it through a real HTTP client."""

    def __init__(self, settings: Settings, work_dir: Path) -> None:
        (port,) = find_free_ports(1)
        data = settings.model_dump(mode="json")
        data["serving"].update({"host": "127.0.0.1", "port": port})
        self.settings = Settings.model_validate(data)
        work_dir.mkdir(parents=True, exist_ok=True)
        config_path = work_dir / "service.yaml"
        config_path.write_text(yaml.safe_dump(data), encoding="utf-8")
        self.log_path = work_dir / "service.log"
        self.base_url = f"http://127.0.0.1:{port}"
        environ = {name: value for name, value in os.environ.items() if not name.startswith("DREAMUMM_")}
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "dreamumm.cli", "--config", str(config_path), "serve"],
                stdout=log, stderr=subprocess.STDOUT, env=environ, start_new_session=True)
        self.client = httpx.Client(base_url=self.base_url, timeout=10.0)

    def log(self) -> str:
        """Return what the service wrote to stdout and stderr so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_until(self, path: str, status: int = 200, timeout_s: float = 60.0) -> httpx.Response:
        """Poll ``path`` until it returns ``status``; fail with the service's log otherwise."""
        deadline = time.monotonic() + timeout_s
        last: object = None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise AssertionError(f"the service exited with code {self._process.returncode}:\n{self.log()}")
            try:
                response = self.client.get(path)
                if response.status_code == status:
                    return response
                last = f"{response.status_code} {response.text}"
            except httpx.TransportError as error:
                last = error
            time.sleep(0.2)
        raise AssertionError(f"GET {path} did not return {status} within {timeout_s} s (last: {last}):\n{self.log()}")

    def wait_for_exit(self, timeout_s: float) -> int:
        """Wait for the service to exit by itself and return its exit code."""
        try:
            return self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the service still runs after {timeout_s} s:\n{self.log()}") from None

    def stop(self) -> int:
        """Stop the service with SIGTERM (SIGKILL after 15 s) and return its exit code."""
        self.client.close()
        try:
            os.killpg(self._process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return self._process.wait()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
        return self._process.returncode


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Callable[[Settings], ServiceProcess]]:
    """Start ``dreamumm serve`` processes for a test; each is stopped at the end of the test."""
    started: list[ServiceProcess] = []

    def start(settings: Settings) -> ServiceProcess:
        service = ServiceProcess(settings, tmp_path / f"service-{len(started)}")
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()
