"""Unit tests of the job's vectorised Python functions, called the way Flink calls them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dreamumm.config import load_settings
from jobs.udfs import DecodeDeletion, DecodeEvent, EncodeDeadLetter
from operators import preference_weight
from schemas import DEAD_LETTER, USER_DELETION, WATCH_EVENT, WATCH_EVENT_V2, AvroCodec


class StubCounter:
    def __init__(self) -> None:
        self.count = 0

    def inc(self, amount: int = 1) -> None:
        self.count += amount


class StubContext:
    """Stands in for Flink's FunctionContext: only the metric group is used."""

    def __init__(self) -> None:
        self.counters: dict[str, StubCounter] = {}

    def get_metric_group(self) -> "StubContext":
        return self

    def add_group(self, name: str) -> "StubContext":
        return self

    def counter(self, name: str) -> StubCounter:
        return self.counters.setdefault(name, StubCounter())


@pytest.fixture
def settings():
    return load_settings(environ={})


def opened(function, context: StubContext | None = None):
    function.open(context or StubContext())
    return function


def event_value(**overrides: object) -> bytes:
    record = {"user_id": "u", "video_id": "v", "watch_time_ms": 9_000.0, "duration_ms": 10_000,
              "event_time_ms": 1_700_000_000_000}
    record.update(overrides)
    return AvroCodec.for_schema(WATCH_EVENT).encode(record)


def test_decode_event_weighs_valid_and_rejects_invalid(settings) -> None:
    context = StubContext()
    decode = opened(DecodeEvent(settings), context)
    values = pd.Series([event_value(), b"junk", None, event_value(watch_time_ms=math.nan)])

    result = decode.eval(values)

    assert result["user_id"].tolist()[0] == "u"
    assert result["weight"].tolist()[0] == pytest.approx(preference_weight(9_000.0, 10_000.0, 0.5))
    assert result["reason"].tolist() == [None, "invalid_avro", "missing_value", "invalid_field"]
    assert context.counters["events_read"].count == 4


def test_encode_dead_letter_accepts_literal_reason(settings) -> None:
    result = opened(EncodeDeadLetter(settings)).eval(
        "missing_embedding", "no vector", pd.Series(["t"]), pd.Series([1]), pd.Series([42]),
        pd.Series([b"k"]), pd.Series([b"v"]))

    letter = AvroCodec.for_schema(DEAD_LETTER).decode(result[0])
    assert letter["reason"] == "missing_embedding"
    assert letter["source_offset"] == 42
    assert letter["original_value"] == b"v"


def test_decode_event_keeps_large_times_exact_beside_rejects(settings) -> None:
    big_time = 2**63 - 1
    values = pd.Series([event_value(event_time_ms=big_time), b"junk", event_value(event_time_ms=2**53 + 1)])

    result = opened(DecodeEvent(settings)).eval(values)

    assert result["event_time_ms"].dtype == np.int64
    assert result["event_time_ms"].tolist()[0] == big_time
    assert result["event_time_ms"].tolist()[2] == 2**53 + 1


def test_dead_letter_cuts_oversized_original(settings) -> None:
    key, value = b"k" * 400_000, b"v" * 1_000_000

    result = opened(EncodeDeadLetter(settings)).eval(
        "invalid_field", "user_id too long", pd.Series(["t"]), pd.Series([0]), pd.Series([1]),
        pd.Series([key]), pd.Series([value]))

    letter = AvroCodec.for_schema(DEAD_LETTER).decode(result[0])
    assert len(result[0]) < 1_000_000
    assert letter["original_key_size"] == 400_000
    assert letter["original_value_size"] == 1_000_000
    assert letter["original_value"] == value[: 512 * 1024]


def test_encode_dead_letter_counts_by_reason_and_source(settings) -> None:
    context = StubContext()
    encode = opened(EncodeDeadLetter(settings), context)
    topics = pd.Series([settings.kafka.events_topic, settings.kafka.events_topic, settings.kafka.embeddings_topic])

    encode.eval(pd.Series(["too_late", "invalid_field", "invalid_embedding"]), "detail", topics,
                pd.Series([0, 0, 0]), pd.Series([1, 2, 3]), pd.Series([b"k"] * 3), pd.Series([b"v"] * 3))

    assert context.counters["events_dead_lettered"].count == 2
    assert context.counters["dead_letters_too_late"].count == 1
    assert context.counters["dead_letters_invalid_embedding"].count == 1


def test_decode_event_returns_event_id(settings) -> None:
    values = pd.Series([event_value(event_id="e-1"), event_value()])

    result = opened(DecodeEvent(settings)).eval(values)

    assert result["event_id"].tolist() == ["e-1", None]


def test_decode_event_reads_schema_v2(settings) -> None:
    record = {"user_id": "u", "video_id": "v", "watch_time_ms": 9_000.0, "duration_ms": 10_000,
              "event_time_ms": 1_700_000_000_000, "client_platform": "ios"}
    values = pd.Series([AvroCodec.for_schema(WATCH_EVENT_V2).encode(record), event_value()])

    result = opened(DecodeEvent(settings)).eval(values)

    assert result["reason"].tolist() == [None, None]
    assert result["user_id"].tolist() == ["u", "u"]


def test_decode_deletion_validates(settings) -> None:
    codec = AvroCodec.for_schema(USER_DELETION)
    good = codec.encode({"user_id": "u-1", "requested_time_ms": 5})
    empty = codec.encode({"user_id": "", "requested_time_ms": 5})
    negative = codec.encode({"user_id": "u-2", "requested_time_ms": -1})

    result = opened(DecodeDeletion()).eval(pd.Series([good, empty, negative, b"junk"]))

    assert result["user_id"].tolist()[0] == "u-1"
    assert result["requested_time_ms"].tolist()[0] == 5
    assert result["reason"].tolist() == [None, "invalid_field", "invalid_field", "invalid_avro"]
