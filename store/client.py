"""Reading the store beside the running materialiser, as a RocksDB secondary instance.

A secondary instance reads the writer's files without taking its lock. Its reads return the
writer's changes up to its last ``catch_up`` (RocksDB's TryCatchUpWithPrimary), which replays
the writer's newer MANIFEST and WAL entries. Each reader keeps its own few files (RocksDB's info
log) in ``<store.secondary_dir>/<pid>-<random hex>``, and ``close`` removes that folder.

A rebuild (``dreamumm materialise --rebuild``) replaces the store folder with a new database.
A secondary instance must never catch up across the two, because it reads the writer's files by
name and would mix the files of both databases. So each catch-up compares the store id at
``store.path`` (RocksDB's IDENTITY, see ``store.database.read_store_id``) with the id of the open
instance, before and after it replays. When the folder contains a new store, the reader opens that
one in a new folder, moves later reads to it, and closes the old instance once no read uses it.
While the folder is missing, the reader keeps serving the removed store and ``status().problem``
reports it.

Reads are thread-safe. rocksdict keeps the GIL while RocksDB works (its src/rdict.rs releases it
nowhere in get, and two reading threads were no faster than one with rocksdict 0.3.29). So a
catch-up in the background thread also pauses the reading threads while it runs.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Iterator, NoReturn, Sequence, cast

import numpy as np
from rocksdict import DbClosedError

from dreamumm.config import StoreSettings
from store.database import (
    PartitionKey,
    StoreHandles,
    open_secondary,
    raw_get,
    raw_items,
    raw_multi_get,
    read_bad_record_counts,
    read_offsets,
    read_store_id,
)
from store.errors import StoreError, StoreLayoutError, StoreNotFoundError
from store.layout import (
    CAUGHT_UP_KEY,
    HEARTBEAT_KEY,
    META,
    USERS,
    VIDEOS,
    decode_int64,
    decode_user_value,
    video_key,
    video_vector_rows,
)
from store.vectors import StoredVector, VideoVectors

logger = logging.getLogger(__name__)

LOGGED_CATCH_UP_FAILURES = 10
"""Number of failures the background catch-up logs one by one; after them it logs every 100th."""
OPEN_ATTEMPTS = 3
"""Attempts to open a store whose folder was replaced while it was being opened."""


@dataclass(frozen=True)
class StoreStatus:
    """The materialiser's progress as of the reader's last catch-up."""

    offsets: dict[PartitionKey, int]
    """Next offset to read per (topic, partition)."""
    heartbeat_ms: int | None
    """Wall-clock time of the materialiser's last write in epoch ms, or None before its first write."""
    caught_up_ms: int | None
    """Last wall-clock time in epoch ms at which the materialiser had read every partition to its end,
    or None if it never has."""
    bad_records: dict[str, int]
    """Records skipped since the store was created, per ``<source>/<reason>``, for example
    ``features/invalid_avro``. The source is ``features`` or ``embeddings``, and the reason a
    dead-letter reason code of ``jobs.dead_letters``."""
    store_id: str
    """Id of the store that the reader reads (see ``store.database.read_store_id``)."""
    problem: str | None
    """None while the reader follows the store at ``store.path``. Otherwise why its reads come from a
    store that is no longer there: the folder was removed and no new store exists yet, or the
    folder contains a new store that the reader could not open. Reads then return the old store's
    data, which no longer changes."""


class _OpenStore:
    """One secondary instance of the store, with its own folder and a count of the reads using it."""

    def __init__(self, handles: StoreHandles, secondary_path: Path, store_id: str) -> None:
        self.handles = handles
        self.users = handles.families[USERS]
        self.videos = handles.families[VIDEOS]
        self.meta = handles.families[META]
        self.secondary_path = secondary_path
        self.store_id = store_id
        self.reads = 0
        """Reads in progress. Changed only under FeatureStoreReader._stores_lock."""
        self.retired = False
        """Set when no new read may start on this instance; it closes after its last read."""

    def close(self) -> None:
        self.handles.close()
        shutil.rmtree(self.secondary_path, ignore_errors=True)


