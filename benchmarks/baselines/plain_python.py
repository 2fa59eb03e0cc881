"""Plain Python baseline of the feature job: one process, kafka-python, fastavro, numpy and RocksDB.

It approximates the fastest job that one Python process can run: each poll of up to
``BATCH_EVENTS`` records is one mini-batch. Records are decoded one by one (one codec call
each). Weights, the per-user sums and the output normalisation run vectorised per batch. State
is read with one multi-key ``get`` and written with one ``WriteBatch`` per batch, and every user
changed by the batch gets one output record, like the Flink job's mini-batch emission.

    .venv-baselines/bin/python -m benchmarks.baselines.plain_python --spec SPEC.json

The process reads the events topic from the earliest offset with manually assigned partitions,
so there is no group rebalance and no offset commit. A restart therefore replays every event,
and it needs a fresh ``state_dir``.
"""

from __future__ import annotations

import logging
import math
import sys
import time

import numpy as np
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from rocksdict import Options, Rdict, WriteBatch, WriteOptions

from benchmarks.baselines.embedding_table import EmbeddingTable, load_embedding_table
from benchmarks.baselines.interest_state import add_events, decode_states, encode_states, encode_user_interests
from benchmarks.baselines.records import Rejection, decode_watch_event, missing_embedding
from benchmarks.baselines.report import RunCounters, RunReport, finish_report, idle_timeout_error, run_baseline
from benchmarks.baselines.spec import BaselineSpec
from jobs.dead_letters import DeadLetterEncoder
from jobs.weighting import EventWeigher
from schemas import WATCH_EVENT, AvroCodec
from schemas.user_interest_encoder import UserInterestEncoder
from schemas.watch_event_reader import WatchEventReader


NAME = "plain-python"
BATCH_EVENTS = 20_000
"""Maximum records per poll, and so per mini-batch."""
FLUSH_TIMEOUT_S = 120.0


