"""The store writer on a real RocksDB folder: newest record wins, tombstones, offsets written with the data,
bad records, the one-writer lock, rebuilds, topic ids and the info log's limits."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dreamumm.config import REPO_ROOT
from store import database
from store.database import open_secondary, read_bad_record_counts, read_offsets
from store.decoding import RecordDecoder
from store.errors import StoreError, StoreFolderRemovedError, StoreLayoutError, StoreLockedError
from store.layout import LAYOUT_VERSION_KEY, META, USERS, decode_user_value, encode_int64
from store.lock import writer_lock_path
from store.writer import StoreWriter


def stored_users(writer: StoreWriter) -> dict[str, int]:
    """Return {user id: event count} of every stored user, read through the writer's own handle."""
    family = writer._handles.families[USERS]
    return {key.decode(): decode_user_value(key.decode(), value).event_count for key, value in family.items()}


def reopen(writer: StoreWriter, records) -> StoreWriter:
    path = writer.path
    writer.close()
    return StoreWriter(path, records.features_topic, records.embeddings_topic, records.dimension)


def test_newest_record_wins_within_batch(writer, records) -> None:
    batch = [records.user("a", 1), records.user("b", 1), records.user("a", 2), records.user("a", 3)]
    counts = writer.write(batch)
    assert stored_users(writer) == {"a": 3, "b": 1}
    assert counts.feature_records == 4
    assert counts.users_written == 4


def test_newest_record_wins_across_batches(writer, records) -> None:
    writer.write([records.user("a", 1)])
    writer.write([records.user("a", 2), records.user("b", 7)])
    assert stored_users(writer) == {"a": 2, "b": 7}


def test_tombstone_deletes_user(writer, records) -> None:
    writer.write([records.user("a", 1), records.user("b", 1)])
    counts = writer.write([records.tombstone("a")])
    assert stored_users(writer) == {"b": 1}
    assert counts.users_deleted == 1


def test_tombstone_then_put_in_one_batch_keeps_put(writer, records) -> None:
    writer.write([records.user("a", 1)])
    writer.write([records.tombstone("a"), records.user("a", 5), records.user("b", 1), records.tombstone("b")])
    assert stored_users(writer) == {"a": 5}


def test_tombstone_of_unknown_user_is_harmless(writer, records) -> None:
    counts = writer.write([records.tombstone("never-seen")])
    assert stored_users(writer) == {}
    assert counts.users_deleted == 1


def test_offsets_are_next_offset_per_partition(writer, records) -> None:
    writer.write([records.user("a", 1, partition=0), records.user("b", 1, partition=1),
                  records.user("c", 1, partition=1), records.embedding("v", [1.0, 0.0, 0.0, 0.0])])
    expected = {("features", 0): 1, ("features", 1): 2, ("embeddings", 0): 1}
    assert writer.offsets == expected
    reopened = reopen(writer, records)
    try:
        assert reopened.offsets == expected
    finally:
        reopened.close()


def test_positions_move_offsets_past_markers(writer, records) -> None:
    writer.write([records.user("a", 1)], {("features", 0): 3, ("features", 1): 4})
    assert writer.offsets == {("features", 0): 3, ("features", 1): 4}


def test_position_behind_records_is_ignored(writer, records) -> None:
    batch = [records.user("a", 1), records.user("b", 1), records.user("c", 1)]
    writer.write(batch, {("features", 0): 1})
    assert writer.offsets == {("features", 0): 3}


def test_heartbeat_and_caught_up_written(writer, records, store_settings, tmp_path) -> None:
    writer.write([], heartbeat_ms=111)
    writer.write([], heartbeat_ms=222, caught_up_ms=200)
    reader = open_secondary(store_settings.path, tmp_path / "secondary")
    try:
        meta = reader.families[META]
        assert meta.get(b"heartbeat_ms") == encode_int64(222)
        assert meta.get(b"caught_up_ms") == encode_int64(200)
    finally:
        reader.close()


def test_failed_batch_changes_nothing(writer, records, monkeypatch) -> None:
    """A failure while building a batch, as a crash would be, leaves users, offsets and counts as they were."""
    writer.write([records.user("a", 1)], heartbeat_ms=1)
    real_feature_write = RecordDecoder.feature_write
    calls = 0

    def fail_on_third_record(self, key, value):
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("simulated crash in the middle of a batch")
        return real_feature_write(self, key, value)

    monkeypatch.setattr(RecordDecoder, "feature_write", fail_on_third_record)
    batch = [records.user("a", 2), records.record("features", b"x", b"garbage"), records.user("b", 1),
             records.user("c", 1)]
    with pytest.raises(RuntimeError, match="simulated crash"):
        writer.write(batch, heartbeat_ms=2)

    assert writer.offsets == {("features", 0): 1}
    assert writer.bad_record_counts == {}
    reopened = reopen(writer, records)
    try:
        assert stored_users(reopened) == {"a": 1}
        assert reopened.offsets == {("features", 0): 1}
        assert read_bad_record_counts(reopened._handles) == {}
    finally:
        reopened.close()