class FeatureStoreReader:
    """A read-only view of the store that stays current through ``catch_up``. Open it with ``open``."""

    def __init__(self, store: _OpenStore, store_settings: StoreSettings) -> None:
        self._path = store_settings.path
        self._secondary_dir = store_settings.secondary_dir
        self._catch_up_interval_ms = store_settings.catch_up_interval_ms
        self._store = store
        self._stores_lock = threading.Lock()
        """Guards ``_store`` and the read counts, so that a replaced instance closes only when unused."""
        self._catch_up_lock = threading.Lock()
        """Serialises catch-ups, store switches and close."""
        self._problem: str | None = None
        self._lock = threading.Lock()
        self._stop_catch_up = threading.Event()
        self._catch_up_thread: threading.Thread | None = None
        self._catch_up_failures = 0

    @classmethod
    def open(cls, store_settings: StoreSettings) -> FeatureStoreReader:
        """Open the store at ``store_settings.path`` as a secondary instance of this process.

        Raises:
            StoreNotFoundError: if the materialiser has not created the store yet.
            StoreLayoutError: if the folder is not a store of this layout version.
            StoreError: if RocksDB cannot open the store.
        """
        store = _open_store(store_settings.path, store_settings.secondary_dir)
        logger.info("opened the feature store at %s (store id %s) as a secondary instance in %s",
                    store_settings.path, store.store_id, store.secondary_path)
        return cls(store, store_settings)

    def __enter__(self) -> FeatureStoreReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop the background catch-up, close the store and remove this reader's folder.

        Reads in progress in other threads finish first. Calling it again does nothing. Reads
        after close raise rocksdict's ``DbClosedError``.
        """
        with self._lock:
            self._stop_catch_up.set()
            if self._catch_up_thread is not None:
                self._catch_up_thread.join()
                self._catch_up_thread = None
        with self._catch_up_lock:
            self._retire(self._store)

    def get(self, user_id: str) -> StoredVector | None:
        """Return the user's stored vector, or None if the store has no record of the user."""
        store = self._acquire()
        try:
            value = raw_get(store.users, user_id.encode("utf-8"))
        finally:
            self._release(store)
        return None if value is None else decode_user_value(user_id, value)

    def multi_get(self, user_ids: Sequence[str]) -> list[StoredVector | None]:
        """Return the stored vector of each user, or None for a user the store lacks, in request order."""
        if not user_ids:
            return []
        keys = [user_id.encode("utf-8") for user_id in user_ids]
        store = self._acquire()
        try:
            values = raw_multi_get(store.users, keys)
        finally:
            self._release(store)
        return [None if value is None else decode_user_value(user_id, value)
                for user_id, value in zip(user_ids, values)]

    def video_vectors(self, model_version: str, video_ids: Sequence[str]) -> VideoVectors:
        """Return the vectors of ``video_ids`` in ``model_version`` as a matrix, with zero rows for missing videos.

        When none of the videos has a vector in that version, the matrix has shape
        ``(len(video_ids), 0)``, because the dimension is then unknown.

        Raises:
            StoreLayoutError: if the found vectors differ in dimension. That happens only when the
                store was filled under two settings of embedding.dimension.
        """
        if not video_ids:
            return VideoVectors(matrix=np.zeros((0, 0), dtype=np.float32), found=np.zeros(0, dtype=np.bool_))
        keys = [video_key(model_version, video_id) for video_id in video_ids]
        store = self._acquire()
        try:
            values = raw_multi_get(store.videos, keys)
        finally:
            self._release(store)
        found = np.array([value is not None for value in values], dtype=np.bool_)
        present = found.nonzero()[0]
        if present.size == 0:
            return VideoVectors(matrix=np.zeros((len(video_ids), 0), dtype=np.float32), found=found)
        rows = video_vector_rows([keys[i] for i in present], [cast(bytes, values[i]) for i in present])
        matrix = np.zeros((len(video_ids), rows.shape[1]), dtype=np.float32)
        matrix[present] = rows
        return VideoVectors(matrix=matrix, found=found)

    def user_ids(self) -> Iterator[str]:
        """Yield every stored user id, in byte order. It scans the whole users column family.

        The scan stays on the store instance it started on until the iterator is exhausted or closed.
        """
        store = self._acquire()
        try:
            for key, _value in raw_items(store.users):
                yield key.decode("utf-8")
        finally:
            self._release(store)

    def status(self) -> StoreStatus:
        """Return the materialiser's offsets, heartbeat, catch-up time and bad-record counts, and any problem."""
        with self._stores_lock:
            # Taken together, so that the problem describes the instance read here.
            store = self._store
            store.reads += 1
            problem = self._problem
        try:
            heartbeat = store.meta.get(HEARTBEAT_KEY)
            caught_up = store.meta.get(CAUGHT_UP_KEY)
            offsets = read_offsets(store.handles)
            bad_records = read_bad_record_counts(store.handles)
        finally:
            self._release(store)
        return StoreStatus(
            offsets=offsets,
            heartbeat_ms=None if heartbeat is None else decode_int64(heartbeat),
            caught_up_ms=None if caught_up is None else decode_int64(caught_up),
            bad_records=bad_records,
            store_id=store.store_id,
            problem=problem,
        )

    def catch_up(self) -> None:
        """Apply the writer's changes since the last catch-up, so that reads see them.

        If the folder at ``store.path`` now contains another store, open that one and move reads to
        it instead. If the folder is missing, keep the current instance and report the problem in
        ``status()``.

        Raises rocksdict's ``DbClosedError`` after ``close``, ``StoreError`` if the folder contains
        a new store that cannot be opened, and ``Exception`` with RocksDB's message if the catch-up
        fails.
        """
        with self._catch_up_lock:
            store = self._store
            if store.retired:
                _raise_closed(self._path)
            found = read_store_id(self._path)
            if found is None:
                self._set_problem(f"the feature store folder {self._path} was removed; waiting for a new one. Reads "
                                  f"return the data of the removed store (id {store.store_id}), which no longer "
                                  "changes.")
                return
            if found != store.store_id:
                self._switch_to(found)
                return
            db = store.handles.db
            if db is None:
                _raise_closed(self._path)
            db.try_catch_up_with_primary()
            # The folder may have been replaced while RocksDB replayed it. Then the instance may
            # contain files of both databases, and only a new instance can be trusted.
            found_after = read_store_id(self._path)
            if found_after is not None and found_after != store.store_id:
                self._switch_to(found_after)
                return
            # A folder removed during the replay is reported at the next catch-up.
            self._set_problem(None)

    def start_background_catch_up(self, interval_ms: int | None = None) -> None:
        """Start a daemon thread that calls ``catch_up`` every ``interval_ms`` until ``close``.

        ``interval_ms`` defaults to ``store.catch_up_interval_ms``. A failed catch-up is logged
        and tried again at the next interval.
        """
        interval_s = (interval_ms if interval_ms is not None else self._catch_up_interval_ms) / 1000
        with self._lock:
            if self._store.retired:
                _raise_closed(self._path)
            if self._catch_up_thread is not None:
                raise RuntimeError("the background catch-up of this reader is already running. Call "
                                   "start_background_catch_up once per reader.")
            self._catch_up_thread = threading.Thread(target=self._catch_up_until_closed, args=(interval_s,),
                                                     name="store-catch-up", daemon=True)
            self._catch_up_thread.start()

    def _catch_up_until_closed(self, interval_s: float) -> None:
        while not self._stop_catch_up.wait(interval_s):
            try:
                self.catch_up()
            except StoreError:
                pass  # _switch_to logged it and set the problem.
            except Exception as error:  # rocksdict raises plain Exception with RocksDB's status text.
                self._catch_up_failures += 1
                if self._catch_up_failures <= LOGGED_CATCH_UP_FAILURES or self._catch_up_failures % 100 == 0:
                    logger.warning("catching up with the feature store at %s failed (%s failures so far). Reads "
                                   "return older data until a catch-up succeeds: %s", self._path,
                                   self._catch_up_failures, error)

    def _switch_to(self, store_id: str) -> None:
        """Open the new store found at the path and move later reads to it. Runs under _catch_up_lock."""
        old = self._store
        try:
            new = _open_store(self._path, self._secondary_dir)
        except StoreNotFoundError:
            # Removed again, or a materialiser is still creating it.
            self._set_problem(f"the feature store folder {self._path} was removed; waiting for a new one. Reads "
                              f"return the data of the removed store (id {old.store_id}), which no longer changes.")
            return
        except StoreError as error:
            self._set_problem(f"the feature store at {self._path} was replaced by a new store (id {store_id}), but "
                              f"opening it failed: {error}. Reads return the data of the old store (id "
                              f"{old.store_id}), which no longer changes.")
            raise
        with self._stores_lock:
            self._store = new
            self._problem = None
        self._retire(old)
        logger.info("the feature store at %s was replaced: now reading store id %s (before: %s) as a secondary "
                    "instance in %s", self._path, new.store_id, old.store_id, new.secondary_path)

    def _set_problem(self, problem: str | None) -> None:
        """Set the problem that status() reports, and log it when it changes."""
        if problem == self._problem:
            return
        if problem is not None:
            logger.warning("%s", problem)
        else:
            logger.info("the feature store at %s is readable again", self._path)
        with self._stores_lock:
            self._problem = problem

    def _acquire(self) -> _OpenStore:
        with self._stores_lock:
            store = self._store
            store.reads += 1
        return store

    def _release(self, store: _OpenStore) -> None:
        with self._stores_lock:
            store.reads -= 1
            close_now = store.retired and store.reads == 0
        if close_now:
            store.close()

    def _retire(self, store: _OpenStore) -> None:
        """Let no new read start on ``store``, and close it now if no read uses it, else after the last one."""
        with self._stores_lock:
            if store.retired:
                return
            store.retired = True
            close_now = store.reads == 0
        if close_now:
            store.close()


