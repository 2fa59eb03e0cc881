"""The materialiser: copies the feature and embeddings topics into the store and keeps it current.

One read-committed consumer reads both topics. It is assigned every partition by hand, at the
offset stored for it, or at the beginning when the store has none, so no consumer group or
offset commit is involved. Each ``consume`` result goes into the store in one WriteBatch
together with the partitions' next offsets (see ``store.writer``).

Partitions added to a topic later are found by reading the topics' metadata again every
``store.partition_refresh_interval_ms`` (30 s by default), and are read from their beginning.

Per user, the newest record by offset wins, and a tombstone deletes the user. One user's
records share a partition while the partition count stays the same.
NOTE: after a topic gets more partitions, the key partitioner can put a user's newer records in
another partition than the older ones. Then the order between the two partitions is not
defined, and an older record read last would win until the user's next record.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from types import TracebackType
from typing import Any, cast

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from dreamumm import kafka_io
from dreamumm.config import Settings
from dreamumm.kafka_io import KafkaRecord
from infra.topics import TopicError
from store.database import PartitionKey
from store.writer import StoreWriter, WriteCounts

logger = logging.getLogger(__name__)

METADATA_TIMEOUT_S = 10.0
LOGGED_CONSUMER_ERRORS_PER_CODE = 10
"""Number of occurrences of each consumer error code logged one by one; after them every 100th is logged."""


@dataclass(frozen=True)
class MaterialiserStats:
    """Totals of one ``Materialiser.run``."""

    feature_records: int
    """Records read from the feature topic, tombstones and skipped records included."""
    embedding_records: int
    """Records read from the embeddings topic, skipped records included."""
    users_written: int
    """Feature records stored as a user's newest vector."""
    users_deleted: int
    """Tombstones applied, each deleting a user."""
    videos_written: int
    """Embedding records stored."""
    bad_records: int
    """Records skipped because they could not be decoded or used. The store's meta counts them by reason."""
    batches: int
    """Write batches committed, including those that carry only the heartbeat."""
    caught_up: bool
    """Whether every assigned partition was at its end when ``run`` returned."""
    seconds: float
    """Wall-clock duration of the run."""


