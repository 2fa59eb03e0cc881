"""Producing to and reading from Kafka topics with confluent-kafka, outside the Flink job."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Iterable, Iterator

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import ClusterMetadata

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class KafkaRecord:
    """A record read from a topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


def produce(
    bootstrap_servers: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None] | tuple[bytes | None, bytes | None, int]],
    flush_timeout_s: float = 60.0,
) -> int:
    """Write (key, value) or (key, value, timestamp in epoch ms) records to ``topic``; return the count.

    The producer is idempotent. A record without a timestamp gets the producer's current time.

    Raises ``KafkaException`` if any record was not acknowledged within ``flush_timeout_s``.
    """
    producer = Producer({
        "bootstrap.servers": bootstrap_servers,
        "enable.idempotence": True,
        "linger.ms": 20,
        "compression.type": "lz4",
        # Errors only: right after topic creation the broker returns "coordinator load in progress"
        # to the idempotent producer, which retries and logs a warning that is only noise here.
        "log_level": 3,
    })
    failures: list[str] = []

    def on_delivery(error: KafkaError | None, _message: object) -> None:
        if error is not None:
            failures.append(str(error))

    count = 0
    for record in records:
        key, value = record[0], record[1]
        timestamp = record[2] if len(record) > 2 else 0  # 0: librdkafka uses the current time
        while True:
            try:
                producer.produce(topic, key=key, value=value, timestamp=timestamp, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)  # The local queue is full: wait for deliveries.
        count += 1
        if count % 10_000 == 0:
            producer.poll(0)
    remaining = producer.flush(flush_timeout_s)
    if remaining or failures:
        raise KafkaException(
            f"{remaining} records to {topic} were not acknowledged and {len(failures)} failed "
            f"(first error: {failures[:1]}); check that the broker at {bootstrap_servers} is up"
        )
    logger.info("produced %s records to %s", count, topic)
    return count


def end_offsets(bootstrap_servers: str, topic: str, timeout_s: float = 10.0) -> dict[int, tuple[int, int]]:
    """Return {partition: (low, high)} watermark offsets of ``topic``, as a read-committed reader sees them."""
    consumer = _consumer(bootstrap_servers)
    try:
        metadata = cluster_metadata(consumer, bootstrap_servers, timeout_s, topic)
        topic_metadata = metadata.topics.get(topic)
        if topic_metadata is None or topic_metadata.error is not None:
            raise KafkaException(f"topic {topic} not found on {bootstrap_servers}; run `dreamumm create-topics`")
        return {
            partition: consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s)
            for partition in sorted(topic_metadata.partitions)
        }
    finally:
        consumer.close()


def list_topic_names(bootstrap_servers: str, timeout_s: float = 10.0) -> set[str]:
    """Return the names of the topics on the cluster."""
    consumer = _consumer(bootstrap_servers)
    try:
        metadata = cluster_metadata(consumer, bootstrap_servers, timeout_s)
        return set(metadata.topics)
    finally:
        consumer.close()


def count_records(bootstrap_servers: str, topic: str) -> int:
    """Return the number of records between the low and high offsets of every partition."""
    return sum(high - low for low, high in end_offsets(bootstrap_servers, topic).values())


def read_topic(bootstrap_servers: str, topic: str, timeout_s: float = 60.0) -> Iterator[KafkaRecord]:
    """Yield every committed record of ``topic`` present when the call starts, partition by partition.

    Raises ``TimeoutError`` if the records up to those end offsets cannot be read within ``timeout_s``.
    """
    offsets = end_offsets(bootstrap_servers, topic)
    end_by_partition = {partition: high for partition, (low, high) in offsets.items() if high > low}
    if not end_by_partition:
        return
    consumer = _consumer(bootstrap_servers)
    try:
        consumer.assign([TopicPartition(topic, p, offsets[p][0]) for p in end_by_partition])
        deadline = time.monotonic() + timeout_s
        while end_by_partition:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} timed out after {timeout_s} s; partitions left: {end_by_partition}")
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:
                if message.error().code() == KafkaError._PARTITION_EOF:
                    # The end event reports the offset after the last one fetched, transaction
                    # markers included, so it completes a partition whose last offsets are markers.
                    partition = message.partition()
                    if partition in end_by_partition and message.offset() >= end_by_partition[partition]:
                        del end_by_partition[partition]
                        consumer.incremental_unassign([TopicPartition(topic, partition)])
                    continue
                raise KafkaException(message.error())
            partition, offset = message.partition(), message.offset()
            if partition in end_by_partition:
                yield KafkaRecord(topic, partition, offset, message.key(), message.value(), message.timestamp()[1])
                # Transaction markers take offsets too, so stop at the last offset before the end.
                if offset >= end_by_partition[partition] - 1:
                    del end_by_partition[partition]
                    consumer.incremental_unassign([TopicPartition(topic, partition)])
            # The last offsets may hold transaction markers or aborted records, which a read-committed
            # reader never receives. Its position then passes the end, which also completes the partition.
            for done in [p for p in end_by_partition if _position(consumer, topic, p) >= end_by_partition[p]]:
                del end_by_partition[done]
                consumer.incremental_unassign([TopicPartition(topic, done)])
    finally:
        consumer.close()


def cluster_metadata(
    consumer: Consumer, bootstrap_servers: str, timeout_s: float, topic: str | None = None
) -> ClusterMetadata:
    """Fetch cluster metadata, raising KafkaException that names the address when it is unreachable."""
    try:
        return consumer.list_topics(topic, timeout=timeout_s)
    except KafkaException as error:
        raise KafkaException(
            f"could not reach Kafka at {bootstrap_servers} within {timeout_s} s ({error}); start the local "
            "broker with `dreamumm broker start` or point DREAMUMM__KAFKA__BOOTSTRAP_SERVERS at your cluster"
        ) from error


def _position(consumer: Consumer, topic: str, partition: int) -> int:
    positions = consumer.position([TopicPartition(topic, partition)])
    return positions[0].offset if positions and positions[0].offset >= 0 else -1


def _consumer(bootstrap_servers: str) -> Consumer:
    return Consumer({
        "bootstrap.servers": bootstrap_servers,
        "group.id": "dreamumm-reader",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
    })
