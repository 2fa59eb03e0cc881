"""The materialiser and the store reader against the real broker: resume from stored offsets, restart after
SIGKILL, read_committed with aborted transactions, partitions added while running, SIGTERM, recreated
topics, a store folder deleted under a running materialiser, and a broker outage."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import NewPartitions

from dreamumm import kafka_io, steps
from dreamumm.config import REPO_ROOT, Settings
from infra import BrokerSettings, LocalBroker, find_free_ports
from infra.admin import make_admin_client
from schemas import USER_INTEREST, VIDEO_EMBEDDING, AvroCodec, DecodeError
from schemas.user_interest_encoder import UserInterestEncoder
from store import FeatureStoreReader, Materialiser, StoreLockedError, StoreNotFoundError, TopicRecreatedError
from store.command import materialise
from store.layout import META, topic_id_key
from store.writer import StoreWriter

pytestmark = pytest.mark.integration

MODEL_VERSION = "content-v1"

# Runs the materialise command in a child process that reads its settings from DREAMUMM__ overrides.
MATERIALISE_SCRIPT = """
import logging, sys
from dreamumm.config import load_settings
from store.command import materialise
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
sys.exit(materialise(load_settings(), until_caught_up=False))
"""


def store_test_settings(make_settings, tmp_path: Path, **store: object) -> Settings:
    settings = make_settings(store={"path": tmp_path / "store", "secondary_dir": tmp_path / "readers", **store})
    steps.create_topics(settings)
    return settings


def user_records(users: Sequence[tuple[str, int]], dimension: int, seed: int = 0) -> list[tuple[bytes, bytes]]:
    """Return (key, value) UserInterest records of (user id, event count) pairs, with random unit vectors."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(len(users), dimension))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    counts = [count for _, count in users]
    values = UserInterestEncoder().encode_many(
        user_ids=[user_id for user_id, _ in users],
        unit_vectors=vectors.astype(np.float32),
        total_weights=[0.25 * count for count in counts],
        event_counts=counts,
        last_event_times_ms=[1_000_000 + count for count in counts],
        emit_time_ms=2_000_000,
        model_versions=[MODEL_VERSION] * len(users),
        superseded_event_counts=[0] * len(users),
    )
    return [(user_id.encode("utf-8"), value) for (user_id, _), value in zip(users, values)]


