"""The store reader as a RocksDB secondary instance beside a real writer, also across rebuilds of the store."""

from __future__ import annotations

import shutil
import threading
import time

import numpy as np
import pytest
from rocksdict import DbClosedError

from store import FeatureStoreReader, StoreLayoutError, StoreNotFoundError, StoreStatus, database
from store.layout import LAYOUT_VERSION_KEY, META, encode_int64
from store.writer import StoreWriter


@pytest.fixture
def reader(writer, store_settings):
    """A reader of the ``writer`` fixture's store."""
    with FeatureStoreReader.open(store_settings) as store_reader:
        yield store_reader


def wait_for(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(0.01)


def test_missing_store_raises_not_found(store_settings) -> None:
    with pytest.raises(StoreNotFoundError) as caught:
        FeatureStoreReader.open(store_settings)
    message = str(caught.value)
    assert str(store_settings.path) in message
    assert "dreamumm materialise" in message
    assert not store_settings.path.exists()
    assert list(store_settings.secondary_dir.iterdir()) == []


def test_get_returns_stored_fields(writer, records, reader) -> None:
    writer.write([records.user("a", 6, vector=[0.0, 0.6, 0.8, 0.0])])
    reader.catch_up()
    stored = reader.get("a")
    assert stored is not None
    assert stored.user_id == "a"
    assert stored.vector.dtype == np.float32
    assert stored.vector.tolist() == pytest.approx([0.0, 0.6, 0.8, 0.0])
    assert stored.embedding_model_version == records.model_version
    assert stored.event_count == 6
    assert stored.total_weight == 3.0
    assert stored.last_event_time_ms == 1_006
    assert stored.emit_time_ms == 2_006
    assert reader.get("missing") is None


def test_new_records_visible_after_catch_up(writer, records, reader) -> None:
    writer.write([records.user("a", 1)])
    reader.catch_up()
    writer.write([records.user("a", 2), records.user("b", 1), records.tombstone("a")])
    assert reader.get("a").event_count == 1
    assert reader.get("b") is None
    reader.catch_up()
    assert reader.get("a") is None
    assert reader.get("b").event_count == 1


def test_flushed_records_visible_after_catch_up(writer, records, reader) -> None:
    """Changes that the writer moved from its WAL into SST files reach the reader too."""
    writer.write([records.user(f"user-{index}", 1) for index in range(100)])
    writer._handles.db.flush()
    reader.catch_up()
    assert sum(1 for _ in reader.user_ids()) == 100


def test_background_catch_up(writer, records, reader) -> None:
    reader.start_background_catch_up(interval_ms=10)
    writer.write([records.user("a", 4)])
    wait_for(lambda: reader.get("a") is not None)
    assert reader.get("a").event_count == 4
    with pytest.raises(RuntimeError, match="already running"):
        reader.start_background_catch_up(interval_ms=10)


def test_multi_get_keeps_request_order(writer, records, reader) -> None:
    writer.write([records.user("a", 1), records.user("b", 2), records.user("c", 3)])
    reader.catch_up()
    results = reader.multi_get(["c", "missing", "a", "c"])
    assert [None if result is None else result.user_id for result in results] == ["c", None, "a", "c"]
    assert [None if result is None else result.event_count for result in results] == [3, None, 1, 3]
    assert reader.multi_get([]) == []


def test_video_vectors_matrix_and_found(writer, records, reader) -> None:
    writer.write([
        records.embedding("v1", [2.0, 0.0, 0.0, 0.0]),
        records.embedding("v2", [0.0, 3.0, 4.0, 0.0]),
        records.embedding("v1", [0.0, 0.0, 0.0, 5.0], model_version="other"),
    ])
    reader.catch_up()
    videos = reader.video_vectors(records.model_version, ["v2", "missing", "v1"])
    assert videos.found.tolist() == [True, False, True]
    assert videos.matrix.dtype == np.float32
    assert videos.matrix.shape == (3, 4)
    np.testing.assert_allclose(videos.matrix, [[0.0, 0.6, 0.8, 0.0], [0.0] * 4, [1.0, 0.0, 0.0, 0.0]], rtol=1e-6)
    videos.matrix[1, 0] = 1.0  # The matrix is the caller's to change.

    other = reader.video_vectors("other", ["v1", "v2"])
    assert other.found.tolist() == [True, False]
    assert other.matrix[0].tolist() == [0.0, 0.0, 0.0, 1.0]


def test_video_vectors_newest_record_wins(writer, records, reader) -> None:
    writer.write([records.embedding("v1", [1.0, 0.0, 0.0, 0.0])])
    writer.write([records.embedding("v1", [0.0, 1.0, 0.0, 0.0])])
    reader.catch_up()
    assert reader.video_vectors(records.model_version, ["v1"]).matrix[0].tolist() == [0.0, 1.0, 0.0, 0.0]


def test_video_vectors_none_found_has_zero_columns(writer, records, reader) -> None:
    writer.write([records.embedding("v1", [1.0, 0.0, 0.0, 0.0])])
    reader.catch_up()
    unknown_version = reader.video_vectors("unknown-version", ["v1", "v2"])
    assert unknown_version.matrix.shape == (2, 0)
    assert unknown_version.found.tolist() == [False, False]
    empty = reader.video_vectors(records.model_version, [])
    assert empty.matrix.shape == (0, 0)
    assert empty.found.shape == (0,)


def test_video_vectors_of_mixed_dimensions_raise(writer, records, store_settings) -> None:
    writer.write([records.embedding("v1", [1.0, 0.0, 0.0, 0.0])])
    writer.close()
    narrow = StoreWriter(store_settings.path, records.features_topic, records.embeddings_topic, 3)
    try:
        narrow.write([records.embedding("v2", [1.0, 0.0, 0.0])])
        with FeatureStoreReader.open(store_settings) as reader:
            assert reader.video_vectors(records.model_version, ["v2"]).matrix.shape == (1, 3)
            with pytest.raises(StoreLayoutError, match="differ in dimension: 4 and 3"):
                reader.video_vectors(records.model_version, ["v1", "v2"])
    finally:
        narrow.close()


def test_status_reports_progress(writer, records, reader) -> None:
    assert reader.status() == StoreStatus(offsets={}, heartbeat_ms=None, caught_up_ms=None, bad_records={},
                                          store_id=writer.store_id, problem=None)
    writer.write([records.user("a", 1), records.record("features", b"b", b"junk")], {("embeddings", 1): 4},
                 heartbeat_ms=500, caught_up_ms=400)
    reader.catch_up()
    assert reader.status() == StoreStatus(
        offsets={("features", 0): 2, ("embeddings", 1): 4},
        heartbeat_ms=500,
        caught_up_ms=400,
        bad_records={"features/invalid_avro": 1},
        store_id=writer.store_id,
        problem=None,
    )


def test_close_removes_folder_and_stops_reads(writer, records, store_settings) -> None:
    reader = FeatureStoreReader.open(store_settings)
    reader.start_background_catch_up(interval_ms=10)
    assert len(list(store_settings.secondary_dir.iterdir())) == 1
    reader.close()
    reader.close()
    assert list(store_settings.secondary_dir.iterdir()) == []
    with pytest.raises(DbClosedError):
        reader.get("a")
    with pytest.raises(DbClosedError):
        reader.catch_up()


def test_two_readers_have_own_folders(writer, store_settings) -> None:
    with FeatureStoreReader.open(store_settings), FeatureStoreReader.open(store_settings):
        folders = list(store_settings.secondary_dir.iterdir())
        assert len(folders) == 2
        assert all(folder.name.split("-")[0].isdigit() for folder in folders)


def test_reads_from_threads_during_catch_up(writer, records, reader) -> None:
    """Threads read while the writer writes and the background thread catches up. Every read is whole."""
    reader.start_background_catch_up(interval_ms=1)
    failures: list[str] = []
    done = threading.Event()

    def read_until_done() -> None:
        while not done.is_set():
            for stored in reader.multi_get([f"user-{index}" for index in range(20)]):
                if stored is not None and stored.total_weight != 0.5 * stored.event_count:
                    failures.append(f"{stored.user_id}: {stored}")

    threads = [threading.Thread(target=read_until_done) for _ in range(3)]
    for thread in threads:
        thread.start()
    for round_number in range(1, 51):
        writer.write([records.user(f"user-{index}", round_number) for index in range(20)])
    wait_for(lambda: reader.get("user-0") is not None and reader.get("user-0").event_count == 50)
    done.set()
    for thread in threads:
        thread.join()
    assert failures == []


def test_reader_opened_on_empty_store(store_settings, records) -> None:
    """A reader opened on a store that the writer has only created reads later writes after a catch-up."""
    writer = StoreWriter(store_settings.path, records.features_topic, records.embeddings_topic, records.dimension)
    try:
        with FeatureStoreReader.open(store_settings) as reader:
            assert reader.get("a") is None
            writer.write([records.user("a", 1)])
            reader.catch_up()
            assert reader.get("a") is not None
    finally:
        writer.close()


def new_writer(store_settings, records, rebuild: bool = False) -> StoreWriter:
    return StoreWriter(store_settings.path, records.features_topic, records.embeddings_topic, records.dimension,
                       rebuild=rebuild)


def test_reader_follows_rebuilt_store(writer, records, reader, store_settings) -> None:
    writer.write([records.user("old", 1)], heartbeat_ms=100)
    reader.catch_up()
    old_store_id = reader.status().store_id
    writer.close()
    rebuilt = new_writer(store_settings, records, rebuild=True)
    try:
        rebuilt.write([records.user("new", 2)], heartbeat_ms=200)
        reader.catch_up()
        assert reader.get("old") is None
        assert reader.get("new").event_count == 2
        status = reader.status()
        assert status.store_id == rebuilt.store_id
        assert status.store_id != old_store_id
        assert status.heartbeat_ms == 200
        assert status.problem is None
        # The old instance's folder is gone, and the new one has its own.
        assert len(list(store_settings.secondary_dir.iterdir())) == 1
        rebuilt.write([records.user("later", 1)])
        reader.catch_up()
        assert reader.get("later") is not None
    finally:
        rebuilt.close()


def test_reader_reports_removed_folder(writer, records, reader, store_settings) -> None:
    writer.write([records.user("a", 1)])
    reader.catch_up()
    writer.close()
    shutil.rmtree(store_settings.path)
    reader.catch_up()
    problem = reader.status().problem
    assert problem is not None
    assert f"the feature store folder {store_settings.path} was removed; waiting for a new one" in problem
    assert reader.get("a").event_count == 1

    recreated = new_writer(store_settings, records)
    try:
        recreated.write([records.user("b", 1)])
        reader.catch_up()
        assert reader.status().problem is None
        assert reader.get("a") is None
        assert reader.get("b") is not None
    finally:
        recreated.close()


def test_unreadable_new_store_keeps_old_one(writer, records, reader, store_settings) -> None:
    writer.write([records.user("a", 1)])
    reader.catch_up()
    writer.close()
    rebuilt = new_writer(store_settings, records, rebuild=True)
    rebuilt._handles.families[META].put(LAYOUT_VERSION_KEY, encode_int64(99))
    try:
        with pytest.raises(StoreLayoutError, match="layout version 99"):
            reader.catch_up()
        problem = reader.status().problem
        assert f"was replaced by a new store (id {rebuilt.store_id}), but opening it failed" in problem
        assert reader.get("a") is not None
        assert len(list(store_settings.secondary_dir.iterdir())) == 1
    finally:
        rebuilt.close()


def test_scan_in_progress_keeps_old_store_open(writer, records, reader, store_settings) -> None:
    writer.write([records.user(f"old-{index}", 1) for index in range(3)])
    reader.catch_up()
    scan = reader.user_ids()
    assert next(scan) == "old-0"
    writer.close()
    rebuilt = new_writer(store_settings, records, rebuild=True)
    try:
        rebuilt.write([records.user("new", 1)])
        reader.catch_up()
        assert reader.get("new") is not None
        assert len(list(store_settings.secondary_dir.iterdir())) == 2
        assert list(scan) == ["old-1", "old-2"]
        # The last read of the old instance closed it and removed its folder.
        assert len(list(store_settings.secondary_dir.iterdir())) == 1
    finally:
        rebuilt.close()


def test_close_after_switch_removes_folders(writer, records, store_settings) -> None:
    reader = FeatureStoreReader.open(store_settings)
    writer.close()
    rebuilt = new_writer(store_settings, records, rebuild=True)
    try:
        reader.catch_up()
        reader.close()
        assert list(store_settings.secondary_dir.iterdir()) == []
        with pytest.raises(DbClosedError):
            reader.get("a")
    finally:
        rebuilt.close()


def test_reads_from_threads_during_rebuilds(writer, records, reader, store_settings) -> None:
    """Threads read while the store is rebuilt again and again. Each read returns one store's data, never a mix."""
    reader.start_background_catch_up(interval_ms=1)
    failures: list[str] = []
    done = threading.Event()

    def read_until_done() -> None:
        while not done.is_set():
            try:
                status = reader.status()
                stored = reader.multi_get(["user"])[0]
            except Exception as error:  # Any exception is a failure here.
                failures.append(repr(error))
                continue
            if status.problem is not None and "was removed" not in status.problem:
                failures.append(status.problem)
            if stored is not None and stored.total_weight != 0.5 * stored.event_count:
                failures.append(f"{stored}")

    threads = [threading.Thread(target=read_until_done) for _ in range(3)]
    for thread in threads:
        thread.start()
    current = writer
    try:
        for generation in range(1, 6):
            current.close()
            current = new_writer(store_settings, records, rebuild=True)
            current.write([records.user("user", generation)], heartbeat_ms=generation)
            wait_for(lambda: reader.status().heartbeat_ms == generation)
            assert reader.get("user").event_count == generation
    finally:
        done.set()
        for thread in threads:
            thread.join()
        if current is not writer:
            current.close()
    assert failures == []
    assert len(list(store_settings.secondary_dir.iterdir())) == 1


def test_reader_info_log_rotated(writer, records, store_settings, monkeypatch) -> None:
    monkeypatch.setattr(database, "MAX_INFO_LOG_BYTES", 4096)
    monkeypatch.setattr(database, "KEPT_INFO_LOG_FILES", 2)
    with FeatureStoreReader.open(store_settings) as reader:
        for count in range(50):
            writer.write([records.user("a", count + 1)])
            reader.catch_up()
        (folder,) = store_settings.secondary_dir.iterdir()
        logs = sorted(path.name for path in folder.iterdir() if path.name.startswith("LOG"))
        # RocksDB writes its options, about 20 KB, into the log at open, so the first file already rotated.
        assert len(logs) == 2
        assert logs[0] == "LOG"
        assert logs[1].startswith("LOG.old.")


def test_store_without_identity_raises(writer, store_settings) -> None:
    (store_settings.path / "IDENTITY").unlink()
    with pytest.raises(StoreLayoutError, match="without an IDENTITY file"):
        FeatureStoreReader.open(store_settings)
    assert list(store_settings.secondary_dir.iterdir()) == []
