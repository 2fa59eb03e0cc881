"""Quix Streams baseline of the feature job: a StreamingDataFrame with RocksDB state, one event at a time.

The pipeline is what a Quix Streams user would write. A custom deserializer decodes, validates
and weighs each WatchEvent, and one step joins it with the embedding table. A stateful step
then updates the user's state, stored as bytes with ``State.get_bytes``/``set_bytes`` so that
no JSON is involved. Every event writes one record: its user's new UserInterest, or the
DeadLetter of a rejected event. Per-event output is Quix Streams' natural model, because it
has no mini-batches.

    .venv-baselines/bin/python -m benchmarks.baselines.quix_streams_job --spec SPEC.json

Quix Streams keeps the state in RocksDB with a changelog topic, its default, and resumes from
the consumer group's committed offsets. Each run therefore needs a new consumer group, which
the baseline checks before it starts.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from quixstreams import Application, State, message_context
from quixstreams.models import Deserializer, SerializationContext, Serializer, Topic

from benchmarks.baselines.embedding_table import EmbeddingTable, load_embedding_table
from benchmarks.baselines.interest_state import InterestState
from benchmarks.baselines.records import RejectedRecord, Rejection, decode_watch_event, missing_embedding
from benchmarks.baselines.report import RunCounters, RunReport, finish_report, idle_timeout_error, run_baseline
from benchmarks.baselines.spec import BaselineSpec
from jobs.dead_letters import DeadLetterEncoder
from jobs.validation import WatchEvent
from jobs.weighting import EventWeigher
from schemas import WATCH_EVENT, AvroCodec
from schemas.user_interest_encoder import UserInterestEncoder
from schemas.watch_event_reader import WatchEventReader

logger = logging.getLogger("benchmarks.baselines.quix_streams_job")

NAME = "quix-streams"
STATE_KEY = b"interest"
"""Key of the user's state within the state of its message key."""


@dataclass(frozen=True, slots=True)
class WeightedEvent:
    """A valid watch event with its preference weight and its value, kept for a dead letter."""

    event: WatchEvent
    weight: float
    value: bytes


@dataclass(frozen=True, slots=True)
class RejectedEvent:
    """An event value that cannot be used, kept whole for its dead letter."""

    rejection: Rejection
    value: bytes | None


@dataclass(frozen=True, slots=True)
class JoinedEvent:
    """A weighted event with the row of its video in the embedding table."""

    event: WatchEvent
    weight: float
    embedding_row: int


@dataclass(frozen=True, slots=True)
class InterestUpdate:
    """A user's state after an event, to be written as a UserInterest record."""

    user_id: str
    state: InterestState


class WatchEventDeserializer(Deserializer):
    """Deserializer of WatchEvent values into weighted events, or rejections that carry the value."""

    def __init__(self, spec: BaselineSpec) -> None:
        super().__init__()
        self._reader = WatchEventReader(AvroCodec.for_schema(WATCH_EVENT))
        self._weigher = EventWeigher(spec.preference)
        self._max_watch_time_ms = spec.preference.max_watch_time_ms

    def __call__(self, value: bytes, ctx: SerializationContext) -> WeightedEvent | RejectedEvent:
        event = decode_watch_event(self._reader, value, self._max_watch_time_ms)
        if isinstance(event, Rejection):
            return RejectedEvent(event, value)
        # The scalar form of EventWeigher.weights, equal to it within a few ulps.
        return WeightedEvent(event, self._weigher.weight(event.watch_time_ms, event.duration_ms), value)


class UserInterestSerializer(Serializer):
    """Serializer of a user's state into a UserInterest value, or None (a tombstone) for a sum without direction."""

    def __init__(self) -> None:
        self._encoder = UserInterestEncoder()

    def __call__(self, value: InterestUpdate, ctx: SerializationContext) -> bytes | None:
        return value.state.encode(self._encoder, value.user_id, int(time.time() * 1000))


class DeadLetterSerializer(Serializer):
    """Serializer of rejected records into DeadLetter values."""

    def __init__(self) -> None:
        self._encoder = DeadLetterEncoder()

    def __call__(self, value: RejectedRecord, ctx: SerializationContext) -> bytes:
        return value.encode(self._encoder)