def embedding_records(video_ids: Iterable[str], model_version: str, dimension: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {video_id: rng.normal(size=dimension).astype(np.float32) for video_id in video_ids}


def produce_embeddings(settings: Settings, vectors: dict[str, np.ndarray], model_version: str) -> None:
    codec = AvroCodec.for_schema(VIDEO_EMBEDDING)
    records = [(video_id.encode(), codec.encode({"video_id": video_id, "vector": vector.tolist(),
                                                  "model_version": model_version, "produced_time_ms": 1}))
               for video_id, vector in vectors.items()]
    kafka_io.produce(settings.kafka.bootstrap_servers, settings.kafka.embeddings_topic, records)


def produce_features(settings: Settings, records: Sequence[tuple[bytes, bytes | None]]) -> None:
    kafka_io.produce(settings.kafka.bootstrap_servers, settings.kafka.features_topic, records)


def materialise_until_caught_up(settings: Settings):
    with Materialiser(settings) as materialiser:
        return materialiser.run(until_caught_up=True)


def feature_end_offsets(settings: Settings) -> dict[tuple[str, int], int]:
    topic = settings.kafka.features_topic
    return {(topic, partition): high
            for partition, (_low, high) in kafka_io.end_offsets(settings.kafka.bootstrap_servers, topic).items()}


def newest_per_user(settings: Settings) -> dict[str, dict]:
    """Read the feature topic and return the newest decodable record of each user that has no later tombstone."""
    codec = AvroCodec.for_schema(USER_INTEREST)
    users: dict[str, dict] = {}
    for record in kafka_io.read_topic(settings.kafka.bootstrap_servers, settings.kafka.features_topic):
        if record.value is None:
            users.pop(record.key.decode(), None)
            continue
        try:
            users[record.key.decode()] = codec.decode(record.value)
        except DecodeError:
            continue
    return users


def stored_feature_offsets(reader: FeatureStoreReader, settings: Settings) -> dict[tuple[str, int], int]:
    return {key: offset for key, offset in reader.status().offsets.items() if key[0] == settings.kafka.features_topic}


def assert_store_equals_topic(reader: FeatureStoreReader, settings: Settings) -> None:
    """Assert the store contains exactly the newest record of every user of the feature topic."""
    expected = newest_per_user(settings)
    assert set(reader.user_ids()) == set(expected)
    for user_id, stored in zip(expected, reader.multi_get(list(expected))):
        newest = expected[user_id]
        assert stored is not None, user_id
        assert stored.vector.tobytes() == np.asarray(newest["vector"], dtype=np.float32).tobytes(), user_id
        assert stored.event_count == newest["event_count"], user_id
        assert stored.total_weight == newest["total_weight"], user_id
        assert stored.last_event_time_ms == newest["last_event_time_ms"], user_id
        assert stored.emit_time_ms == newest["emit_time_ms"], user_id
        assert stored.embedding_model_version == newest["embedding_model_version"], user_id


def child_environment(settings: Settings) -> dict[str, str]:
    """Return this process's environment plus ``settings`` as DREAMUMM__ overrides."""
    environment = dict(os.environ)
    for section, values in settings.model_dump(mode="json", exclude_none=True).items():
        for name, value in values.items():
            if not isinstance(value, dict) or value:
                environment[f"DREAMUMM__{section.upper()}__{name.upper()}"] = json.dumps(value)
    environment["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), environment.get("PYTHONPATH", "")])
    return environment


def start_materialiser_process(settings: Settings, log_path: Path) -> subprocess.Popen:
    with log_path.open("w") as log:
        return subprocess.Popen([sys.executable, "-c", MATERIALISE_SCRIPT], env=child_environment(settings),
                                cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)


def open_reader_when_ready(settings: Settings, process: subprocess.Popen, log_path: Path,
                           timeout_s: float = 30.0) -> FeatureStoreReader:
    """Open a reader once the child materialiser has written its first heartbeat."""
    deadline = time.monotonic() + timeout_s
    reader = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the materialiser exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            reader = reader or FeatureStoreReader.open(settings.store)
        except StoreNotFoundError:
            time.sleep(0.05)
            continue
        reader.catch_up()
        if reader.status().heartbeat_ms is not None:
            return reader
        time.sleep(0.05)
    raise AssertionError(f"the materialiser wrote no heartbeat within {timeout_s} s:\n{log_path.read_text()}")


def test_materialise_then_resume_from_stored_offsets(make_settings, tmp_path) -> None:
    settings = store_test_settings(make_settings, tmp_path)
    dimension = settings.embedding.dimension
    first = user_records([(f"user-{index % 30}", index + 1) for index in range(100)], dimension)
    produce_features(settings, first + [(b"user-bad", b"not an Avro record")])
    first_version = embedding_records([f"video-{index}" for index in range(10)], "v1", dimension, seed=1)
    second_version = embedding_records([f"video-{index}" for index in range(5)], "v2", dimension, seed=2)
    produce_embeddings(settings, first_version, "v1")
    produce_embeddings(settings, second_version, "v2")

    stats = materialise_until_caught_up(settings)
    assert stats.caught_up
    assert stats.feature_records == 101
    assert stats.users_written == 100
    assert stats.bad_records == 1
    assert stats.embedding_records == 15
    assert stats.videos_written == 15

    with FeatureStoreReader.open(settings.store) as reader:
        assert_store_equals_topic(reader, settings)
        stored = reader.get("user-5")
        assert stored.event_count == 96  # user-5's records are those of index 5, 35, 65 and 95.
        assert stored.total_weight == 0.25 * 96
        assert stored.last_event_time_ms == 1_000_096
        assert stored.emit_time_ms == 2_000_000
        assert stored.embedding_model_version == MODEL_VERSION
        assert np.linalg.norm(stored.vector) == pytest.approx(1.0, abs=1e-6)

        videos = reader.video_vectors("v1", ["video-3", "video-42", "video-0"])
        assert videos.found.tolist() == [True, False, True]
        unit_video_3 = first_version["video-3"] / np.linalg.norm(first_version["video-3"])
        np.testing.assert_allclose(videos.matrix[0], unit_video_3, rtol=1e-6, atol=1e-7)
        assert not videos.matrix[1].any()
        assert reader.video_vectors("v2", ["video-9"]).found.tolist() == [False]
        np.testing.assert_allclose(reader.video_vectors("v2", ["video-4"]).matrix[0],
                                   second_version["video-4"] / np.linalg.norm(second_version["video-4"]),
                                   rtol=1e-6, atol=1e-7)

        status = reader.status()
        assert stored_feature_offsets(reader, settings) == feature_end_offsets(settings)
        assert status.bad_records == {"features/invalid_avro": 1}
        assert status.heartbeat_ms is not None
        assert status.caught_up_ms is not None

    deleted = [f"user-{index}" for index in range(5)]
    updates = user_records([(f"user-{index}", 500 + index) for index in range(10, 15)], dimension, seed=7)
    produce_features(settings, [(user_id.encode(), None) for user_id in deleted] + updates)

    resumed = materialise_until_caught_up(settings)
    assert resumed.feature_records == 10
    assert resumed.embedding_records == 0
    assert resumed.users_deleted == 5
    assert resumed.users_written == 5
    with FeatureStoreReader.open(settings.store) as reader:
        assert reader.multi_get(deleted) == [None] * 5
        assert [stored.event_count for stored in reader.multi_get([f"user-{i}" for i in range(10, 15)])] \
            == [510, 511, 512, 513, 514]
        assert_store_equals_topic(reader, settings)


def test_restart_after_sigkill_resumes_without_gaps(make_settings, tmp_path) -> None:
    settings = store_test_settings(make_settings, tmp_path, max_batch_records=200, poll_timeout_ms=20)
    dimension = settings.embedding.dimension
    # Record indexes that are multiples of 3 update one of 50 hot users. Each index ending in 9 becomes
    # a tombstone for user-<index - 1>, written after the rest of its chunk (a no-op when no such user
    # exists). Every other record is the only one of its user, so a skipped record leaves a user missing.
    chunks: list[list[tuple[bytes, bytes | None]]] = []
    for chunk_index in range(40):
        users, deletions = [], []
        for index in range(chunk_index * 1_000, (chunk_index + 1) * 1_000):
            if index % 10 == 9:
                deletions.append(index)
            elif index % 3 == 0:
                users.append((f"hot-{index % 50}", index + 1))
            else:
                users.append((f"user-{index}", index + 1))
        records: list[tuple[bytes, bytes | None]] = user_records(users, dimension, seed=chunk_index)
        records += [(f"user-{index - 1}".encode(), None) for index in deletions]
        chunks.append(records)

    log_path = tmp_path / "materialiser.log"
    process = start_materialiser_process(settings, log_path)
    try:
        reader = open_reader_when_ready(settings, process, log_path)
        producing_done = threading.Event()
        produced = 0

        def produce_chunks() -> None:
            nonlocal produced
            producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "linger.ms": 5})
            for chunk in chunks:
                for key, value in chunk:
                    producer.produce(settings.kafka.features_topic, key=key, value=value)
                assert producer.flush(30) == 0
                produced += len(chunk)
                time.sleep(0.02)
            producing_done.set()

        producer_thread = threading.Thread(target=produce_chunks)
        producer_thread.start()
        # Kill while the materialiser has records left to read, so that it is busy consuming and writing.
        deadline = time.monotonic() + 30
        while True:
            applied = sum(reader.status().offsets.values())
            if 5_000 <= applied < produced:
                break
            assert time.monotonic() < deadline, f"the materialiser did not lag behind:\n{log_path.read_text()}"
            time.sleep(0.002)
            reader.catch_up()
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        assert not producing_done.is_set(), "the producer finished before the kill; produce more records"
        producer_thread.join(60)
        reader.catch_up()
        offsets_at_kill = reader.status().offsets
        reader.close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)

    end_offsets = feature_end_offsets(settings)
    assert 0 < sum(offsets_at_kill.values()) < sum(end_offsets.values())
    resumed = materialise_until_caught_up(settings)
    assert resumed.feature_records == sum(end_offsets.values()) - sum(offsets_at_kill.values())
    with FeatureStoreReader.open(settings.store) as reader:
        assert stored_feature_offsets(reader, settings) == end_offsets
        assert_store_equals_topic(reader, settings)


