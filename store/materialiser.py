"""The materialiser: copies the feature and embeddings topics into the store and keeps it current.

One read-committed consumer reads both topics. It is assigned every partition by hand, at the
offset stored for it, or at the beginning when the store has none, so no consumer group or
offset commit is involved. Each ``consume`` result goes into the store in one WriteBatch
together with the partitions' next offsets (see ``store.writer``).

Partitions added to a topic later are found by reading the topics' metadata again every
``store.partition_refresh_interval_ms`` (30 s by default), and are read from their beginning.

The store records each topic's Kafka topic id when it first reads the topic. A topic deleted and
created again gets a new id, and its offsets start again at 0, so the stored offsets no longer
describe it: resuming at them would skip the new topic's first records. The materialiser compares
the ids at start and at every partition refresh, and stops with ``TopicRecreatedError`` on a
difference.

The heartbeat in the store means that the materialiser runs and is in contact with Kafka. A
write without records or offset changes happens only after a consume returned a message or a
metadata request for a topic succeeded, so during a Kafka outage the heartbeat stops.

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

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from dreamumm import kafka_io
from dreamumm.config import Settings
from dreamumm.kafka_io import KafkaRecord
from infra.admin import make_admin_client
from infra.topics import TopicError
from store.database import PartitionKey
from store.errors import TopicRecreatedError
from store.writer import StoreWriter, WriteCounts

logger = logging.getLogger(__name__)

METADATA_TIMEOUT_S = 10.0
LOGGED_CONSUMER_ERRORS_PER_CODE = 10
"""Number of occurrences of each consumer error code logged one by one; after them every 100th is logged."""
KAFKA_CONTACT_TIMEOUT_S = 1.0
"""Timeout of the metadata request that confirms contact with Kafka before a heartbeat. A broker on a
working network responds in milliseconds. While Kafka is unreachable, each check blocks the consume
loop for this long."""
KAFKA_OUTAGE_LOG_INTERVAL_S = 60.0
"""While Kafka stays unreachable, the materialiser repeats its warning at this interval."""


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

    def __init__(self, settings: Settings, *, rebuild: bool = False) -> None:
        """Take the store's writer lock and open the store, creating it if needed.

        With ``rebuild``, remove the store folder after taking the lock and create a new, empty
        store, which ``run`` fills from the beginning of both topics. Readers that have the old
        store open move to the new one at their next catch-up.

        Raises:
            StoreLockedError: if another materialiser writes the store. The message names the
                writer lock file and the process that holds it.
            StoreLayoutError: if the store was written with another layout version (without ``rebuild``).
            StoreError: if ``store.path`` is a folder of other files, or RocksDB cannot open the store.
        """
        kafka = settings.kafka
        self._bootstrap_servers = kafka.bootstrap_servers
        self._topics = (kafka.features_topic, kafka.embeddings_topic)
        self._store_settings = settings.store
        self._partition_refresh_interval_s = settings.store.partition_refresh_interval_ms / 1000
        self._writer = StoreWriter(settings.store.path, kafka.features_topic, kafka.embeddings_topic,
                                   settings.embedding.dimension, rebuild=rebuild)
        self._consumer_errors: Counter[int] = Counter()
        self._contact = _KafkaContact(kafka.bootstrap_servers, kafka.features_topic)

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
            TopicRecreatedError: if a topic's id differs from the one stored, at start or at a
                partition refresh.
            StoreFolderRemovedError: if the store folder was removed or replaced during the run.
            KafkaException: if the broker cannot be reached at start, or the consumer fails fatally.
        """
        stop = stop if stop is not None else threading.Event()
        started = time.monotonic()
        consumer = Consumer(self._consumer_config())
        # quiet: a broker outage is logged by this module, rate-limited, not by librdkafka.
        admin = make_admin_client(self._bootstrap_servers, quiet=True)
        try:
            totals, batches, caught_up = self._consume(consumer, admin, stop, until_caught_up)
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

    def _consume(self, consumer: Consumer, admin: AdminClient, stop: threading.Event,
                 until_caught_up: bool) -> tuple[WriteCounts, int, bool]:
        """Run the consume loop, and return the summed write counts, the batch count and whether it ended caught up."""
        store = self._store_settings
        assigned: set[PartitionKey] = set()
        partitions = self._topic_partitions(consumer)
        self._check_topic_ids(admin)
        self._assign_new_partitions(consumer, assigned, partitions)
        at_end: set[PartitionKey] = set()
        # consume() waits up to this long for a full batch, and a heartbeat must not wait longer.
        timeout_s = min(store.poll_timeout_ms, store.heartbeat_interval_ms) / 1000
        heartbeat_interval_s = store.heartbeat_interval_ms / 1000
        next_heartbeat = next_folder_check = time.monotonic()
        next_refresh = time.monotonic() + self._partition_refresh_interval_s
        totals = WriteCounts()
        batches = 0
        caught_up = was_caught_up = False
        started = time.monotonic()

        while not stop.is_set():
            records, broker_responded = self._records_of(consumer.consume(store.max_batch_records, timeout_s), at_end)
            if broker_responded:
                self._contact.confirmed()
            positions = _positions(consumer, assigned)
            caught_up = assigned <= at_end
            now = time.monotonic()
            if now >= next_folder_check:
                next_folder_check = now + heartbeat_interval_s
                self._writer.check_folder()
            moved = any(offset > self._writer.offsets.get(key, -1) for key, offset in positions.items())
            write = bool(records) or moved or (caught_up and not was_caught_up)
            if not write and now >= next_heartbeat:
                # A write of the heartbeat alone must show contact with Kafka, not only a live process.
                write = broker_responded or self._contact.check(consumer)
                if not write:
                    next_heartbeat = now + heartbeat_interval_s
            if write:
                wall_ms = time.time_ns() // 1_000_000
                counts = self._writer.write(records, positions, heartbeat_ms=wall_ms,
                                            caught_up_ms=wall_ms if caught_up else None)
                totals += counts
                batches += 1
                next_heartbeat = now + heartbeat_interval_s
            if caught_up and not was_caught_up:
                logger.info("reached the end of all %s partitions after %.1f s: %s feature and %s embedding records "
                            "read in this run", len(assigned), now - started, totals.feature_records,
                            totals.embedding_records)
            was_caught_up = caught_up
            if caught_up and until_caught_up:
                break
            if now >= next_refresh:
                next_refresh = now + self._partition_refresh_interval_s
                self._refresh_partitions(consumer, admin, assigned)
        return totals, batches, caught_up

    def _records_of(self, messages: list[Message], at_end: set[PartitionKey]) -> tuple[list[KafkaRecord], bool]:
        """Return the messages' records and whether any message came from a broker, and track which
        partitions are at their end."""
        records = []
        broker_responded = False
        for message in messages:
            # Only messages of consumer-wide errors lack a topic, partition and offset.
            topic, partition = cast(str, message.topic()), cast(int, message.partition())
            partition_key = (topic, partition)
            error = message.error()
            if error is None:
                records.append(KafkaRecord(topic, partition, cast(int, message.offset()), message.key(),
                                           message.value(), message.timestamp()[1]))
                at_end.discard(partition_key)
                broker_responded = True
            elif error.code() == KafkaError._PARTITION_EOF:
                at_end.add(partition_key)
                broker_responded = True
            else:
                self._handle_consumer_error(error, message)
        return records, broker_responded

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

    def _refresh_partitions(self, consumer: Consumer, admin: AdminClient, assigned: set[PartitionKey]) -> None:
        """Check the topic ids and assign partitions added since the last refresh.

        Raises:
            TopicRecreatedError: if a topic's id differs from the one stored.
        """
        try:
            partitions = self._topic_partitions(consumer)
            self._check_topic_ids(admin)
        except (KafkaException, TopicError) as error:
            logger.warning("could not read the topics' metadata to check their ids and look for new partitions, "
                           "trying again in %.0f s: %s", self._partition_refresh_interval_s, error)
            return
        self._assign_new_partitions(consumer, assigned, partitions)

    def _check_topic_ids(self, admin: AdminClient) -> None:
        """Compare each topic's Kafka topic id with the stored one, and store the ids not stored yet.

        A store created before topic ids were recorded has none, and records the current ones.

        Raises:
            TopicRecreatedError: if a topic's id differs from the one stored.
            KafkaException: if the topics cannot be described.
        """
        futures = admin.describe_topics(TopicCollection(list(self._topics)), request_timeout=METADATA_TIMEOUT_S)
        current = {topic: str(future.result().topic_id) for topic, future in futures.items()}
        stored = self._writer.topic_ids
        for topic, topic_id in current.items():
            if topic in stored and stored[topic] != topic_id:
                raise TopicRecreatedError(
                    f"topic {topic} has topic id {topic_id}, but the feature store at {self._writer.path} was filled "
                    f"from a topic of that name with id {stored[topic]}. The topic was deleted and created again, so "
                    "the stored offsets point into the old topic and resuming at them would skip records of the new "
                    "one. Run `dreamumm materialise --rebuild` to rebuild the store from the new topic."
                )
        new = {topic: topic_id for topic, topic_id in current.items() if topic not in stored}
        if new:
            self._writer.record_topic_ids(new)
            logger.info("recorded the topic ids %s in the feature store at %s", new, self._writer.path)

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
            # Applies when a stored offset is out of range. A recreated topic is caught by its topic id instead,
            # because the new topic's range can contain the stored offset.
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }


