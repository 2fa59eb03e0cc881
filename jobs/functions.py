"""The job's Python operators: decode, join with embeddings, and the per-user running sum.

Each class is a PyFlink function. The math lives in ``operators`` and the validation in
``jobs.validation``; this module only moves records, state and timers.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

import numpy as np
from pyflink.common import Row
from pyflink.datastream import KeyedCoProcessFunction, KeyedProcessFunction, OutputTag, ProcessFunction, RuntimeContext
from pyflink.datastream.state import ListStateDescriptor, ValueStateDescriptor
from pyflink.common import Types

from dreamumm.config import EmissionSettings, Settings
from jobs import dead_letters
from jobs.dead_letters import DeadLetterEncoder
from jobs.records import KAFKA_OUTPUT
from jobs.validation import InvalidEvent, validate_event
from jobs.weighting import EventWeigher
from operators import InterestAccumulator
from schemas import USER_INTEREST, VIDEO_EMBEDDING, WATCH_EVENT, AvroCodec, DecodeError

logger = logging.getLogger(__name__)

DEAD_LETTERS = OutputTag("dead-letters", KAFKA_OUTPUT)
"""Side output of every operator that dead-letters records; values are encoded DeadLetter records."""

END_OF_INPUT_MS = 2**63 - 2
"""Event-time timer that fires only at the final watermark, when a bounded input ends.

Flink drops pending processing-time timers at the end of a bounded input, so operators that
hold records behind such timers also register this one to flush them.
"""


def _as_bytes(value: Any) -> bytes | None:
    """Return a PRIMITIVE_ARRAY(BYTE) field as ``bytes`` (thread mode may hand over other sequences)."""
    if value is None or isinstance(value, bytes):
        return value
    return bytes(value)


class _DeadLettering:
    """Mixin for operators that write dead letters and count them per reason."""

    def _open_dead_letters(self, runtime_context: RuntimeContext) -> None:
        self._dead_letter_encoder = DeadLetterEncoder()
        group = runtime_context.get_metrics_group()
        self._dead_letter_counters = {
            reason: group.counter(f"dead_letters_{reason}") for reason in dead_letters.REASONS
        }

    def _dead_letter(
        self, reason: str, detail: str, source: tuple[str, int, int], key: bytes | None, value: bytes | None
    ) -> tuple[OutputTag, Row]:
        self._dead_letter_counters[reason].inc()
        encoded = self._dead_letter_encoder.encode(reason, detail, source, key, value)
        return DEAD_LETTERS, Row(key=key, value=encoded)


class DecodeEvents(_DeadLettering, ProcessFunction):
    """Decode and validate WatchEvent records and attach each one's preference weight."""

    def __init__(self, settings: Settings) -> None:
        self._preference = settings.preference

    def open(self, runtime_context: RuntimeContext) -> None:
        self._codec = AvroCodec.for_schema(WATCH_EVENT)
        self._weigher = EventWeigher(self._preference)
        self._max_watch_time_ms = self._preference.max_watch_time_ms
        self._events_read = runtime_context.get_metrics_group().counter("events_read")
        self._open_dead_letters(runtime_context)

    def process_element(self, value: Row, ctx: ProcessFunction.Context) -> Iterable[Any]:
        self._events_read.inc()
        key, payload = _as_bytes(value[0]), _as_bytes(value[1])
        source = (value[2], value[3], value[4])
        try:
            event = validate_event(self._codec.decode(payload), self._max_watch_time_ms)
        except (DecodeError, InvalidEvent) as error:
            yield self._dead_letter(error.reason, error.detail, source, key, payload)
            return
        weight = self._weigher.weight(event.watch_time_ms, event.duration_ms)
        yield Row(event.user_id, event.video_id, weight, event.event_time_ms, *source, key, payload)


