"""Ending a bounded job that was restored from a checkpoint or savepoint.

NOTE: a bounded Kafka source of flink-sql-connector-kafka 5.0.0-2.2 never finishes after a
restore: the restored split enumerator skips the partition discovery that would tell the
readers there are no more splits (FLINK-31006, FLINK-33466), so the readers stop at their end
offsets and wait. Until a fixed connector is pinned, the job's driver watches the offsets that
the events source commits at each checkpoint, and once they reach the end offsets it stops the
job with a drained savepoint. Draining sends the final watermark through the job, so every
buffered event is joined, summed and committed, as at the end of a bounded run.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, TopicPartition

from dreamumm import kafka_io
from dreamumm.config import Settings

logger = logging.getLogger(__name__)


def events_end_offsets(settings: Settings) -> dict[int, int]:
    """Return the offsets at which the restored job's events source stops.

    These are ``job.events_stop_offsets`` when set. Otherwise the source stops at the offsets
    that were the newest when the job first started, which only the checkpoint holds, so the
    topic's current end offsets stand in for them: a backfill's recorded topic does not grow.
    """
    if settings.job.events_stop_offsets is not None:
        return dict(settings.job.events_stop_offsets)
    offsets = kafka_io.end_offsets(settings.kafka.bootstrap_servers, settings.kafka.events_topic)
    return {partition: high for partition, (_low, high) in offsets.items()}


def committed_offsets(settings: Settings, partitions: list[int]) -> dict[int, int]:
    """Return the events source's committed offset per partition (-1 where none is committed)."""
    group = f"{settings.kafka.consumer_group}-events"
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": group,
                         "enable.auto.commit": False})
    try:
        topic = settings.kafka.events_topic
        committed = consumer.committed([TopicPartition(topic, partition) for partition in partitions], timeout=10)
        return {item.partition: item.offset for item in committed}
    finally:
        consumer.close()


def wait_until_consumed(settings: Settings, end_offsets: dict[int, int], is_running, poll_s: float = 1.0) -> bool:
    """Wait until the committed offsets reach ``end_offsets``; return False if the job stopped first.

    ``is_running`` returns whether the job still runs, so a failed job ends the wait.
    """
    partitions = sorted(end_offsets)
    while is_running():
        committed = committed_offsets(settings, partitions)
        behind = {partition: (committed.get(partition, -1), end) for partition, end in end_offsets.items()
                  if end > 0 and committed.get(partition, -1) < end}
        if not behind:
            return True
        logger.debug("restored bounded job: partitions still behind (committed, end): %s", behind)
        time.sleep(poll_s)
    return False
