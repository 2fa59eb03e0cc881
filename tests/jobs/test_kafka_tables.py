"""The job's Kafka table DDL: intervals, start and stop positions, delivery guarantees."""

from __future__ import annotations

import pytest

from dreamumm.config import load_settings
from jobs.kafka_tables import events_source_ddl, features_sink_ddl, sql_interval


@pytest.mark.parametrize(("milliseconds", "literal"), [
    (0, "INTERVAL '0 00:00:00.000' DAY TO SECOND(3)"),
    (200, "INTERVAL '0 00:00:00.200' DAY TO SECOND(3)"),
    (86_400_000, "INTERVAL '1 00:00:00.000' DAY TO SECOND(3)"),
    (90_061_001, "INTERVAL '1 01:01:01.001' DAY TO SECOND(3)"),
])
def test_sql_interval_formats_day_to_second(milliseconds: int, literal: str) -> None:
    assert sql_interval(milliseconds) == literal


def test_sql_interval_sums_beyond_99_days() -> None:
    literal = sql_interval(100 * 86_400_000 + 5)

    assert literal.count("INTERVAL") == 2
    assert "'99 23:59:59.999'" in literal
    assert "'0 00:00:00.006'" in literal


def test_events_source_stops_at_given_offsets() -> None:
    settings = load_settings(environ={"DREAMUMM__JOB__BOUNDED": "true",
                                      "DREAMUMM__JOB__EVENTS_STARTUP_MODE": "specific-offsets",
                                      "DREAMUMM__JOB__EVENTS_START_OFFSETS": "{1: 3, 0: 2}",
                                      "DREAMUMM__JOB__EVENTS_STOP_OFFSETS": "{0: 10, 1: 12}"})

    ddl = events_source_ddl(settings)

    assert "'scan.startup.specific-offsets' = 'partition:0,offset:2;partition:1,offset:3'" in ddl
    assert "'scan.bounded.mode' = 'specific-offsets'" in ddl
    assert "'scan.bounded.specific-offsets' = 'partition:0,offset:10;partition:1,offset:12'" in ddl
    assert "WATERMARK FOR event_time" in ddl


def test_exactly_once_sink_sets_transactions() -> None:
    ddl = features_sink_ddl(load_settings(environ={}))

    assert "'sink.delivery-guarantee' = 'exactly-once'" in ddl
    assert "'properties.transaction.timeout.ms' = '600000'" in ddl
    assert "'sink.transactional-id-prefix'" in ddl


def test_at_least_once_sink_has_no_transactions() -> None:
    ddl = features_sink_ddl(load_settings(environ={"DREAMUMM__JOB__DELIVERY_GUARANTEE": "at-least-once"}))

    assert "'sink.delivery-guarantee' = 'at-least-once'" in ddl
    assert "transaction" not in ddl
