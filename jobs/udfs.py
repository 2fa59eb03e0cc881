"""The job's functions: vectorised (pandas) Python functions that decode, validate and weigh
records a batch at a time, and the registration of the Java functions beside them.

Flink hands each Python function an Arrow batch of rows as pandas Series, so the Python side
pays its fixed cost per batch, not per event. The weights come from ``operators``. The per-user
running sum (``WeightedVectorSum``) and the normalisation and encoding of the user records
(``EncodeUserInterest``) run in the JVM (``jvm/``): a Python step after the sum cost an Arrow
round trip of every user's vector. Embeddings are decoded in the JVM too (``DecodeEmbedding``),
so that no Python operator sits between the embeddings source and the join.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from pyflink.table import DataTypes
from pyflink.table.udf import FunctionContext, ScalarFunction, udf

from dreamumm.config import Settings
from jobs import dead_letters
from jobs.dead_letters import DeadLetterEncoder
from jobs.validation import InvalidEvent, validate_deletion, validate_event
from jobs.weighting import EventWeigher
from schemas import USER_DELETION, AvroCodec, DecodeError
from schemas.watch_event_reader import WatchEventReader

logger = logging.getLogger(__name__)

DECODED_EVENT = DataTypes.ROW([
    DataTypes.FIELD("user_id", DataTypes.STRING()),
    DataTypes.FIELD("video_id", DataTypes.STRING()),
    DataTypes.FIELD("weight", DataTypes.DOUBLE()),
    DataTypes.FIELD("event_time_ms", DataTypes.BIGINT()),
    DataTypes.FIELD("event_id", DataTypes.STRING()),
    DataTypes.FIELD("reason", DataTypes.STRING()),
    DataTypes.FIELD("detail", DataTypes.STRING()),
])
"""Result of ``decode_event``: the fields and weight of a valid event, or a dead-letter reason."""

DECODED_DELETION = DataTypes.ROW([
    DataTypes.FIELD("user_id", DataTypes.STRING()),
    DataTypes.FIELD("requested_time_ms", DataTypes.BIGINT()),
    DataTypes.FIELD("reason", DataTypes.STRING()),
    DataTypes.FIELD("detail", DataTypes.STRING()),
])
"""Result of ``decode_deletion``: the user and time to erase through, or a dead-letter reason."""

METRIC_GROUP = "dreamumm"
"""Metric group of the pipeline's counters; the job's counter file reporter collects this group."""

_EVENT_COLUMNS = ["user_id", "video_id", "weight", "event_time_ms", "event_id", "reason", "detail"]
_DELETION_COLUMNS = ["user_id", "requested_time_ms", "reason", "detail"]


class DecodeEvent(ScalarFunction):
    """Decode and validate WatchEvent values and compute each valid event's preference weight."""

    def __init__(self, settings: Settings) -> None:
        self._preference = settings.preference

    def open(self, function_context: FunctionContext) -> None:
        self._reader = WatchEventReader()
        self._weigher = EventWeigher(self._preference)
        self._max_watch_time_ms = self._preference.max_watch_time_ms
        # Rejected events are counted where they are dead-lettered, by EncodeDeadLetter.
        self._events_read = function_context.get_metric_group().add_group(METRIC_GROUP).counter("events_read")

    def eval(self, values: pd.Series) -> pd.DataFrame:
        rows = len(values)
        # A rejected row has weight and event time 0, not None: a None would turn the whole
        # column into float64, which loses event times above 2**53 and fails Arrow's conversion
        # near 2**63. Rows with a reason never reach the aggregation, so the zeros are unused.
        user_ids: list[str | None] = [None] * rows
        video_ids: list[str | None] = [None] * rows
        event_times = np.zeros(rows, dtype=np.int64)
        event_ids: list[str | None] = [None] * rows
        reasons: list[str | None] = [None] * rows
        details: list[str | None] = [None] * rows
        valid_rows: list[int] = []
        watch_times: list[float] = []
        durations: list[float] = []
        decode, max_watch_time_ms = self._reader.decode, self._max_watch_time_ms
        for row, payload in enumerate(values.tolist()):
            try:
                event = validate_event(decode(payload), max_watch_time_ms)
            except (DecodeError, InvalidEvent) as error:
                reasons[row], details[row] = error.reason, error.detail
                continue
            except Exception as error:  # noqa: BLE001 - one bad record must not stop the job
                # The codec maps every known failure to DecodeError, so this is a bug or an
                # unforeseen input: dead-letter the record and leave a trace in the log.
                logger.warning("unexpected error decoding a watch event, dead-lettered: %r", error)
                reasons[row] = dead_letters.INVALID_AVRO
                details[row] = f"unexpected decoder error: {error!r}"
                continue
            valid_rows.append(row)
            user_ids[row], video_ids[row] = event.user_id, event.video_id
            event_times[row] = event.event_time_ms
            event_ids[row] = event.event_id
            watch_times.append(event.watch_time_ms)
            durations.append(np.nan if event.duration_ms is None else float(event.duration_ms))
        weights = np.zeros(rows, dtype=np.float64)
        if valid_rows:
            weights[valid_rows] = self._weigher.weights(np.asarray(watch_times), np.asarray(durations))
        self._events_read.inc(rows)
        return pd.DataFrame({"user_id": user_ids, "video_id": video_ids, "weight": weights,
                             "event_time_ms": event_times, "event_id": event_ids, "reason": reasons,
                             "detail": details},
                            columns=_EVENT_COLUMNS)