def test_aborted_transactions_never_stored(make_settings, tmp_path) -> None:
    settings = store_test_settings(make_settings, tmp_path)
    dimension = settings.embedding.dimension
    topic = settings.kafka.features_topic
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers,
                         "transactional.id": f"store-test-{uuid.uuid4().hex}"})
    producer.init_transactions(30)

    def transaction(records: list[tuple[bytes, bytes]], commit: bool) -> None:
        producer.begin_transaction()
        for key, value in records:
            producer.produce(topic, key=key, value=value)
        if commit:
            producer.commit_transaction(30)
        else:
            producer.abort_transaction(30)

    transaction(user_records([("a", 1), ("b", 1)], dimension), commit=True)
    transaction(user_records([("a", 99), ("c", 1)], dimension), commit=False)
    transaction(user_records([("d", 1)], dimension), commit=True)
    # The topic ends with an aborted transaction, so the last offsets are records a
    # read-committed consumer never receives, then the abort markers.
    transaction(user_records([("a", 100), ("e", 1)], dimension), commit=False)

    stats = materialise_until_caught_up(settings)
    assert stats.caught_up
    assert stats.feature_records == 3
    with FeatureStoreReader.open(settings.store) as reader:
        assert sorted(reader.user_ids()) == ["a", "b", "d"]
        assert reader.get("a").event_count == 1
        # The stored offsets passed the abort markers, so a restart does not read them again.
        assert stored_feature_offsets(reader, settings) == feature_end_offsets(settings)


