"""Opening the store's RocksDB folder through rocksdict, as the one writer or as a secondary reader."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Iterator, Sequence, cast

from rocksdict import AccessType, BlockBasedOptions, ColumnFamily, DBCompressionType, Options, Rdict

from store.errors import StoreError, StoreLayoutError, StoreLockedError, StoreNotFoundError
from store.layout import (
    BAD_RECORDS_PREFIX,
    COLUMN_FAMILIES,
    LAYOUT_VERSION,
    LAYOUT_VERSION_KEY,
    META,
    OFFSETS,
    TOPIC_ID_PREFIX,
    decode_int64,
    encode_int64,
    parse_offset_key,
)

logger = logging.getLogger(__name__)

IDENTITY_FILE = "IDENTITY"
"""RocksDB's file of the database's unique id, inside the store folder."""

PartitionKey = tuple[str, int]
"""(topic, partition)."""

BLOOM_BITS_PER_KEY = 10
"""Bloom filter bits per key of every column family. RocksDB documents about 1% false positives at
10 bits, so a lookup of a missing key rarely reads a data block."""

MAX_INFO_LOG_BYTES = 1024 * 1024
"""Size at which RocksDB starts a new info log file (``LOG``) and renames the old one ``LOG.old.<time>``.
RocksDB writes the log through a buffer that it flushes every few seconds, so a file can grow a
little past this size before it is rotated."""
KEPT_INFO_LOG_FILES = 3
"""Number of info log files RocksDB keeps, the current ``LOG`` included, so each writer and reader keeps
about ``KEPT_INFO_LOG_FILES * MAX_INFO_LOG_BYTES`` of log."""


class StoreHandles:
    """An open store: the database, each column family as an Rdict, and their handles for write batches.

    ``close`` must run to release the database. rocksdict keeps it open, with its LOCK file,
    while any column family Rdict is open or any ColumnFamily handle is referenced.
    """

    def __init__(self, db: Rdict, path: Path) -> None:
        self.path = path
        self.db: Rdict | None = db
        self.families: dict[str, Rdict] = {name: db.get_column_family(name) for name in COLUMN_FAMILIES}
        self.handles: dict[str, ColumnFamily] = {name: db.get_column_family_handle(name) for name in COLUMN_FAMILIES}

    def close(self) -> None:
        """Close the column families and the database. Calling it again does nothing.

        Every close is tried, and the first failure is raised after the others. A close can fail
        when the store folder was deleted, because RocksDB then cannot write its new WAL file.
        """
        if self.db is None:
            return
        db, families = self.db, self.families
        self.db = None
        self.families = {}
        self.handles = {}
        errors: list[Exception] = []
        for family in [*families.values(), db]:
            try:
                family.close()
            except Exception as error:  # rocksdict raises plain Exception with RocksDB's status text.
                errors.append(error)
        if errors:
            raise errors[0]


def open_primary(path: Path) -> StoreHandles:
    """Open the store at ``path`` for writing, creating it if needed.

    The caller must hold the store's ``WriterLock`` (``store.lock``) first, because RocksDB's own
    LOCK file no longer guards ``path`` once the folder is deleted.

    Raises:
        StoreLockedError: if another materialiser has the store open.
        StoreLayoutError: if the store was written with another layout version.
        StoreError: if ``path`` is a folder of other files, or RocksDB cannot open the store.
    """
    if not (path / "CURRENT").is_file():
        _create_store(path)
    try:
        db = Rdict(str(path), _db_options(),
                   column_families={name: _family_options() for name in COLUMN_FAMILIES})
    except Exception as error:  # rocksdict raises plain Exception with RocksDB's status text.
        if _is_lock_error(error):
            raise StoreLockedError(
                f"the feature store at {path} is locked: another materialiser is writing it ({error}). "
                "Stop that materialiser, or set store.path to another folder."
            ) from error
        raise StoreError(f"opening the feature store at {path} failed: {error}") from error
    handles = StoreHandles(db, path)
    try:
        _check_or_set_layout_version(handles)
    except StoreLayoutError:
        handles.close()
        raise
    return handles


def open_secondary(path: Path, secondary_path: Path) -> StoreHandles:
    """Open the store at ``path`` as a RocksDB secondary instance that keeps its own files in ``secondary_path``.

    Raises:
        StoreNotFoundError: if no store exists at ``path`` yet.
        StoreLayoutError: if the folder lacks the store's column families or has another layout version.
        StoreError: if RocksDB cannot open the folder.
    """
    # Checked first because opening a missing path creates an empty folder there.
    if not (path / "CURRENT").is_file():
        raise StoreNotFoundError(
            f"no feature store found at {path} (store.path). Run `dreamumm materialise` first to create it."
        )
    missing = sorted(set(COLUMN_FAMILIES) - set(Rdict.list_cf(str(path), Options(raw_mode=True))))
    if missing:
        raise StoreLayoutError(
            f"{path} is a RocksDB folder without the feature store's column families {missing}. "
            "Point store.path at a folder that `dreamumm materialise` writes."
        )
    try:
        db = Rdict(str(path), _db_options(),
                   column_families={name: _family_options() for name in COLUMN_FAMILIES},
                   access_type=AccessType.secondary(str(secondary_path)))
    except Exception as error:  # rocksdict raises plain Exception with RocksDB's status text.
        raise StoreError(f"opening the feature store at {path} as a secondary instance failed: {error}") from error
    handles = StoreHandles(db, path)
    stored = handles.families[META].get(LAYOUT_VERSION_KEY)
    # A store without a version is one whose writer has only just created it, and is empty.
    if stored is not None and decode_int64(stored) != LAYOUT_VERSION:
        handles.close()
        raise StoreLayoutError(_version_message(path, decode_int64(stored)))
    return handles


def read_store_id(path: Path) -> str | None:
    """Return the id of the store at ``path``, or None if the folder or its id file is missing.

    The id is the content of RocksDB's IDENTITY file, a random UUID that RocksDB writes when it
    creates a database and keeps for the database's life. A rebuilt store at the same path has
    another id, so comparing ids shows whether ``path`` still contains the database opened earlier.
    It costs one small file read and needs no open database.
    """
    try:
        return (path / IDENTITY_FILE).read_text(encoding="ascii").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None


def remove_store(path: Path) -> bool:
    """Remove the store folder at ``path`` for a rebuild, and return whether there was one.

    The caller must hold the store's ``WriterLock``. The folder is renamed to
    ``<name>.removing-<pid>`` first, so readers see it vanish at once rather than file by file.
    NOTE: a process killed during the removal leaves that folder behind.

    Raises:
        StoreError: if ``path`` is a folder of other files, which this function does not delete.
        StoreLockedError: if a process that does not take the writer lock, such as a materialiser of
            an older dreamumm version, still has the store open.
    """
    if not path.exists():
        return False
    if not _is_store_folder(path):
        raise StoreError(f"store.path {path} is not a feature store folder, so the rebuild does not remove it. "
                         "Remove it yourself, or set store.path to another folder.")
    _check_rocksdb_lock_free(path)
    removing = path.with_name(f"{path.name}.removing-{os.getpid()}")
    shutil.rmtree(removing, ignore_errors=True)
    os.rename(path, removing)
    shutil.rmtree(removing)
    logger.info("removed the feature store folder %s to rebuild the store", path)
    return True


def read_offsets(handles: StoreHandles) -> dict[PartitionKey, int]:
    """Return the stored next offset of every partition."""
    return {parse_offset_key(key): decode_int64(value) for key, value in raw_items(handles.families[OFFSETS])}


def read_bad_record_counts(handles: StoreHandles) -> dict[str, int]:
    """Return the stored count of skipped records per ``<source>/<reason>``."""
    counts = {}
    for key, value in raw_items(handles.families[META], BAD_RECORDS_PREFIX):
        if not key.startswith(BAD_RECORDS_PREFIX):
            break
        counts[key[len(BAD_RECORDS_PREFIX):].decode("utf-8")] = decode_int64(value)
    return counts


# The store opens every column family in raw mode, where rocksdict takes and returns bytes. Its
# type stubs allow any key type and return Any, so these helpers state the bytes types once.


def raw_get(family: Rdict, key: bytes) -> bytes | None:
    """Return the value at ``key``, or None if the key is missing."""
    return cast(bytes | None, family.get(key))


def raw_multi_get(family: Rdict, keys: Sequence[bytes]) -> list[bytes | None]:
    """Return the value at each key, or None for a missing key, with one RocksDB multi-get."""
    return cast(list[bytes | None], family.get(cast(list[Any], keys)))


def raw_items(family: Rdict, from_key: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
    """Yield the (key, value) pairs of a column family in key order, from ``from_key`` on if given."""
    return cast(Iterator[tuple[bytes, bytes]], family.items(from_key=from_key))


def read_topic_ids(handles: StoreHandles) -> dict[str, str]:
    """Return the stored Kafka topic id of every topic whose records the store contains."""
    topic_ids = {}
    for key, value in raw_items(handles.families[META], TOPIC_ID_PREFIX):
        if not key.startswith(TOPIC_ID_PREFIX):
            break
        topic_ids[key[len(TOPIC_ID_PREFIX):].decode("utf-8")] = value.decode("utf-8")
    return topic_ids


def _db_options() -> Options:
    """Return the options of the database: those of every column family, plus the info log's limits."""
    options = _family_options()
    options.set_max_log_file_size(MAX_INFO_LOG_BYTES)
    options.set_keep_log_file_num(KEPT_INFO_LOG_FILES)
    # NOTE: rocksdict 0.3.29 has no setter for RocksDB's info_log_level, so the log stays at INFO.
    # A secondary instance logs a few lines for each catch-up that finds new changes.
    return options