class DecodeDeletion(ScalarFunction):
    """Decode and check UserDeletion values from the deletions control topic."""

    def open(self, function_context: FunctionContext) -> None:
        self._codec = AvroCodec.for_schema(USER_DELETION)
        self._read = function_context.get_metric_group().add_group(METRIC_GROUP).counter("deletions_read")

    def eval(self, values: pd.Series) -> pd.DataFrame:
        rows = []
        for payload in values:
            try:
                record = self._codec.decode(payload)
                user_id, requested_time_ms = validate_deletion(record)
            except (DecodeError, InvalidEvent) as error:
                rows.append([None, 0, error.reason, error.detail])
                continue
            except Exception as error:  # noqa: BLE001 - one bad record must not stop the job
                logger.warning("unexpected error decoding a user deletion, dead-lettered: %r", error)
                rows.append([None, 0, dead_letters.INVALID_AVRO, f"unexpected decoder error: {error!r}"])
                continue
            rows.append([user_id, requested_time_ms, None, None])
        self._read.inc(len(rows))
        return pd.DataFrame(rows, columns=_DELETION_COLUMNS)


class EncodeDeadLetter(ScalarFunction):
    """Encode DeadLetter records from a reason, a detail and the original record, and count them.

    Counters: ``dead_letters_<reason>`` for every record, and ``events_dead_lettered`` for those
    read from the events topic, the term of the accounting identity.
    """

    def __init__(self, settings: Settings) -> None:
        self._events_topic = settings.kafka.events_topic

    def open(self, function_context: FunctionContext) -> None:
        self._encoder = DeadLetterEncoder()
        metrics = function_context.get_metric_group().add_group(METRIC_GROUP)
        self._by_reason = {reason: metrics.counter(f"dead_letters_{reason}") for reason in dead_letters.REASONS}
        self._events_dead_lettered = metrics.counter("events_dead_lettered")

    def eval(self, reasons: pd.Series | str, details: pd.Series | str, topics: pd.Series, partitions: pd.Series,
             offsets: pd.Series, keys: pd.Series, values: pd.Series) -> pd.Series:
        # Flink passes a SQL literal argument as one scalar, not as a Series.
        if isinstance(reasons, str):
            reasons = [reasons] * len(topics)
        if isinstance(details, str):
            details = [details] * len(topics)
        encoded = []
        from_events = 0
        for reason, detail, topic, partition, offset, key, value in zip(
                reasons, details, topics, partitions, offsets, keys, values):
            encoded.append(self._encoder.encode(reason, detail, (topic, int(partition), int(offset)), key, value))
            self._by_reason[reason].inc()
            from_events += topic == self._events_topic
        self._events_dead_lettered.inc(from_events)
        return pd.Series(encoded, dtype=object)


JAVA_FUNCTIONS = {
    "weighted_vector_sum": "WeightedVectorSum",
    "encode_user_interest": "EncodeUserInterest",
    "embedding_valid_from": "EmbeddingValidFrom",
    "decode_embedding": "DecodeEmbedding",
    "watch_event_time": "WatchEventTime",
}
"""SQL name to class in the dev.dreamumm.flink package (jvm/) of each Java function the job calls."""


def register_functions(t_env: Any, settings: Settings) -> None:
    """Register the job's Python and Java functions in ``t_env`` under the names the SQL uses."""
    t_env.create_temporary_function(
        "decode_event", udf(DecodeEvent(settings), result_type=DECODED_EVENT, func_type="pandas"))
    t_env.create_temporary_function(
        "decode_deletion", udf(DecodeDeletion(), result_type=DECODED_DELETION, func_type="pandas"))
    t_env.create_temporary_function(
        "encode_dead_letter", udf(EncodeDeadLetter(settings), result_type=DataTypes.BYTES(), func_type="pandas"))
    for name, java_class in JAVA_FUNCTIONS.items():
        t_env.execute_sql(f"CREATE TEMPORARY FUNCTION {name} AS 'dev.dreamumm.flink.{java_class}' LANGUAGE JAVA")