def test_partition_added_while_running(make_settings, tmp_path) -> None:
    settings = make_settings(kafka={"partitions": 1},
                             store={"path": tmp_path / "store", "secondary_dir": tmp_path / "readers",
                                    "partition_refresh_interval_ms": 200})
    steps.create_topics(settings)
    topic = settings.kafka.features_topic
    produce_features(settings, user_records([("before", 1)], settings.embedding.dimension))
    stop = threading.Event()
    materialiser = Materialiser(settings)
    results = []
    runner = threading.Thread(target=lambda: results.append(materialiser.run(stop)))
    runner.start()
    try:
        with FeatureStoreReader.open(settings.store) as reader:
            reader.start_background_catch_up(interval_ms=20)
            deadline = time.monotonic() + 20
            while reader.status().caught_up_ms is None:
                assert time.monotonic() < deadline, "the materialiser did not catch up"
                time.sleep(0.02)

            admin = make_admin_client(settings.kafka.bootstrap_servers)
            admin.create_partitions([NewPartitions(topic, 2)])[topic].result(30)
            producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers})
            for key, value in user_records([("after", 1)], settings.embedding.dimension):
                producer.produce(topic, key=key, value=value, partition=1)
            assert producer.flush(30) == 0

            deadline = time.monotonic() + 20
            while reader.get("after") is None:
                assert time.monotonic() < deadline, "the record in the new partition did not reach the store"
                time.sleep(0.02)
            assert reader.get("before") is not None
            assert reader.status().offsets[(topic, 1)] == 1
    finally:
        stop.set()
        runner.join(30)
        materialiser.close()
    assert results and results[0].feature_records == 2


