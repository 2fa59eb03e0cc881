"""The store's one writer: each call applies topic records with their offsets and meta entries in one WriteBatch.

RocksDB applies a WriteBatch atomically, also after a crash, because its default WAL recovery
mode (point in time) replays whole batches only. So the stored offsets always describe exactly
the records applied, and a materialiser restarted after SIGKILL resumes at them without gaps or
repeats. Writes do not sync the WAL. A power loss can therefore drop the last batches, but it
drops their offsets with them, and the restarted materialiser reads those records again.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Mapping, Sequence

from rocksdict import WriteBatch

from dreamumm.kafka_io import KafkaRecord
from store.database import (
    PartitionKey,
    StoreHandles,
    open_primary,
    read_bad_record_counts,
    read_offsets,
    read_store_id,
    read_topic_ids,
    remove_store,
)
from store.decoding import BadRecord, RecordDecoder, StoreWrite
from store.errors import StoreFolderRemovedError
from store.layout import (
    CAUGHT_UP_KEY,
    HEARTBEAT_KEY,
    META,
    OFFSETS,
    USERS,
    bad_records_key,
    encode_int64,
    offset_key,
    topic_id_key,
)
from store.lock import WriterLock

logger = logging.getLogger(__name__)

FEATURES_SOURCE = "features"
EMBEDDINGS_SOURCE = "embeddings"

LOGGED_BAD_RECORDS_PER_REASON = 10
"""Number of skipped records of each reason logged one by one; after them every 1000th is logged."""


@dataclass(frozen=True)
class WriteCounts:
    """Records that one write applied, by kind. Bad records are counted, not applied."""

    feature_records: int = 0
    embedding_records: int = 0
    users_written: int = 0
    users_deleted: int = 0
    videos_written: int = 0
    bad_records: int = 0

    def __add__(self, other: WriteCounts) -> WriteCounts:
        return WriteCounts(*(getattr(self, field.name) + getattr(other, field.name) for field in fields(self)))


class StoreWriter:
    """The store opened for writing, with its stored offsets and bad-record counts in memory.

    The writer holds the store's writer lock (``store.lock``) from construction until ``close``.
    """

    def __init__(self, path: Path, features_topic: str, embeddings_topic: str, dimension: int, *,
                 rebuild: bool = False) -> None:
        """Take the writer lock and open the store at ``path``, creating it if needed.

        With ``rebuild``, remove the store folder after taking the lock, so that a new, empty store
        is created.

        Raises:
            StoreLockedError: if another process writes the store.
            StoreLayoutError: if the store was written with another layout version.
            StoreError: if ``path`` is a folder of other files, or RocksDB cannot open the store.
        """
        self._lock = WriterLock(path)
        try:
            if rebuild:
                remove_store(path)
            self._handles: StoreHandles = open_primary(path)
        except BaseException:
            self._lock.release()
            raise
        self.store_id: str | None = read_store_id(path)
        """Id of the open store (see ``store.database.read_store_id``)."""
        self._decoder = RecordDecoder(dimension)
        self._sources = {features_topic: FEATURES_SOURCE, embeddings_topic: EMBEDDINGS_SOURCE}
        self.offsets: dict[PartitionKey, int] = read_offsets(self._handles)
        """Next offset to read per partition, as stored."""
        self.bad_record_counts: dict[str, int] = read_bad_record_counts(self._handles)
        """Skipped records per ``<source>/<reason>``, as stored, over the life of the store."""
        self.topic_ids: dict[str, str] = read_topic_ids(self._handles)
        """Kafka topic id per topic, as stored."""
        self._logged_bad_records: Counter[str] = Counter()
        self._warned_partitions: set[PartitionKey] = set()

    @property
    def path(self) -> Path:
        return self._handles.path

    def close(self) -> None:
        """Close the store and release its locks. Calling it again does nothing.

        If the store folder was removed, the failure to close it is logged rather than raised.
        """
        try:
            self._handles.close()
        except Exception as error:  # rocksdict raises plain Exception with RocksDB's status text.
            if read_store_id(self.path) == self.store_id:
                raise
            logger.warning("closing the feature store at %s failed because its folder was removed: %s", self.path,
                           error)
        finally:
            self._lock.release()

    def check_folder(self) -> None:
        """Raise StoreFolderRemovedError if the folder at the store's path no longer contains the open store.

        Writes to a removed folder reach no reader, so the materialiser stops rather than go on.
        """
        found = read_store_id(self.path)
        if found == self.store_id:
            return
        change = "removed" if found is None else f"replaced by another store (id {found})"
        raise StoreFolderRemovedError(
            f"the feature store folder {self.path} (store id {self.store_id}) was {change} while this materialiser "
            "was writing it, so its writes reach no reader. Run `dreamumm materialise --rebuild` to build the "
            "store again."
        )

    def record_topic_ids(self, topic_ids: Mapping[str, str]) -> None:
        """Store the Kafka topic id of each given topic, replacing any stored one."""
        db = self._handles.db
        if db is None:
            raise RuntimeError(f"StoreWriter.record_topic_ids was called after close of the store at {self.path}")
        batch = WriteBatch(raw_mode=True)
        for topic, topic_id in topic_ids.items():
            batch.put(topic_id_key(topic), topic_id.encode("utf-8"), self._handles.handles[META])
        db.write(batch)
        self.topic_ids.update(topic_ids)

    def write(
        self,
        records: Sequence[KafkaRecord],
        positions: Mapping[PartitionKey, int] | None = None,
        *,
        heartbeat_ms: int | None = None,
        caught_up_ms: int | None = None,
    ) -> WriteCounts:
        """Apply ``records``, the partitions' next offsets and the given meta entries in one WriteBatch.

        Records must come in offset order within each partition, as a consumer delivers them,
        because a later record of a key replaces an earlier one. A partition's next offset
        becomes the offset after its last record here, or its entry in ``positions`` when that
        is larger. A read-committed consumer's position moves past transaction markers and
        aborted records, which it never delivers, so ``positions`` lets the stored offsets pass
        them too. The offsets and counts kept in memory change only after the batch is written,
        so a failed write leaves them equal to the store's.
        """
        db = self._handles.db
        if db is None:
            raise RuntimeError(f"StoreWriter.write was called after close of the store at {self.path}")
        writes: dict[tuple[str, bytes], bytes | None] = {}
        next_offsets: dict[PartitionKey, int] = {}
        bad_counts = dict(self.bad_record_counts)
        counts: Counter[str] = Counter()
        for record in records:
            partition_key = (record.topic, record.partition)
            self._warn_if_offset_went_back(record, next_offsets.get(partition_key, self.offsets.get(partition_key)))
            next_offsets[partition_key] = record.offset + 1
            source = self._source_of(record.topic)
            counts[f"{source}_records"] += 1
            try:
                write = self._store_write(source, record)
            except BadRecord as bad:
                reason = f"{source}/{bad.reason}"
                bad_counts[reason] = bad_counts.get(reason, 0) + 1
                counts["bad_records"] += 1
                self._log_bad_record(record, reason, bad.detail, bad_counts[reason])
                continue
            writes[(write.column_family, write.key)] = write.value
            counts[_count_name(write)] += 1

        for partition_key, position in (positions or {}).items():
            current = next_offsets.get(partition_key, self.offsets.get(partition_key))
            if current is None or position > current:
                next_offsets[partition_key] = position
        changed_offsets = {key: offset for key, offset in next_offsets.items() if self.offsets.get(key) != offset}
        changed_bad_counts = {reason: count for reason, count in bad_counts.items()
                              if self.bad_record_counts.get(reason) != count}

        batch = self._batch(writes, changed_offsets, changed_bad_counts, heartbeat_ms, caught_up_ms)
        if not batch.is_empty():
            db.write(batch)
        self.offsets.update(changed_offsets)
        self.bad_record_counts = bad_counts
        return WriteCounts(
            feature_records=counts[f"{FEATURES_SOURCE}_records"],
            embedding_records=counts[f"{EMBEDDINGS_SOURCE}_records"],
            users_written=counts["users_written"],
            users_deleted=counts["users_deleted"],
            videos_written=counts["videos_written"],
            bad_records=counts["bad_records"],
        )

    def _batch(
        self,
        writes: Mapping[tuple[str, bytes], bytes | None],
        offsets: Mapping[PartitionKey, int],
        bad_counts: Mapping[str, int],
        heartbeat_ms: int | None,
        caught_up_ms: int | None,
    ) -> WriteBatch:
        handles = self._handles.handles
        batch = WriteBatch(raw_mode=True)
        for (column_family, key), value in writes.items():
            if value is None:
                batch.delete(key, handles[column_family])
            else:
                batch.put(key, value, handles[column_family])
        for (topic, partition), offset in offsets.items():
            batch.put(offset_key(topic, partition), encode_int64(offset), handles[OFFSETS])
        for reason, count in bad_counts.items():
            batch.put(bad_records_key(reason), encode_int64(count), handles[META])
        if heartbeat_ms is not None:
            batch.put(HEARTBEAT_KEY, encode_int64(heartbeat_ms), handles[META])
        if caught_up_ms is not None:
            batch.put(CAUGHT_UP_KEY, encode_int64(caught_up_ms), handles[META])
        return batch

    def _source_of(self, topic: str) -> str:
        source = self._sources.get(topic)
        if source is None:
            raise ValueError(f"record of topic {topic!r} reached the store writer, which applies only "
                             f"{list(self._sources)}")
        return source

    def _store_write(self, source: str, record: KafkaRecord) -> StoreWrite:
        if source == FEATURES_SOURCE:
            return self._decoder.feature_write(record.key, record.value)
        return self._decoder.embedding_write(record.key, record.value)

    def _log_bad_record(self, record: KafkaRecord, reason: str, detail: str, stored_count: int) -> None:
        self._logged_bad_records[reason] += 1
        seen = self._logged_bad_records[reason]
        if seen <= LOGGED_BAD_RECORDS_PER_REASON or seen % 1000 == 0:
            logger.warning(
                "skipped record of topic %s partition %s offset %s: %s, %s. %s records skipped for %s in this "
                "store so far (each reason logs its first %s records, then every 1000th)",
                record.topic, record.partition, record.offset, reason, detail, stored_count, reason,
                LOGGED_BAD_RECORDS_PER_REASON,
            )

    def _warn_if_offset_went_back(self, record: KafkaRecord, next_offset: int | None) -> None:
        partition_key = (record.topic, record.partition)
        if next_offset is None or record.offset >= next_offset or partition_key in self._warned_partitions:
            return
        self._warned_partitions.add(partition_key)
        logger.warning(
            "topic %s partition %s delivered offset %s, before the stored next offset %s. The topic was probably "
            "deleted and created again, and the store at %s still contains the keys read from the old one. To drop "
            "them, stop the materialiser and run `dreamumm materialise --rebuild`.",
            record.topic, record.partition, record.offset, next_offset, self.path,
        )


def _count_name(write: StoreWrite) -> str:
    if write.column_family == USERS:
        return "users_written" if write.value is not None else "users_deleted"
    return "videos_written"
