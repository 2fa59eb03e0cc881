"""Reading the store beside the running materialiser, as a RocksDB secondary instance.

A secondary instance reads the writer's files without taking its lock. Its reads return the
writer's changes up to its last ``catch_up`` (RocksDB's TryCatchUpWithPrimary), which replays
the writer's newer MANIFEST and WAL entries. Each reader keeps its own few files (RocksDB's info
log) in ``<store.secondary_dir>/<pid>-<random hex>``, and ``close`` removes that folder.

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
)
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


class FeatureStoreReader:
    """A read-only view of the store that stays current through ``catch_up``. Open it with ``open``."""

    def __init__(self, handles: StoreHandles, secondary_path: Path, catch_up_interval_ms: int) -> None:
        self._handles = handles
        self._users = handles.families[USERS]
        self._videos = handles.families[VIDEOS]
        self._meta = handles.families[META]
        self._secondary_path = secondary_path
        self._catch_up_interval_ms = catch_up_interval_ms
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
        secondary_path = store_settings.secondary_dir / f"{os.getpid()}-{secrets.token_hex(4)}"
        secondary_path.mkdir(parents=True)
        try:
            handles = open_secondary(store_settings.path, secondary_path)
        except BaseException:
            shutil.rmtree(secondary_path, ignore_errors=True)
            raise
        logger.info("opened the feature store at %s as a secondary instance in %s", store_settings.path,
                    secondary_path)
        return cls(handles, secondary_path, store_settings.catch_up_interval_ms)

    def __enter__(self) -> FeatureStoreReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop the background catch-up, close the store and remove this reader's folder.

        Calling it again does nothing. Reads after close raise rocksdict's ``DbClosedError``.
        """
        with self._lock:
            self._stop_catch_up.set()
            if self._catch_up_thread is not None:
                self._catch_up_thread.join()
                self._catch_up_thread = None
            if self._handles.db is None:
                return
            self._handles.close()
        shutil.rmtree(self._secondary_path, ignore_errors=True)

    def get(self, user_id: str) -> StoredVector | None:
        """Return the user's stored vector, or None if the store has no record of the user."""
        value = raw_get(self._users, user_id.encode("utf-8"))
        return None if value is None else decode_user_value(user_id, value)

    def multi_get(self, user_ids: Sequence[str]) -> list[StoredVector | None]:
        """Return the stored vector of each user, or None for a user the store lacks, in request order."""
        if not user_ids:
            return []
        values = raw_multi_get(self._users, [user_id.encode("utf-8") for user_id in user_ids])
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
        values = raw_multi_get(self._videos, keys)
        found = np.array([value is not None for value in values], dtype=np.bool_)
        present = found.nonzero()[0]
        if present.size == 0:
            return VideoVectors(matrix=np.zeros((len(video_ids), 0), dtype=np.float32), found=found)
        rows = video_vector_rows([keys[i] for i in present], [cast(bytes, values[i]) for i in present])
        matrix = np.zeros((len(video_ids), rows.shape[1]), dtype=np.float32)
        matrix[present] = rows
        return VideoVectors(matrix=matrix, found=found)

    def user_ids(self) -> Iterator[str]:
        """Yield every stored user id, in byte order. It scans the whole users column family."""
        for key, _value in raw_items(self._users):
            yield key.decode("utf-8")

    def status(self) -> StoreStatus:
        """Return the materialiser's offsets, heartbeat, catch-up time and bad-record counts."""
        heartbeat = self._meta.get(HEARTBEAT_KEY)
        caught_up = self._meta.get(CAUGHT_UP_KEY)
        return StoreStatus(
            offsets=read_offsets(self._handles),
            heartbeat_ms=None if heartbeat is None else decode_int64(heartbeat),
            caught_up_ms=None if caught_up is None else decode_int64(caught_up),
            bad_records=read_bad_record_counts(self._handles),
        )

    def catch_up(self) -> None:
        """Apply the writer's changes since the last catch-up, so that reads see them.

        Raises rocksdict's ``DbClosedError`` after ``close``, and ``Exception`` with RocksDB's
        message if the catch-up fails.
        """
        db = self._handles.db
        if db is None:
            _raise_closed(self._handles.path)
        db.try_catch_up_with_primary()

    def start_background_catch_up(self, interval_ms: int | None = None) -> None:
        """Start a daemon thread that calls ``catch_up`` every ``interval_ms`` until ``close``.

        ``interval_ms`` defaults to ``store.catch_up_interval_ms``. A failed catch-up is logged
        and tried again at the next interval.
        """
        interval_s = (interval_ms if interval_ms is not None else self._catch_up_interval_ms) / 1000
        with self._lock:
            if self._handles.db is None:
                _raise_closed(self._handles.path)
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
            except Exception as error:  # rocksdict raises plain Exception with RocksDB's status text.
                self._catch_up_failures += 1
                if self._catch_up_failures <= LOGGED_CATCH_UP_FAILURES or self._catch_up_failures % 100 == 0:
                    logger.warning("catching up with the feature store at %s failed (%s failures so far). Reads "
                                   "return older data until a catch-up succeeds: %s", self._handles.path,
                                   self._catch_up_failures, error)


def _raise_closed(path: Path) -> NoReturn:
    raise DbClosedError(f"the feature store reader of {path} is closed")