def test_bad_record_counted_and_skipped(writer, records, caplog) -> None:
    batch = [records.user("a", 1), records.record("features", b"b", b"not avro"), records.user("c", 1),
             records.record("embeddings", b"v", None)]
    with caplog.at_level(logging.WARNING, logger="store.writer"):
        counts = writer.write(batch)
    assert counts.bad_records == 2
    assert counts.users_written == 2
    assert stored_users(writer) == {"a": 1, "c": 1}
    assert writer.offsets == {("features", 0): 3, ("embeddings", 0): 1}
    assert writer.bad_record_counts == {"features/invalid_avro": 1, "embeddings/missing_value": 1}
    messages = [record.getMessage() for record in caplog.records]
    assert any("topic features partition 0 offset 1: features/invalid_avro" in message for message in messages)
    assert any("topic embeddings partition 0 offset 0: embeddings/missing_value" in message for message in messages)


def test_bad_record_counts_persist_and_add_up(writer, records) -> None:
    writer.write([records.record("features", b"b", b"not avro")])
    reopened = reopen(writer, records)
    try:
        reopened.write([records.record("features", b"b", b"still not avro"), records.record("features", b"c", b"")])
        assert read_bad_record_counts(reopened._handles) == {"features/invalid_avro": 3}
    finally:
        reopened.close()


def test_bad_record_logging_is_rate_limited(writer, records, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="store.writer"):
        writer.write([records.record("features", b"b", b"junk") for _ in range(1_000)])
    assert writer.bad_record_counts == {"features/invalid_avro": 1_000}
    assert len(caplog.records) == 11


def test_record_of_other_topic_raises(writer, records) -> None:
    with pytest.raises(ValueError, match="record of topic 'elsewhere'"):
        writer.write([records.record("elsewhere", b"k", b"v")])


def test_second_writer_raises_store_locked(writer, records) -> None:
    with pytest.raises(StoreLockedError) as caught:
        StoreWriter(writer.path, records.features_topic, records.embeddings_topic, records.dimension)
    message = str(caught.value)
    assert str(writer.path) in message
    assert "another materialiser is writing it" in message
    assert "store.path" in message


def open_writer_in_other_process(path: Path) -> subprocess.CompletedProcess[str]:
    """Open a writer on ``path`` in a new Python process; its output starts with "locked:" if that fails."""
    script = textwrap.dedent(f"""
        from pathlib import Path
        from store.errors import StoreLockedError
        from store.writer import StoreWriter
        try:
            StoreWriter(Path({str(path)!r}), "features", "embeddings", 4)
        except StoreLockedError as error:
            print("locked:", error)
    """)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True,
                          cwd=REPO_ROOT)


def test_writer_in_other_process_raises_store_locked(writer) -> None:
    result = open_writer_in_other_process(writer.path)
    assert result.stdout.startswith("locked: the feature store at")
    assert "another materialiser is writing it" in result.stdout


def test_close_releases_lock(writer, records) -> None:
    writer.write([records.user("a", 1)])
    reopened = reopen(writer, records)
    try:
        assert stored_users(reopened) == {"a": 1}
    finally:
        reopened.close()


def test_other_layout_version_raises(writer, records) -> None:
    writer._handles.families[META].put(LAYOUT_VERSION_KEY, encode_int64(99))
    path = writer.path
    writer.close()
    with pytest.raises(StoreLayoutError, match="layout version 99"):
        StoreWriter(path, records.features_topic, records.embeddings_topic, records.dimension)
    # The failed open released the lock again.
    with pytest.raises(StoreLayoutError):
        StoreWriter(path, records.features_topic, records.embeddings_topic, records.dimension)


def test_creation_leaves_store_and_lock_file(store_settings, records) -> None:
    writer = StoreWriter(store_settings.path, records.features_topic, records.embeddings_topic, records.dimension)
    writer.close()
    names = sorted(path.name for path in store_settings.path.parent.iterdir())
    assert names == [store_settings.path.name, f"{store_settings.path.name}.lock"]


def test_empty_existing_folder_becomes_store(store_settings, records) -> None:
    store_settings.path.mkdir(parents=True)
    writer = StoreWriter(store_settings.path, records.features_topic, records.embeddings_topic, records.dimension)
    writer.close()
    assert (store_settings.path / "CURRENT").is_file()