def _family_options() -> Options:
    """Return the options of every column family. The writer and the readers use the same ones.

    Vectors are float32 noise to a compressor, so blocks are left uncompressed and a read
    needs no decompression. A reader uses the Bloom filters only when its options name the same
    filter policy as the writer's, which is why both take their options from here.
    """
    options = Options(raw_mode=True)
    table = BlockBasedOptions()
    table.set_bloom_filter(BLOOM_BITS_PER_KEY, False)
    options.set_block_based_table_factory(table)
    options.set_compression_type(DBCompressionType.none())
    return options


def _create_store(path: Path) -> None:
    """Create an empty store at ``path`` that readers see either whole or not at all.

    RocksDB writes CURRENT before it adds the column families one by one, so a reader opening
    a store being created in place could find some missing. The store is built in a sibling
    folder and renamed to ``path``, which is atomic. If another process renamed its store there
    first, the rename fails and that store is used.
    NOTE: a process killed during the creation leaves its ``<name>.creating-<pid>`` folder behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    building = path.with_name(f"{path.name}.creating-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    options = _db_options()
    options.create_if_missing(True)
    options.create_missing_column_families(True)
    db = Rdict(str(building), options, column_families={name: _family_options() for name in COLUMN_FAMILIES})
    meta = db.get_column_family(META)
    try:
        meta.put(LAYOUT_VERSION_KEY, encode_int64(LAYOUT_VERSION))
    finally:
        meta.close()
        db.close()
    try:
        # Replaces a missing or empty folder, and fails on a folder with files.
        os.rename(building, path)
    except OSError as error:
        shutil.rmtree(building, ignore_errors=True)
        if not (path / "CURRENT").is_file():
            raise StoreError(f"store.path {path} is a folder with other files, not a feature store ({error}). "
                             "Set store.path to a new or empty folder.") from error
        return
    logger.info("created the feature store at %s", path)


def _is_lock_error(error: Exception) -> bool:
    # RocksDB's texts: "While lock file: <path>/LOCK: Resource temporarily unavailable" from another
    # process, and "lock hold by current process ... <path>/LOCK: No locks available" from this one.
    return "/LOCK:" in str(error)


def _is_store_folder(path: Path) -> bool:
    """Return whether ``path`` is an empty folder or a RocksDB folder with the store's column families."""
    if not path.is_dir():
        return False
    if not (path / "CURRENT").is_file():
        return not any(path.iterdir())
    try:
        families = Rdict.list_cf(str(path), Options(raw_mode=True))
    except Exception:  # rocksdict raises plain Exception with RocksDB's status text.
        return False
    return set(COLUMN_FAMILIES) <= set(families)


