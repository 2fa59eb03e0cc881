"""The in-memory table of unit video embeddings that both baselines join events with.

Both baselines read the whole embeddings topic before their first event. This differs from the
Flink job, which joins an event with the newest embedding appended at most
``job.embedding_wait_ms`` after the event: here an embedding appended after an event is not
seen, and one appended long before it is. The two agree when the embeddings are published
before the events, as the benchmark does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from numpy.typing import NDArray

from benchmarks.baselines.records import RejectedRecord, Rejection
from jobs import dead_letters
from jobs.validation import check_embedding_vector
from operators import normalise
from schemas import VIDEO_EMBEDDING, AvroCodec, DecodeError

logger = logging.getLogger(__name__)

CONSUME_BATCH = 10_000
"""Records per ``Consumer.consume`` call while the topic is read."""


@dataclass(frozen=True)
class EmbeddingTable:
    """Unit embeddings of the videos, one row each, and the model version of every row."""

    rows_by_video: dict[str, int]
    """Row index of each video id."""
    vectors: NDArray[np.float32]
    """Unit vectors, shape (videos, dimension), normalised as the Flink job's ``decode_embedding`` does."""
    version_codes: NDArray[np.int64]
    """Per row, the index of its model version in ``model_versions``."""
    model_versions: tuple[str, ...]
    """Distinct embedding model versions."""


@dataclass
class _NewestEmbedding:
    append_time_ms: int
    unit: NDArray[np.float32]
    model_version: str


def load_embedding_table(
    bootstrap_servers: str, topic: str, dimension: int, timeout_s: float
) -> tuple[EmbeddingTable, list[RejectedRecord]]:
    """Read every committed record of the embeddings topic and build the table of the newest per video.

    The newest record of a video is the one with the latest Kafka timestamp (append time on
    the project's topics), and on a tie the one read last. Records that do not decode, or whose
    vector has the wrong dimension, a NaN or infinite value or only zeros, are returned for
    dead-lettering. A tombstone is dead-lettered as ``missing_value`` and removes nothing, as
    in the Flink job.

    Raises:
        TimeoutError: if the records present at the start cannot be read within ``timeout_s``.
        KafkaException: if the topic does not exist or the consumer fails.
    """
    codec = AvroCodec.for_schema(VIDEO_EMBEDDING)
    newest: dict[str, _NewestEmbedding] = {}
    rejected: list[RejectedRecord] = []
    started = time.monotonic()
    for message in _read_whole_topic(bootstrap_servers, topic, timeout_s):
        try:
            record = codec.decode(message.value())
        except DecodeError as error:
            rejected.append(_rejected(message, Rejection(error.reason, error.detail)))
            continue
        except Exception as error:  # noqa: BLE001 - one bad record must not stop the job
            logger.warning("unexpected error decoding a video embedding, dead-lettered: %r", error)
            rejected.append(_rejected(message, Rejection(dead_letters.INVALID_AVRO,
                                                         f"unexpected decoder error: {error!r}")))
            continue
        vector = np.asarray(record["vector"], dtype=np.float64)
        problem = check_embedding_vector(vector, dimension)
        if problem is not None:
            rejected.append(_rejected(message, Rejection(dead_letters.INVALID_EMBEDDING, problem)))
            continue
        append_time_ms = message.timestamp()[1]
        current = newest.get(record["video_id"])
        if current is None or append_time_ms >= current.append_time_ms:
            # The checks above leave a direction, so normalise returns a vector.
            unit = normalise(vector)
            newest[record["video_id"]] = _NewestEmbedding(append_time_ms, unit, record["model_version"])
    table = _build_table(newest, dimension)
    logger.info("read %d embeddings of %d videos from %s in %.2f s, %d rejected for dead-lettering",
                len(newest) + len(rejected), len(newest), topic, time.monotonic() - started, len(rejected))
    return table, rejected


def _build_table(newest: dict[str, _NewestEmbedding], dimension: int) -> EmbeddingTable:
    versions: dict[str, int] = {}
    vectors = np.zeros((len(newest), dimension), dtype=np.float32)
    codes = np.zeros(len(newest), dtype=np.int64)
    rows: dict[str, int] = {}
    for row, (video_id, embedding) in enumerate(newest.items()):
        rows[video_id] = row
        vectors[row] = embedding.unit
        codes[row] = versions.setdefault(embedding.model_version, len(versions))
    return EmbeddingTable(rows, vectors, codes, tuple(versions))


def _rejected(message: Message, rejection: Rejection) -> RejectedRecord:
    return RejectedRecord(rejection, message.topic(), message.partition(), message.offset(), message.key(),
                          message.value())


def _read_whole_topic(bootstrap_servers: str, topic: str, timeout_s: float) -> Iterator[Message]:
    """Yield the committed records of every partition of ``topic`` up to its end at the start of the read."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap_servers,
        "group.id": "dreamumm-baseline-embeddings",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "enable.partition.eof": True,
    })
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s)
        topic_metadata = metadata.topics.get(topic)
        if topic_metadata is None or topic_metadata.error is not None:
            raise KafkaException(f"embeddings topic {topic} not found on {bootstrap_servers}")
        pending = set()
        assignment = []
        for partition in sorted(topic_metadata.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s)
            if high > low:
                pending.add(partition)
                assignment.append(TopicPartition(topic, partition, low))
        consumer.assign(assignment)
        deadline = time.monotonic() + timeout_s
        # A read-committed consumer reports the end of a partition at the last stable offset, so
        # transaction markers and aborted records at the end do not keep the read waiting.
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} timed out after {timeout_s} s; partitions left: {sorted(pending)}")
            for message in consumer.consume(num_messages=CONSUME_BATCH, timeout=0.5):
                error = message.error()
                if error is None:
                    yield message
                elif error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(message.partition())
                else:
                    raise KafkaException(error)
    finally:
        consumer.close()