def _open_store(path: Path, secondary_dir: Path) -> _OpenStore:
    """Open the store at ``path`` as a secondary instance in a new folder under ``secondary_dir``.

    The store id is read before and after the open. If they differ, the folder was replaced
    during the open, which may have read files of both stores, so the open is tried again.
    """
    for _attempt in range(OPEN_ATTEMPTS):
        store_id = read_store_id(path)
        secondary_path = secondary_dir / f"{os.getpid()}-{secrets.token_hex(4)}"
        secondary_path.mkdir(parents=True)
        try:
            handles = open_secondary(path, secondary_path)
        except BaseException:
            shutil.rmtree(secondary_path, ignore_errors=True)
            raise
        store_id_after = read_store_id(path)
        if store_id is not None and store_id_after == store_id:
            return _OpenStore(handles, secondary_path, store_id)
        handles.close()
        shutil.rmtree(secondary_path, ignore_errors=True)
        if store_id_after is None and (path / "CURRENT").is_file():
            raise StoreLayoutError(f"{path} is a RocksDB folder without an IDENTITY file, so readers cannot tell "
                                   "whether it is replaced. Run `dreamumm materialise --rebuild` to rebuild the store.")
    raise StoreError(f"the feature store folder {path} was replaced {OPEN_ATTEMPTS} times while it was being opened. "
                     "Check that only one materialiser runs with this store.path.")


def _raise_closed(path: Path) -> NoReturn:
    raise DbClosedError(f"the feature store reader of {path} is closed")