def test_sigterm_stops_materialiser_cleanly(make_settings, tmp_path) -> None:
    settings = store_test_settings(make_settings, tmp_path)
    produce_features(settings, user_records([("a", 1)], settings.embedding.dimension))
    log_path = tmp_path / "materialiser.log"
    process = start_materialiser_process(settings, log_path)
    try:
        reader = open_reader_when_ready(settings, process, log_path)
        deadline = time.monotonic() + 20
        while reader.get("a") is None:
            assert time.monotonic() < deadline, f"the record did not reach the store:\n{log_path.read_text()}"
            time.sleep(0.02)
            reader.catch_up()
        reader.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0, log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    log = log_path.read_text()
    assert "received SIGTERM" in log
    assert "materialised into" in log
    # The lock is free again.
    with Materialiser(settings):
        pass


def test_recreated_topic_stops_materialiser(make_settings, tmp_path, caplog) -> None:
    settings = store_test_settings(make_settings, tmp_path, partition_refresh_interval_ms=200)
    dimension = settings.embedding.dimension
    topic = settings.kafka.features_topic
    produce_features(settings, user_records([(f"old{index}", 1) for index in range(10)], dimension))
    materialise_until_caught_up(settings)

    # The new topic gets more records than the old one had, so the stored offset 10 lies inside its range.
    steps.create_topics(settings, recreate=True)
    produce_features(settings, user_records([(f"new{index}", 1) for index in range(15)], dimension))
    with pytest.raises(TopicRecreatedError) as caught:
        materialise_until_caught_up(settings)
    message = str(caught.value)
    assert f"topic {topic} has topic id" in message
    assert "dreamumm materialise --rebuild" in message

    with caplog.at_level(logging.ERROR, logger="store.command"):
        assert materialise(settings, until_caught_up=True) == 1
    assert any(f"topic {topic} has topic id" in record.getMessage() for record in caplog.records)

    assert materialise(settings, until_caught_up=True, rebuild=True) == 0
    with FeatureStoreReader.open(settings.store) as reader:
        assert sorted(reader.user_ids()) == sorted(f"new{index}" for index in range(15))
        assert stored_feature_offsets(reader, settings) == feature_end_offsets(settings)


def test_topic_recreated_while_running(make_settings, tmp_path) -> None:
    """A materialiser that runs while its topic is recreated stops at its next partition refresh."""
    settings = store_test_settings(make_settings, tmp_path, partition_refresh_interval_ms=200)
    produce_features(settings, user_records([("before", 1)], settings.embedding.dimension))
    stop = threading.Event()
    errors: list[BaseException] = []
    materialiser = Materialiser(settings)

    def run() -> None:
        try:
            materialiser.run(stop)
        except BaseException as error:  # The test inspects what run raised.
            errors.append(error)

    runner = threading.Thread(target=run)
    runner.start()
    try:
        with FeatureStoreReader.open(settings.store) as reader:
            deadline = time.monotonic() + 20
            while reader.get("before") is None:
                assert time.monotonic() < deadline, "the record did not reach the store"
                time.sleep(0.05)
                reader.catch_up()
        steps.create_topics(settings, recreate=True)
        runner.join(20)
        assert not runner.is_alive(), "the materialiser did not stop after its topic was recreated"
    finally:
        stop.set()
        runner.join(30)
        materialiser.close()
    assert len(errors) == 1
    assert isinstance(errors[0], TopicRecreatedError), repr(errors[0])


def test_store_without_topic_ids_records_them(make_settings, tmp_path) -> None:
    """A store written before topic ids were recorded resumes and records the current ids."""
    settings = store_test_settings(make_settings, tmp_path)
    produce_features(settings, user_records([("a", 1)], settings.embedding.dimension))
    materialise_until_caught_up(settings)
    writer = StoreWriter(settings.store.path, settings.kafka.features_topic, settings.kafka.embeddings_topic,
                         settings.embedding.dimension)
    try:
        recorded = dict(writer.topic_ids)
        assert set(recorded) == {settings.kafka.features_topic, settings.kafka.embeddings_topic}
        for topic in recorded:
            writer._handles.families[META].delete(topic_id_key(topic))
    finally:
        writer.close()

    produce_features(settings, user_records([("b", 1)], settings.embedding.dimension))
    stats = materialise_until_caught_up(settings)
    assert stats.feature_records == 1
    writer = StoreWriter(settings.store.path, settings.kafka.features_topic, settings.kafka.embeddings_topic,
                         settings.embedding.dimension)
    try:
        assert writer.topic_ids == recorded
    finally:
        writer.close()