class QuixStreamsJob:
    """The pipeline's step functions, with the run's counters."""

    def __init__(self, spec: BaselineSpec, table: EmbeddingTable) -> None:
        self._spec = spec
        self._table = table
        self._reader = WatchEventReader(AvroCodec.for_schema(WATCH_EVENT))
        self.counters = RunCounters()
        self.mismatched_keys = 0

    def build(self, app: Application) -> None:
        """Declare the topics and the StreamingDataFrame of the job in ``app``."""
        spec = self._spec
        events = app.topic(spec.events_topic, key_deserializer="bytes",
                           value_deserializer=WatchEventDeserializer(spec))
        features = app.topic(spec.features_topic, key_serializer="str", value_serializer=UserInterestSerializer())
        dead_letters = app.topic(spec.dead_letter_topic, key_serializer="bytes",
                                 value_serializer=DeadLetterSerializer())

        def output_topic(value: InterestUpdate | RejectedRecord, key: bytes | None, timestamp: int,
                         headers: Any) -> Topic:
            return features if isinstance(value, InterestUpdate) else dead_letters

        def output_key(value: InterestUpdate | RejectedRecord) -> str | None:
            # Feature records are keyed by user id, and dead letters have no key, as in the Flink job.
            return value.user_id if isinstance(value, InterestUpdate) else None

        # One chain with the output topic chosen per record: branches would each get a pickled copy
        # of every value, which Quix Streams makes so that branches cannot see each other's changes.
        sdf = app.dataframe(events)
        sdf = sdf.apply(self.join_embedding)
        sdf = sdf.apply(self.process, stateful=True, metadata=True)
        sdf.to_topic(output_topic, key=output_key)

    def join_embedding(self, value: WeightedEvent | RejectedEvent | None) -> JoinedEvent | RejectedEvent:
        """Attach the video's embedding row to a weighted event, or reject the event."""
        self.counters.events_read += 1
        if value is None:
            # Quix Streams does not call the deserializer for a record without a value, so the
            # codec's rejection of None (missing_value) is taken here.
            rejection = decode_watch_event(self._reader, None, self._spec.preference.max_watch_time_ms)
            return RejectedEvent(rejection, None)
        if isinstance(value, RejectedEvent):
            return value
        row = self._table.rows_by_video.get(value.event.video_id)
        if row is None:
            return RejectedEvent(missing_embedding(value.event.video_id, self._spec.embeddings_topic), value.value)
        return JoinedEvent(value.event, value.weight, row)

    def process(self, value: JoinedEvent | RejectedEvent, key: bytes | None, timestamp: int, headers: Any,
                state: State) -> InterestUpdate | RejectedRecord:
        """Update the user's state with a joined event, or prepare a rejected one for its dead letter."""
        if isinstance(value, RejectedEvent):
            return self.dead_letter(value, key)
        return self.update_interest(value, key, state)

    def dead_letter(self, value: RejectedEvent, key: bytes | None) -> RejectedRecord:
        """Attach where the rejected record came from, for its dead letter."""
        self.counters.dead_lettered += 1
        context = message_context()
        return RejectedRecord(value.rejection, context.topic, context.partition, context.offset, key, value.value)

    def update_interest(self, value: JoinedEvent, key: bytes | None, state: State) -> InterestUpdate:
        """Add the event to its user's state and return the new state."""
        event = value.event
        if key != event.user_id.encode("utf-8"):
            # NOTE: Quix Streams scopes state to the message key. The events topic is keyed by user id,
            # and an event keyed otherwise is summed under its key's state, which the Flink job would not do.
            self.mismatched_keys += 1
        stored = state.get_bytes(STATE_KEY)
        if stored is None:
            interest = InterestState.empty(self._spec.dimension)
            self.counters.users += 1
        else:
            interest = InterestState.from_bytes(stored, self._spec.dimension)
        table = self._table
        interest.add(value.weight, table.vectors[value.embedding_row], event.event_time_ms,
                     table.model_versions[table.version_codes[value.embedding_row]])
        state.set_bytes(STATE_KEY, interest.to_bytes())
        self.counters.contributed += 1
        self.counters.records_written += 1
        return InterestUpdate(event.user_id, interest)


def _check_new_consumer_group(spec: BaselineSpec) -> None:
    """Raise ValueError if the consumer group has committed offsets on the events topic.

    Quix Streams would resume after those offsets, and restore the group's state from its
    changelog topic, so the run would not read ``expected_events`` events from the start.
    """
    consumer = Consumer({"bootstrap.servers": spec.bootstrap_servers, "group.id": spec.consumer_group,
                         "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(spec.events_topic, timeout=spec.idle_timeout_s)
        topic = metadata.topics.get(spec.events_topic)
        if topic is None or topic.error is not None:
            raise KafkaException(f"events topic {spec.events_topic} not found on {spec.bootstrap_servers}")
        partitions = [TopicPartition(spec.events_topic, partition) for partition in sorted(topic.partitions)]
        committed = consumer.committed(partitions, timeout=spec.idle_timeout_s)
    finally:
        consumer.close()
    resumed = {item.partition: item.offset for item in committed if item.offset >= 0}
    if resumed:
        raise ValueError(
            f"consumer group {spec.consumer_group} has committed offsets {resumed} on {spec.events_topic}; "
            "pass a new consumer_group, because Quix Streams would resume after them")


def run(spec: BaselineSpec) -> RunReport:
    """Run the baseline until ``spec.expected_events`` events are read, and report the run."""
    _check_new_consumer_group(spec)
    app = Application(
        broker_address=spec.bootstrap_servers,
        consumer_group=spec.consumer_group,
        auto_offset_reset="earliest",
        state_dir=spec.state_dir,
        loglevel=None,
    )
    started = time.monotonic()
    table, rejected_embeddings = load_embedding_table(spec.bootstrap_servers, spec.embeddings_topic,
                                                      spec.dimension, spec.idle_timeout_s)
    dead_letter_encoder = DeadLetterEncoder()
    with app.get_producer() as producer:
        for rejected in rejected_embeddings:
            producer.produce(topic=spec.dead_letter_topic, value=rejected.encode(dead_letter_encoder))

    job = QuixStreamsJob(spec, table)
    job.build(app)
    # Every event writes exactly one record, so the output count equals the events read. The
    # run returns after its final checkpoint, which flushes the producer and the state.
    app.run(count=spec.expected_events, timeout=spec.idle_timeout_s, collect=False)
    seconds = time.monotonic() - started
    if job.counters.events_read < spec.expected_events:
        raise idle_timeout_error(spec, job.counters.events_read)
    if job.mismatched_keys:
        logger.warning("%d events had a message key other than their user id, so their sums are scoped to that key",
                       job.mismatched_keys)
    return finish_report(NAME, job.counters, seconds, spec)


def main(argv: list[str] | None = None) -> int:
    return run_baseline(NAME, run, argv)


if __name__ == "__main__":
    sys.exit(main())