class DecodeEmbeddings(_DeadLettering, ProcessFunction):
    """Decode VideoEmbedding records and check their dimension and values."""

    def __init__(self, settings: Settings) -> None:
        self._dimension = settings.embedding.dimension

    def open(self, runtime_context: RuntimeContext) -> None:
        self._codec = AvroCodec.for_schema(VIDEO_EMBEDDING)
        self._open_dead_letters(runtime_context)

    def process_element(self, value: Row, ctx: ProcessFunction.Context) -> Iterable[Any]:
        key, payload = _as_bytes(value[0]), _as_bytes(value[1])
        source = (value[2], value[3], value[4])
        try:
            record = self._codec.decode(payload)
        except DecodeError as error:
            yield self._dead_letter(error.reason, error.detail, source, key, payload)
            return
        vector = np.asarray(record["vector"], dtype="<f4")
        problem = self._check_vector(vector)
        if problem is not None:
            yield self._dead_letter(dead_letters.INVALID_EMBEDDING, problem, source, key, payload)
            return
        yield Row(record["video_id"], vector.tobytes(), record["model_version"])

    def _check_vector(self, vector: np.ndarray) -> str | None:
        if vector.shape != (self._dimension,):
            return f"vector has {vector.size} dimensions, expected {self._dimension} (embedding.dimension)"
        if not np.all(np.isfinite(vector)):
            return "vector contains NaN or infinite values"
        if not np.any(vector):
            return "vector is all zeros"
        return None


class EmbeddingJoin(_DeadLettering, KeyedCoProcessFunction):
    """Join events (input 1) with their video's newest embedding (input 2), keyed by video id.

    An event whose embedding has not arrived waits in state for ``embedding_wait_ms`` of
    processing time, or until a bounded input ends, and is then dead-lettered as
    ``missing_embedding``.
    """

    def __init__(self, settings: Settings) -> None:
        self._wait_ms = settings.job.embedding_wait_ms
        self._max_pending = settings.job.max_pending_per_video

    def open(self, runtime_context: RuntimeContext) -> None:
        self._embedding = runtime_context.get_state(ValueStateDescriptor("embedding", Types.PICKLED_BYTE_ARRAY()))
        self._pending = runtime_context.get_list_state(ListStateDescriptor("pending", Types.PICKLED_BYTE_ARRAY()))
        self._pending_count = runtime_context.get_state(ValueStateDescriptor("pending_count", Types.PICKLED_BYTE_ARRAY()))
        self._events_joined = runtime_context.get_metrics_group().counter("events_joined")
        self._open_dead_letters(runtime_context)

    def process_element1(self, event: Row, ctx: KeyedCoProcessFunction.Context) -> Iterable[Any]:
        embedding = self._embedding.value()
        if embedding is not None:
            yield self._join(tuple(event), embedding)
            return
        pending_count = self._pending_count.value() or 0
        if pending_count >= self._max_pending:
            yield self._missing(tuple(event), f"{pending_count} events already wait for this video "
                                              "(job.max_pending_per_video)")
            return
        now = ctx.timer_service().current_processing_time()
        self._pending.add((now + self._wait_ms, tuple(event)))
        self._pending_count.update(pending_count + 1)
        ctx.timer_service().register_processing_time_timer(now + self._wait_ms)
        if pending_count == 0:
            ctx.timer_service().register_event_time_timer(END_OF_INPUT_MS)

    def process_element2(self, embedding: Row, ctx: KeyedCoProcessFunction.Context) -> Iterable[Any]:
        stored = (_as_bytes(embedding[1]), embedding[2])
        self._embedding.update(stored)
        if not self._pending_count.value():
            return
        for _deadline, event in self._pending.get():
            yield self._join(event, stored)
        self._clear_pending()
        ctx.timer_service().delete_event_time_timer(END_OF_INPUT_MS)

    def on_timer(self, timestamp: int, ctx: KeyedCoProcessFunction.OnTimerContext) -> Iterable[Any]:
        if not self._pending_count.value():
            return
        end_of_input = timestamp == END_OF_INPUT_MS
        waiting = []
        for deadline, event in self._pending.get():
            if end_of_input or deadline <= timestamp:
                yield self._missing(event, f"no embedding of video {event[1]!r} arrived within "
                                           f"{self._wait_ms} ms (job.embedding_wait_ms)")
            else:
                waiting.append((deadline, event))
        if waiting:
            self._pending.update(waiting)
            self._pending_count.update(len(waiting))
        else:
            self._clear_pending()

    def _join(self, event: tuple, embedding: tuple[bytes, str]) -> Row:
        self._events_joined.inc()
        vector, model_version = embedding
        return Row(event[0], event[2], vector, event[3], model_version)

    def _missing(self, event: tuple, detail: str) -> tuple[OutputTag, Row]:
        source = (event[4], event[5], event[6])
        return self._dead_letter(dead_letters.MISSING_EMBEDDING, detail, source, _as_bytes(event[7]),
                                 _as_bytes(event[8]))

    def _clear_pending(self) -> None:
        self._pending.clear()
        self._pending_count.clear()


