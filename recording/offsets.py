"""Listing partition offsets with the AdminClient."""

from __future__ import annotations

from confluent_kafka import IsolationLevel, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec


def list_offsets(
    admin: AdminClient, topic: str, partitions: list[int], spec: OffsetSpec, timeout_s: float
) -> dict[int, int]:
    """Return {partition: offset} for ``spec``, listed with isolation level read_committed.

    For ``OffsetSpec.latest()`` that is the last stable offset: the first offset of the oldest
    open transaction, or the end of the partition if none is open. An offset of -1 means that
    no record matches, such as a timestamp later than every record. Raises KafkaException
    naming the partition.
    """
    requests = {TopicPartition(topic, partition): spec for partition in partitions}
    futures = admin.list_offsets(requests, isolation_level=IsolationLevel.READ_COMMITTED, request_timeout=timeout_s)
    offsets: dict[int, int] = {}
    for topic_partition, future in futures.items():
        try:
            offsets[topic_partition.partition] = future.result().offset
        except KafkaException as error:
            raise KafkaException(
                f"listing offsets of topic {topic!r} partition {topic_partition.partition} failed: {error}"
            ) from error
    return offsets