def test_removed_folder_stops_materialiser(make_settings, tmp_path) -> None:
    """Deleting the store folder under a running materialiser neither lets a second one start nor goes unnoticed."""
    # The materialiser checks its folder once per heartbeat interval. 2 s leaves time to try a second
    # materialiser before the first one notices the deletion and exits.
    settings = store_test_settings(make_settings, tmp_path, heartbeat_interval_ms=2_000)
    produce_features(settings, user_records([("a", 1)], settings.embedding.dimension))
    log_path = tmp_path / "materialiser.log"
    process = start_materialiser_process(settings, log_path)
    try:
        reader = open_reader_when_ready(settings, process, log_path)
        reader.close()
        shutil.rmtree(settings.store.path)
        with pytest.raises(StoreLockedError) as caught:
            Materialiser(settings)
        assert f"process {process.pid} holds the writer lock" in str(caught.value)
        assert process.wait(20) == 1, log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    log = log_path.read_text()
    assert f"ERROR store.command: materialise failed: the feature store folder {settings.store.path}" in log
    assert "was removed while this materialiser was writing it" in log
    assert "Traceback" not in log
    stats = materialise_until_caught_up(settings)
    assert stats.users_written == 1


def test_heartbeat_stops_during_broker_outage(make_settings, runtime_jars, tmp_path, caplog) -> None:
    """While the broker is down the materialiser writes no heartbeat, and it writes them again after."""
    port, controller_port = find_free_ports(2)
    broker = LocalBroker(BrokerSettings(port=port, controller_port=controller_port, root_dir=tmp_path / "kafka"),
                         runtime_jars)
    broker.start()
    try:
        settings = make_settings(kafka={"bootstrap_servers": broker.bootstrap_servers},
                                 store={"path": tmp_path / "store", "secondary_dir": tmp_path / "readers",
                                        "heartbeat_interval_ms": 100, "poll_timeout_ms": 50})
        steps.create_topics(settings)
        stop = threading.Event()
        materialiser = Materialiser(settings)
        runner = threading.Thread(target=materialiser.run, args=(stop,))
        with caplog.at_level(logging.INFO, logger="store.materialiser"):
            runner.start()
            try:
                with FeatureStoreReader.open(settings.store) as reader:
                    reader.start_background_catch_up(interval_ms=20)

                    def heartbeat_ms() -> int | None:
                        return reader.status().heartbeat_ms

                    deadline = time.monotonic() + 20
                    while heartbeat_ms() is None:
                        assert time.monotonic() < deadline, "the materialiser wrote no heartbeat"
                        time.sleep(0.05)

                    broker.stop()
                    # A heartbeat batch in flight when the broker stopped may still arrive.
                    time.sleep(1.5)
                    silent_since = heartbeat_ms()
                    time.sleep(1.5)
                    assert heartbeat_ms() == silent_since

                    broker.start()
                    deadline = time.monotonic() + 20
                    while heartbeat_ms() == silent_since:
                        assert time.monotonic() < deadline, "the heartbeat did not resume after the broker restarted"
                        time.sleep(0.05)
            finally:
                stop.set()
                runner.join(30)
                materialiser.close()
        messages = [record.getMessage() for record in caplog.records]
        assert any(message.startswith(f"no contact with Kafka at {broker.bootstrap_servers}") for message in messages)
        assert any(message.startswith(f"contact with Kafka at {broker.bootstrap_servers} restored") for message in messages)
    finally:
        broker.stop()