class UserInterestAggregator(KeyedProcessFunction):
    """Keep each user's running weighted sum and emit the normalised vector, keyed by user id.

    State per user: the ``InterestAccumulator`` bytes, the embedding model version it sums,
    the last emission time and whether an emission is due. Events of a new model version
    reset the user's sum, because vectors of two versions do not share a space.
    """

    def __init__(self, settings: Settings) -> None:
        self._dimension = settings.embedding.dimension
        self._emission: EmissionSettings = settings.emission

    def open(self, runtime_context: RuntimeContext) -> None:
        self._state = runtime_context.get_state(ValueStateDescriptor("interest", Types.PICKLED_BYTE_ARRAY()))
        self._codec = AvroCodec.for_schema(USER_INTEREST)
        group = runtime_context.get_metrics_group()
        self._events_contributed = group.counter("events_contributed")
        self._records_emitted = group.counter("user_records_emitted")
        self._zero_weight = group.counter("user_records_skipped_zero_weight")
        self._model_resets = group.counter("model_version_resets")

    def process_element(self, contribution: Row, ctx: KeyedProcessFunction.Context) -> Iterable[Row]:
        user_id, weight, vector, event_time_ms, model_version = contribution
        stored = self._state.value()
        if stored is None or stored[1] != model_version:
            if stored is not None:
                self._model_resets.inc()
                logger.info("user %s: embedding model changed from %s to %s, sum restarted",
                            user_id, stored[1], model_version)
            accumulator = InterestAccumulator(self._dimension)
            last_emit_ms, due = -(2**62), False
        else:
            accumulator = InterestAccumulator.from_bytes(stored[0])
            last_emit_ms, due = stored[2], stored[3]
        accumulator.add(weight, np.frombuffer(_as_bytes(vector), dtype="<f4"), event_time_ms)
        self._events_contributed.inc()

        now = ctx.timer_service().current_processing_time()
        if self._emission.policy == "every_event" or now - last_emit_ms >= self._emission.interval_ms:
            record = self._emit(user_id, accumulator, model_version, now)
            if record is not None:
                yield record
            if due:
                ctx.timer_service().delete_event_time_timer(END_OF_INPUT_MS)
            last_emit_ms, due = now, False
        elif not due:
            due = True
            ctx.timer_service().register_processing_time_timer(last_emit_ms + self._emission.interval_ms)
            ctx.timer_service().register_event_time_timer(END_OF_INPUT_MS)
        self._state.update((accumulator.to_bytes(), model_version, last_emit_ms, due))

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Iterable[Row]:
        stored = self._state.value()
        if stored is None or not stored[3]:
            return
        accumulator_bytes, model_version, _last_emit_ms, _due = stored
        if timestamp != END_OF_INPUT_MS:
            ctx.timer_service().delete_event_time_timer(END_OF_INPUT_MS)
        now = ctx.timer_service().current_processing_time()
        record = self._emit(ctx.get_current_key(), InterestAccumulator.from_bytes(accumulator_bytes),
                            model_version, now)
        if record is not None:
            yield record
        self._state.update((accumulator_bytes, model_version, now, False))

    def _emit(self, user_id: str, accumulator: InterestAccumulator, model_version: str, now: int) -> Row | None:
        vector = accumulator.normalised()
        if vector is None:
            self._zero_weight.inc()
            return None
        self._records_emitted.inc()
        value = self._codec.encode({
            "user_id": user_id,
            "vector": vector.tolist(),
            "total_weight": accumulator.total_weight,
            "event_count": accumulator.event_count,
            "last_event_time_ms": accumulator.last_event_time_ms,
            "emit_time_ms": now,
            "embedding_model_version": model_version,
        })
        return Row(key=user_id.encode("utf-8"), value=value)
