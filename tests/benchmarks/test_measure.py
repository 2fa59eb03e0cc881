"""The benchmark's readings of progress, correctness and latency, on hand-made outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.measure import OutputReading, compare_with_reference, event_latencies_ms, sustained_rate
from dreamumm.kafka_io import KafkaRecord
from operators import ReferenceInterest
from schemas.user_interest_reader import UserInterestRecord


def _reading(times_ms: list[int], covered: list[int], updates: dict | None = None) -> OutputReading:
    return OutputReading(latest={}, append_times_ms=np.asarray(times_ms, dtype=np.int64),
                         covered=np.asarray(covered, dtype=np.int64), records=len(times_ms), tombstones=0,
                         updates_by_user=updates or {})


def _record(user: str, vector: list[float], weight: float, count: int) -> UserInterestRecord:
    return UserInterestRecord(user, np.asarray(vector, dtype=np.float32), weight, count, 5, 6, "v1", 0, 0)


def test_sustained_rate_skips_start_and_tail() -> None:
    # 1,000 events: a slow start, then 100 events every 10 ms, then a slow tail.
    times = [0, 5_000] + [5_000 + 10 * step for step in range(1, 10)] + [60_000]
    covered = [50, 100] + [100 + 100 * step for step in range(1, 10)][:8] + [950, 1_000]
    reading = _reading(times[: len(covered)], covered)
    assert sustained_rate(reading, 1_000) == pytest.approx(800 / 0.08)


def test_sustained_rate_nan_when_incomplete() -> None:
    assert math.isnan(sustained_rate(_reading([0, 10], [10, 20]), 1_000))


def test_compare_flags_missing_and_miscounted() -> None:
    reference = {
        1: ReferenceInterest(np.array([1.0, 0.0]), 2.0, 2, 5, 0),
        2: ReferenceInterest(np.array([0.0, 1.0]), 1.0, 1, 5, 0),
        3: ReferenceInterest(None, 0.0, 0, None, 0),  # no direction: not expected in the output
    }
    agreeing = compare_with_reference({"1": _record("1", [1, 0], 2.0, 2), "2": _record("2", [0, 1], 1.0, 1)},
                                      reference)
    assert agreeing.ok and agreeing.users_expected == 2

    wrong = compare_with_reference({"1": _record("1", [1, 0], 2.0, 3)}, reference)
    assert not wrong.ok
    assert (wrong.users_missing, wrong.count_mismatches) == (1, 1)
    assert "DISAGREES" in wrong.describe()


def test_latency_uses_first_covering_record() -> None:
    events = [KafkaRecord("t", 0, offset, b"u1", b"", time) for offset, time in enumerate([1_000, 1_100, 1_200])]
    events.append(KafkaRecord("t", 1, 0, b"u2", b"", 1_300))
    # u1's first record covers two events, its second the third; u2 has no record yet.
    output = _reading([], [], updates={"u1": [(1_150, 2), (1_500, 3)]})
    latencies, uncovered = event_latencies_ms(events, output, since_ms=1_050)
    assert sorted(latencies.tolist()) == [50, 300]
    assert uncovered == 1