class _KafkaContact:
    """Whether the materialiser is in contact with Kafka, with rate-limited logs of an outage."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._topic = topic
        self._lost_since: float | None = None
        self._next_warning = 0.0

    def check(self, consumer: Consumer) -> bool:
        """Return whether a metadata request for the topic succeeds within KAFKA_CONTACT_TIMEOUT_S."""
        try:
            consumer.list_topics(self._topic, timeout=KAFKA_CONTACT_TIMEOUT_S)
        except KafkaException as error:
            self._lost(error)
            return False
        self.confirmed()
        return True

    def confirmed(self) -> None:
        """Note that a broker responded."""
        if self._lost_since is not None:
            logger.info("contact with Kafka at %s restored after %.1f s; writing heartbeats again",
                        self._bootstrap_servers, time.monotonic() - self._lost_since)
            self._lost_since = None

    def _lost(self, error: KafkaException) -> None:
        now = time.monotonic()
        if self._lost_since is None:
            self._lost_since = now
            self._next_warning = now + KAFKA_OUTAGE_LOG_INTERVAL_S
            logger.warning("no contact with Kafka at %s: a metadata request for topic %s failed (%s). The "
                           "materialiser writes no heartbeat until Kafka responds, so readers see it as silent",
                           self._bootstrap_servers, self._topic, error)
        elif now >= self._next_warning:
            self._next_warning = now + KAFKA_OUTAGE_LOG_INTERVAL_S
            logger.warning("still no contact with Kafka at %s after %.0f s: %s", self._bootstrap_servers,
                           now - self._lost_since, error)


def _positions(consumer: Consumer, assigned: set[PartitionKey]) -> dict[PartitionKey, int]:
    """Return the consumer's position in each assigned partition that has one yet."""
    positions = consumer.position([TopicPartition(topic, partition) for topic, partition in assigned])
    return {(position.topic, position.partition): position.offset for position in positions if position.offset >= 0}