def test_folder_of_other_files_raises(store_settings, records) -> None:
    store_settings.path.mkdir(parents=True)
    (store_settings.path / "notes.txt").write_text("not a store")
    with pytest.raises(StoreError, match="is a folder with other files"):
        StoreWriter(store_settings.path, records.features_topic, records.embeddings_topic, records.dimension)
    assert [path.name for path in store_settings.path.iterdir()] == ["notes.txt"]
    names = sorted(path.name for path in store_settings.path.parent.iterdir())
    assert names == [store_settings.path.name, f"{store_settings.path.name}.lock"]


def test_reader_never_sees_half_created_store(store_settings, records, tmp_path) -> None:
    """A reader process that races the creation finds either no store or one with every column family.

    The reader runs in another process because rocksdict holds the GIL while it creates the store,
    so a thread of this process could not run inside the creation.
    """
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from store.database import open_secondary
        from store.errors import StoreNotFoundError
        print("ready", flush=True)
        deadline = time.monotonic() + 30
        attempt = 0
        while time.monotonic() < deadline:
            attempt += 1
            try:
                handles = open_secondary(Path({str(store_settings.path)!r}), Path({str(tmp_path)!r}) / f"s{{attempt}}")
            except StoreNotFoundError:
                continue
            except Exception as error:
                print("failed:", repr(error))
                sys.exit(0)
            handles.close()
            print("opened")
            sys.exit(0)
        print("timed out")
    """)
    reader = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    try:
        assert reader.stdout.readline() == "ready\n"
        writer = StoreWriter(store_settings.path, records.features_topic, records.embeddings_topic, records.dimension)
        output, _ = reader.communicate(timeout=60)
        writer.close()
    finally:
        if reader.poll() is None:
            reader.kill()
    assert output == "opened\n"


def test_offsets_readable_from_secondary(writer, records, store_settings, tmp_path) -> None:
    writer.write([records.user("a", 1, partition=3)])
    reader = open_secondary(store_settings.path, tmp_path / "secondary")
    try:
        assert read_offsets(reader) == {("features", 3): 1}
    finally:
        reader.close()


def test_write_after_close_raises(writer, records) -> None:
    writer.close()
    with pytest.raises(RuntimeError, match="after close"):
        writer.write([records.user("a", 1)])


def test_non_finite_total_weight_is_bad_record(writer, records) -> None:
    batch = [records.user("a", 1), records.user("w", 2, total_weight=float("nan")), records.user("c", 1)]
    counts = writer.write(batch)
    assert counts.bad_records == 1
    assert stored_users(writer) == {"a": 1, "c": 1}
    assert writer.offsets == {("features", 0): 3}
    assert writer.bad_record_counts == {"features/invalid_field": 1}


def test_second_writer_names_lock_file_and_pid(writer, records) -> None:
    with pytest.raises(StoreLockedError) as caught:
        StoreWriter(writer.path, records.features_topic, records.embeddings_topic, records.dimension)
    message = str(caught.value)
    assert str(writer_lock_path(writer.path)) in message
    assert f"process {os.getpid()} holds the writer lock" in message


def test_lock_survives_folder_deletion(writer, records) -> None:
    """A second writer is rejected also after the first one's folder was deleted under it."""
    shutil.rmtree(writer.path)
    with pytest.raises(StoreLockedError, match="another materialiser is writing it"):
        StoreWriter(writer.path, records.features_topic, records.embeddings_topic, records.dimension)
    assert not writer.path.exists()


def test_lock_survives_folder_deletion_in_other_process(writer) -> None:
    shutil.rmtree(writer.path)
    result = open_writer_in_other_process(writer.path)
    assert result.stdout.startswith("locked: the feature store at")
    assert f"process {os.getpid()} holds the writer lock" in result.stdout


def test_close_keeps_lock_file_and_frees_lock(writer, records) -> None:
    path = writer.path
    writer.close()
    assert writer_lock_path(path).is_file()
    reopened = StoreWriter(path, records.features_topic, records.embeddings_topic, records.dimension)
    reopened.close()


def test_failed_open_releases_lock(store_settings, records) -> None:
    store_settings.path.mkdir(parents=True)
    (store_settings.path / "notes.txt").write_text("not a store")
    for _ in range(2):
        with pytest.raises(StoreError, match="is a folder with other files"):
            StoreWriter(store_settings.path, records.features_topic, records.embeddings_topic, records.dimension)