class OutputProducer:
    """Writer of feature records and dead letters.

    It is confluent-kafka's producer, not kafka-python's, which builds its record batches in
    Python. Sending 100,000 records of 560 bytes to a local broker on a 2-core machine,
    kafka-python 3.0.12 managed 11,000 records/s and confluent-kafka 2.12.2 about 300,000.
    Delivery reports are requested for failures only, so a successful record costs no callback.
    """

    def __init__(self, bootstrap_servers: str) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._failures: list[str] = []
        self._producer = Producer({
            "bootstrap.servers": bootstrap_servers,
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 1_000_000,
            "delivery.report.only.error": True,
            "on_delivery": self._on_delivery,
        })

    def _on_delivery(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self._failures.append(str(error))

    def produce(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        """Queue one record, waiting for deliveries while the local queue is full."""
        while True:
            try:
                self._producer.produce(topic, value=value, key=key)
                return
            except BufferError:
                self._producer.poll(0.1)

    def poll(self) -> None:
        """Serve delivery callbacks without waiting."""
        self._producer.poll(0)

    def flush(self) -> None:
        """Wait until every queued record is acknowledged; raise KafkaException if any failed."""
        remaining = self._producer.flush(FLUSH_TIMEOUT_S)
        if remaining or self._failures:
            raise KafkaException(
                f"{remaining} records were not acknowledged within {FLUSH_TIMEOUT_S} s and {len(self._failures)} "
                f"failed (first error: {self._failures[:1]}); check the broker at {self._bootstrap_servers}")


class PlainPythonJob:
    """The job's per-batch work, with its counters."""

    def __init__(self, spec: BaselineSpec, table: EmbeddingTable, state: Rdict, producer: OutputProducer) -> None:
        self._spec = spec
        self._table = table
        self._state = state
        self._producer = producer
        self._reader = WatchEventReader(AvroCodec.for_schema(WATCH_EVENT))
        self._weigher = EventWeigher(spec.preference)
        self._dead_letter_encoder = DeadLetterEncoder()
        self._interest_encoder = UserInterestEncoder()
        # A write-ahead log would protect state that this job never restores, because it commits no offsets.
        # NOTE: rocksdict 0.3.29 declares disable_wal as a method in its type stub, but it is a property.
        self._write_options = WriteOptions()
        self._write_options.disable_wal = True
        self.counters = RunCounters()

    def process(self, records: list[ConsumerRecord]) -> None:
        """Decode, weigh and sum one batch of event records, update the state and write the output."""
        spec, rows_by_video = self._spec, self._table.rows_by_video
        max_watch_time_ms = spec.preference.max_watch_time_ms

        # One entry per contributing event, in arrival order. user_rows numbers the batch's users from 0.
        user_rows: dict[str, int] = {}
        user_indices: list[int] = []
        embedding_rows: list[int] = []
        watch_times: list[float] = []
        durations: list[float] = []
        event_times: list[int] = []
        for record in records:
            event = decode_watch_event(self._reader, record.value, max_watch_time_ms)
            if isinstance(event, Rejection):
                self._dead_letter(record, event)
                continue
            row = rows_by_video.get(event.video_id)
            if row is None:
                self._dead_letter(record, missing_embedding(event.video_id, spec.embeddings_topic))
                continue
            user_indices.append(user_rows.setdefault(event.user_id, len(user_rows)))
            embedding_rows.append(row)
            watch_times.append(event.watch_time_ms)
            durations.append(math.nan if event.duration_ms is None else float(event.duration_ms))
            event_times.append(event.event_time_ms)

        self.counters.events_read += len(records)
        self.counters.contributed += len(user_indices)
        if user_rows:
            weights = self._weigher.weights(np.asarray(watch_times), np.asarray(durations))
            self._update_users(list(user_rows), np.asarray(user_indices, dtype=np.int64), weights,
                               np.asarray(embedding_rows, dtype=np.int64), np.asarray(event_times, dtype=np.int64))
        self._producer.poll()

    def _update_users(self, user_ids: list[str], user_indices: np.ndarray, weights: np.ndarray,
                      embedding_rows: np.ndarray, event_times: np.ndarray) -> None:
        keys = [user_id.encode("utf-8") for user_id in user_ids]

        batch = decode_states(user_ids, self._state.get(keys), self._spec.dimension, self._table)
        add_events(batch, user_indices, weights, embedding_rows, event_times, self._table)
        self.counters.users += batch.new_users

        write = WriteBatch(raw_mode=True)
        for key, value in zip(keys, encode_states(batch, self._table)):
            write.put(key, value)
        self._state.write(write, self._write_options)

        fields = batch.fields
        versions = self._table.model_versions
        values = encode_user_interests(
            self._interest_encoder, user_ids, fields["vector_sum"], fields["total_weight"],
            fields["event_count"].tolist(), fields["last_event_time_ms"].tolist(),
            [versions[code] for code in batch.version_codes.tolist()], fields["superseded_event_count"].tolist(),
            int(time.time() * 1000))
        # A value of None is a tombstone, as the Flink job's upsert sink writes for a sum without direction.
        features_topic = self._spec.features_topic
        for key, value in zip(keys, values):
            self._producer.produce(features_topic, key, value)
        self.counters.records_written += len(keys)

    def _dead_letter(self, record: ConsumerRecord, rejection: Rejection) -> None:
        value = self._dead_letter_encoder.encode(rejection.reason, rejection.detail,
                                                 (record.topic, record.partition, record.offset),
                                                 record.key, record.value)
        self._producer.produce(self._spec.dead_letter_topic, None, value)
        self.counters.dead_lettered += 1


def _events_consumer(spec: BaselineSpec) -> KafkaConsumer:
    """Build a consumer assigned to every partition of the events topic, positioned at the earliest offset."""
    consumer = KafkaConsumer(
        bootstrap_servers=spec.bootstrap_servers,
        group_id=spec.consumer_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        # Larger fetches let one poll return a whole batch. The CRC check would cost Python time per record.
        check_crcs=False,
        max_partition_fetch_bytes=16 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
        max_poll_records=BATCH_EVENTS,
    )
    partitions = consumer.partitions_for_topic(spec.events_topic)
    if not partitions:
        consumer.close(autocommit=False)
        raise KafkaException(f"events topic {spec.events_topic} not found on {spec.bootstrap_servers}")
    assignment = [TopicPartition(spec.events_topic, partition) for partition in sorted(partitions)]
    consumer.assign(assignment)
    consumer.seek_to_beginning(*assignment)
    return consumer


def _open_state(spec: BaselineSpec) -> Rdict:
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.set_write_buffer_size(64 * 1024 * 1024)
    return Rdict(str(spec.state_dir / "interest-state"), options)


def run(spec: BaselineSpec) -> RunReport:
    """Run the baseline until ``spec.expected_events`` events are read, and report the run."""
    # kafka-python logs every connection step at INFO.
    logging.getLogger("kafka").setLevel(logging.WARNING)
    spec.state_dir.mkdir(parents=True, exist_ok=True)
    consumer = _events_consumer(spec)
    producer = OutputProducer(spec.bootstrap_servers)
    state = _open_state(spec)
    try:
        started = time.monotonic()
        table, rejected_embeddings = load_embedding_table(spec.bootstrap_servers, spec.embeddings_topic,
                                                          spec.dimension, spec.idle_timeout_s)
        dead_letter_encoder = DeadLetterEncoder()
        for rejected in rejected_embeddings:
            producer.produce(spec.dead_letter_topic, None, rejected.encode(dead_letter_encoder))

        job = PlainPythonJob(spec, table, state, producer)
        last_records_at = time.monotonic()
        counters = job.counters
        while counters.events_read < spec.expected_events:
            remaining = spec.expected_events - counters.events_read
            polled = consumer.poll(timeout_ms=1000, max_records=min(BATCH_EVENTS, remaining))
            if not polled:
                if time.monotonic() - last_records_at > spec.idle_timeout_s:
                    raise idle_timeout_error(spec, counters.events_read)
                continue
            last_records_at = time.monotonic()
            job.process([record for records in polled.values() for record in records])
        producer.flush()
        seconds = time.monotonic() - started
    finally:
        consumer.close(autocommit=False)
        state.close()
    return finish_report(NAME, counters, seconds, spec)


def main(argv: list[str] | None = None) -> int:
    return run_baseline(NAME, run, argv)


if __name__ == "__main__":
    sys.exit(main())