def _check_rocksdb_lock_free(path: Path) -> None:
    """Raise StoreLockedError if a process holds RocksDB's LOCK file of the store at ``path``.

    RocksDB 9.8 locks that file with fcntl(F_SETLK), a POSIX record lock, which ``fcntl.lockf``
    tests. Closing the file drops every POSIX lock this process has on it, which is safe here
    because this process holds the writer lock and so has no store at ``path`` open for writing.
    """
    lock_file = path / "LOCK"
    if not lock_file.is_file():
        return
    with lock_file.open("r+b") as file:
        try:
            fcntl.lockf(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            raise StoreLockedError(
                f"the feature store at {path} is still open for writing by another process ({lock_file} is locked), "
                "although nobody holds the writer lock. Stop that process, which may be a materialiser of an older "
                "dreamumm version, and run the rebuild again."
            ) from error
        fcntl.lockf(file, fcntl.LOCK_UN)


def _check_or_set_layout_version(handles: StoreHandles) -> None:
    meta = handles.families[META]
    stored = meta.get(LAYOUT_VERSION_KEY)
    if stored is None:
        meta.put(LAYOUT_VERSION_KEY, encode_int64(LAYOUT_VERSION))
    elif decode_int64(stored) != LAYOUT_VERSION:
        raise StoreLayoutError(_version_message(handles.path, decode_int64(stored)))


def _version_message(path: Path, version: int) -> str:
    return (f"the feature store at {path} has layout version {version}, but this version of dreamumm uses "
            f"{LAYOUT_VERSION}. Run `dreamumm materialise --rebuild` to rebuild the store from the topics, or set "
            "store.path to a new folder.")