def test_rebuild_replaces_store(writer, records) -> None:
    path = writer.path
    writer.write([records.user("a", 1)], heartbeat_ms=1)
    writer.record_topic_ids({"features": "old-id"})
    old_store_id = writer.store_id
    writer.close()
    rebuilt = StoreWriter(path, records.features_topic, records.embeddings_topic, records.dimension, rebuild=True)
    try:
        assert stored_users(rebuilt) == {}
        assert rebuilt.offsets == {}
        assert rebuilt.topic_ids == {}
        assert rebuilt.store_id is not None
        assert rebuilt.store_id != old_store_id
    finally:
        rebuilt.close()
    assert sorted(entry.name for entry in path.parent.iterdir()) == [path.name, f"{path.name}.lock"]


def test_rebuild_of_locked_store_raises(writer, records) -> None:
    writer.write([records.user("a", 1)])
    with pytest.raises(StoreLockedError):
        StoreWriter(writer.path, records.features_topic, records.embeddings_topic, records.dimension, rebuild=True)
    assert stored_users(writer) == {"a": 1}


def test_rebuild_of_other_layout_version(writer, records) -> None:
    writer._handles.families[META].put(LAYOUT_VERSION_KEY, encode_int64(99))
    path = writer.path
    writer.close()
    rebuilt = StoreWriter(path, records.features_topic, records.embeddings_topic, records.dimension, rebuild=True)
    rebuilt.close()


def test_rebuild_without_store_creates_one(store_settings, records) -> None:
    rebuilt = StoreWriter(store_settings.path, records.features_topic, records.embeddings_topic, records.dimension,
                          rebuild=True)
    rebuilt.close()
    assert (store_settings.path / "CURRENT").is_file()


def test_rebuild_keeps_folder_of_other_files(store_settings, records) -> None:
    store_settings.path.mkdir(parents=True)
    (store_settings.path / "notes.txt").write_text("not a store")
    with pytest.raises(StoreError, match="not a feature store folder, so the rebuild does not remove it"):
        StoreWriter(store_settings.path, records.features_topic, records.embeddings_topic, records.dimension,
                    rebuild=True)
    assert [path.name for path in store_settings.path.iterdir()] == ["notes.txt"]


def test_rebuild_rejected_while_rocksdb_lock_held(store_settings, records) -> None:
    """A process that opened the store without the writer lock, as older versions did, blocks a rebuild."""
    StoreWriter(store_settings.path, records.features_topic, records.embeddings_topic, records.dimension).close()
    script = textwrap.dedent(f"""
        import sys
        from rocksdict import Options, Rdict
        from store.layout import COLUMN_FAMILIES
        db = Rdict({str(store_settings.path)!r}, Options(raw_mode=True),
                   column_families={{name: Options(raw_mode=True) for name in COLUMN_FAMILIES}})
        print("open", flush=True)
        sys.stdin.readline()
        db.close()
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              cwd=REPO_ROOT)
    try:
        assert holder.stdout.readline() == "open\n"
        with pytest.raises(StoreLockedError, match="still open for writing by another process"):
            StoreWriter(store_settings.path, records.features_topic, records.embeddings_topic, records.dimension,
                        rebuild=True)
        assert (store_settings.path / "CURRENT").is_file()
    finally:
        holder.communicate("\n", timeout=60)


def test_check_folder_raises_after_removal(writer, records, caplog) -> None:
    writer.write([records.user("a", 1)])
    writer.check_folder()
    shutil.rmtree(writer.path)
    with pytest.raises(StoreFolderRemovedError, match="was removed while this materialiser was writing it"):
        writer.check_folder()
    writer.write([records.user("b", 1)])
    # Closing a store whose folder is gone fails inside RocksDB. close logs that and still frees the lock.
    with caplog.at_level(logging.WARNING, logger="store.writer"):
        writer.close()
    assert any("because its folder was removed" in record.getMessage() for record in caplog.records)
    StoreWriter(writer.path, records.features_topic, records.embeddings_topic, records.dimension).close()


def test_topic_ids_persist(writer, records) -> None:
    assert writer.topic_ids == {}
    writer.record_topic_ids({"features": "id-1", "embeddings": "id-2"})
    writer.write([records.record("features", b"b", b"junk")])
    reopened = reopen(writer, records)
    try:
        assert reopened.topic_ids == {"features": "id-1", "embeddings": "id-2"}
        assert reopened.bad_record_counts == {"features/invalid_avro": 1}
    finally:
        reopened.close()


def test_info_log_files_limited(store_settings, records, monkeypatch) -> None:
    """Each open starts a new info log file; RocksDB keeps only KEPT_INFO_LOG_FILES of them."""
    monkeypatch.setattr(database, "KEPT_INFO_LOG_FILES", 2)
    for _ in range(4):
        StoreWriter(store_settings.path, records.features_topic, records.embeddings_topic, records.dimension).close()
    logs = [path.name for path in store_settings.path.iterdir() if path.name.startswith("LOG")]
    assert len(logs) == 2