class Materialiser:
    """The store's one writer, fed from the feature and embeddings topics of ``settings``.

    The store opens at construction, so a second materialiser on the same ``store.path`` fails
    there with ``StoreLockedError``. Use it as a context manager, or call ``close``.
    """

    def __init__(self, settings: Settings) -> None:
        kafka = settings.kafka
        self._bootstrap_servers = kafka.bootstrap_servers
        self._topics = (kafka.features_topic, kafka.embeddings_topic)
        self._store_settings = settings.store
        self._partition_refresh_interval_s = settings.store.partition_refresh_interval_ms / 1000
        self._writer = StoreWriter(settings.store.path, kafka.features_topic, kafka.embeddings_topic,
                                   settings.embedding.dimension)
        self._consumer_errors: Counter[int] = Counter()

    def close(self) -> None:
        """Close the store and release its lock."""
        self._writer.close()

    def __enter__(self) -> Materialiser:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def run(self, stop: threading.Event | None = None, until_caught_up: bool = False) -> MaterialiserStats:
        """Consume both topics into the store until ``stop`` is set.

        With ``until_caught_up``, return as soon as every partition of both topics has reached
        its end, that is the last stable offset that a read-committed consumer may read.

        Raises:
            TopicError: if either topic does not exist at start.
            KafkaException: if the broker cannot be reached at start, or the consumer fails fatally.
        """
        stop = stop if stop is not None else threading.Event()
        started = time.monotonic()
        consumer = Consumer(self._consumer_config())
        try:
            totals, batches, caught_up = self._consume(consumer, stop, until_caught_up)
        finally:
            consumer.close()
        return MaterialiserStats(
            feature_records=totals.feature_records,
            embedding_records=totals.embedding_records,
            users_written=totals.users_written,
            users_deleted=totals.users_deleted,
            videos_written=totals.videos_written,
            bad_records=totals.bad_records,
            batches=batches,
            caught_up=caught_up,
            seconds=time.monotonic() - started,
        )

    def _consume(self, consumer: Consumer, stop: threading.Event,
                 until_caught_up: bool) -> tuple[WriteCounts, int, bool]:
        """Run the consume loop, and return the summed write counts, the batch count and whether it ended caught up."""
        store = self._store_settings
        assigned: set[PartitionKey] = set()
        self._assign_new_partitions(consumer, assigned, self._topic_partitions(consumer))
        at_end: set[PartitionKey] = set()
        # consume() waits up to this long for a full batch, and a heartbeat must not wait longer.
        timeout_s = min(store.poll_timeout_ms, store.heartbeat_interval_ms) / 1000
        heartbeat_interval_s = store.heartbeat_interval_ms / 1000
        last_write = -heartbeat_interval_s
        next_refresh = time.monotonic() + self._partition_refresh_interval_s
        totals = WriteCounts()
        batches = 0
        caught_up = was_caught_up = False
        started = time.monotonic()

        while not stop.is_set():
            records = self._records_of(consumer.consume(store.max_batch_records, timeout_s), at_end)
            positions = _positions(consumer, assigned)
            caught_up = assigned <= at_end
            now = time.monotonic()
            moved = any(offset > self._writer.offsets.get(key, -1) for key, offset in positions.items())
            if records or moved or now - last_write >= heartbeat_interval_s or (caught_up and not was_caught_up):
                wall_ms = time.time_ns() // 1_000_000
                counts = self._writer.write(records, positions, heartbeat_ms=wall_ms,
                                            caught_up_ms=wall_ms if caught_up else None)
                totals += counts
                batches += 1
                last_write = now
            if caught_up and not was_caught_up:
                logger.info("reached the end of all %s partitions after %.1f s: %s feature and %s embedding records "
                            "read in this run", len(assigned), now - started, totals.feature_records,
                            totals.embedding_records)
            was_caught_up = caught_up
            if caught_up and until_caught_up:
                break
            if now >= next_refresh:
                next_refresh = now + self._partition_refresh_interval_s
                self._refresh_partitions(consumer, assigned)
        return totals, batches, caught_up

    def _records_of(self, messages: list[Message], at_end: set[PartitionKey]) -> list[KafkaRecord]:
        """Return the messages' records, and track which partitions are at their end."""
        records = []
        for message in messages:
            # Only messages of consumer-wide errors lack a topic, partition and offset.
            topic, partition = cast(str, message.topic()), cast(int, message.partition())
            partition_key = (topic, partition)
            error = message.error()
            if error is None:
                records.append(KafkaRecord(topic, partition, cast(int, message.offset()), message.key(),
                                           message.value(), message.timestamp()[1]))
                at_end.discard(partition_key)
            elif error.code() == KafkaError._PARTITION_EOF:
                at_end.add(partition_key)
            else:
                self._handle_consumer_error(error, message)
        return records

    def _handle_consumer_error(self, error: KafkaError, message: Message) -> None:
        if error.fatal():
            raise KafkaException(error)
        # librdkafka retries the others by itself, such as a broker that is down for a while.
        self._consumer_errors[error.code()] += 1
        count = self._consumer_errors[error.code()]
        if count > LOGGED_CONSUMER_ERRORS_PER_CODE and count % 100 != 0:
            return
        # Errors of the whole consumer, such as all brokers down, have no topic.
        where = "" if message.topic() is None else f" on topic {message.topic()} partition {message.partition()}"
        logger.warning("consumer error%s: %s (seen %s times, and the consumer retries)", where, error, count)

    def _topic_partitions(self, consumer: Consumer) -> set[PartitionKey]:
        """Return the partitions of both topics, or raise TopicError if a topic does not exist."""
        partitions: set[PartitionKey] = set()
        for topic in self._topics:
            metadata = kafka_io.cluster_metadata(consumer, self._bootstrap_servers, METADATA_TIMEOUT_S, topic)
            topic_metadata = metadata.topics.get(topic)
            if topic_metadata is None or topic_metadata.error is not None:
                raise TopicError(f"topic {topic} not found on {self._bootstrap_servers}. Create it with "
                                 "`dreamumm create-topics`, or check kafka.features_topic and kafka.embeddings_topic")
            partitions.update((topic, partition) for partition in topic_metadata.partitions)
        return partitions

    def _refresh_partitions(self, consumer: Consumer, assigned: set[PartitionKey]) -> None:
        try:
            partitions = self._topic_partitions(consumer)
        except (KafkaException, TopicError) as error:
            logger.warning("could not read the topics' metadata to look for new partitions, trying again in %.0f s: %s",
                           self._partition_refresh_interval_s, error)
            return
        self._assign_new_partitions(consumer, assigned, partitions)

    def _assign_new_partitions(self, consumer: Consumer, assigned: set[PartitionKey],
                               partitions: set[PartitionKey]) -> None:
        new = sorted(partitions - assigned)
        if not new:
            return
        stored = self._writer.offsets
        consumer.incremental_assign([TopicPartition(topic, partition, stored.get((topic, partition), OFFSET_BEGINNING))
                                     for topic, partition in new])
        resumed = sum(1 for key in new if key in stored)
        logger.info("assigned %s partitions of %s into the store at %s: %s at stored offsets, %s from the beginning",
                    len(new), " and ".join(self._topics), self._writer.path, resumed, len(new) - resumed)
        assigned.update(new)

    def _consumer_config(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self._bootstrap_servers,
            # The consumer is assigned its partitions and never commits, so the group id is only a label.
            "group.id": "dreamumm-materialiser",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "isolation.level": "read_committed",
            # Applies when a stored offset is out of range, for example after the topic was recreated.
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }


def _positions(consumer: Consumer, assigned: set[PartitionKey]) -> dict[PartitionKey, int]:
    """Return the consumer's position in each assigned partition that has one yet."""
    positions = consumer.position([TopicPartition(topic, partition) for topic, partition in assigned])
    return {(position.topic, position.partition): position.offset for position in positions if position.offset >= 0}

