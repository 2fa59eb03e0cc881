"""Readings of the benchmark's output topics: progress over time, correctness, and latency.

Every benchmark topic uses LogAppendTime, so all times here come from one clock, the broker's.
A UserInterest record counts the events its vector covers (``event_count`` plus
``superseded_event_count``), so the output topic alone shows how many events an alternative
had processed at each moment, whatever the alternative is.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dreamumm import kafka_io
from operators import ReferenceInterest, cosine
from schemas.user_interest_reader import UserInterestReader, UserInterestRecord

COSINE_TOLERANCE = 1e-6
"""An output vector agrees with the reference when their cosine is at least 1 minus this."""

WEIGHT_TOLERANCE = 1e-6
"""Largest relative difference of a user's total weight from the reference."""


@dataclass(frozen=True)
class OutputReading:
    """The records of one output topic.

    ``latest`` maps each user to the newest record. ``append_times_ms`` and ``covered`` give, for
    every record in order of append time, when it was appended and how many events all users'
    newest records covered right after it: the alternative's progress curve.
    """

    latest: dict[str, UserInterestRecord]
    append_times_ms: NDArray[np.int64]
    covered: NDArray[np.int64]
    records: int
    tombstones: int
    updates_by_user: dict[str, list[tuple[int, int]]]


def read_output(bootstrap_servers: str, topic: str, keep_updates: bool = False,
                timeout_s: float = 300.0) -> OutputReading:
    """Read every record of a UserInterest topic.

    With ``keep_updates``, also keep each user's (append time, covered events) pairs in order,
    which ``event_latencies_ms`` needs.
    """
    reader = UserInterestReader()
    latest: dict[str, UserInterestRecord] = {}
    covered_by_user: dict[str, int] = defaultdict(int)
    updates: dict[str, list[tuple[int, int]]] = defaultdict(list)
    times: list[int] = []
    deltas: list[int] = []
    tombstones = 0
    for record in kafka_io.read_topic(bootstrap_servers, topic, timeout_s=timeout_s):
        user = (record.key or b"").decode("utf-8")
        if record.value is None:
            tombstones += 1
            continue
        decoded = reader.read(record.value)
        latest[user] = decoded
        covered = decoded.event_count + decoded.superseded_event_count
        times.append(record.timestamp_ms)
        deltas.append(covered - covered_by_user[user])
        covered_by_user[user] = covered
        if keep_updates:
            updates[user].append((record.timestamp_ms, covered))
    order = np.argsort(np.asarray(times, dtype=np.int64), kind="stable")
    append_times = np.asarray(times, dtype=np.int64)[order]
    progress = np.cumsum(np.asarray(deltas, dtype=np.int64)[order])
    return OutputReading(latest, append_times, progress, len(times), tombstones, dict(updates))


def sustained_rate(reading: OutputReading, total_events: int, low: float = 0.1, high: float = 0.9) -> float:
    """Return events per second between the moments the output covered ``low`` and ``high`` of
    ``total_events``: the steady rate, without start-up and the last partial batches.

    Returns NaN when the output never covered ``high`` of the events.
    """
    if reading.records == 0 or reading.covered[-1] < high * total_events:
        return math.nan
    first = int(np.searchsorted(reading.covered, low * total_events))
    last = int(np.searchsorted(reading.covered, high * total_events))
    seconds = (reading.append_times_ms[last] - reading.append_times_ms[first]) / 1000.0
    events = reading.covered[last] - reading.covered[first]
    return events / seconds if seconds > 0 else math.inf


@dataclass(frozen=True)
class Agreement:
    """Result of comparing an output topic's final vectors with the float64 reference."""

    users_expected: int
    users_missing: int
    count_mismatches: int
    worst_cosine: float
    worst_weight_error: float

    @property
    def ok(self) -> bool:
        return (self.users_missing == 0 and self.count_mismatches == 0
                and self.worst_cosine >= 1.0 - COSINE_TOLERANCE and self.worst_weight_error <= WEIGHT_TOLERANCE)

    def describe(self) -> str:
        verdict = "agrees" if self.ok else "DISAGREES"
        return (f"{verdict} with the float64 reference: {self.users_expected} users, {self.users_missing} missing, "
                f"{self.count_mismatches} count mismatches, worst cosine 1-{1.0 - self.worst_cosine:.1e}, "
                f"worst relative weight error {self.worst_weight_error:.1e}")


def compare_with_reference(latest: dict[str, UserInterestRecord],
                           reference: dict[int, ReferenceInterest]) -> Agreement:
    """Compare every user's newest record with the reference (users with a reference vector)."""
    expected = missing = mismatches = 0
    worst_cosine = 1.0
    worst_weight = 0.0
    for user_id, truth in reference.items():
        if truth.vector is None:
            continue
        expected += 1
        record = latest.get(str(user_id))
        if record is None:
            missing += 1
            continue
        if record.event_count + record.superseded_event_count != truth.event_count:
            mismatches += 1
        worst_cosine = min(worst_cosine, cosine(record.vector, truth.vector))
        worst_weight = max(worst_weight, abs(record.total_weight - truth.total_weight) / truth.total_weight)
    return Agreement(expected, missing, mismatches, worst_cosine, worst_weight)


def event_latencies_ms(events: list[kafka_io.KafkaRecord], output: OutputReading,
                       since_ms: int) -> tuple[NDArray[np.int64], int]:
    """Return the latency of every event appended at or after ``since_ms``, and how many such
    events no output record covers.

    ``events`` are the input topic's records in offset order per partition, keyed by user, so
    the k-th event of a user is covered by the first output record of that user whose covered
    count reaches k. Its latency is that record's append time minus the event's.
    """
    event_times: dict[str, list[int]] = defaultdict(list)
    for record in events:
        event_times[(record.key or b"").decode("utf-8")].append(record.timestamp_ms)
    latencies: list[NDArray[np.int64]] = []
    uncovered = 0
    for user, times_list in event_times.items():
        times = np.asarray(times_list, dtype=np.int64)
        measured = times >= since_ms
        if not measured.any():
            continue
        updates = output.updates_by_user.get(user, [])
        update_times = np.asarray([time for time, _ in updates], dtype=np.int64)
        update_counts = np.asarray([count for _, count in updates], dtype=np.int64)
        ordinal = np.arange(1, len(times) + 1)[measured]
        slot = np.searchsorted(update_counts, ordinal, side="left")
        found = slot < len(update_counts)
        uncovered += int((~found).sum())
        latencies.append(update_times[slot[found]] - times[measured][found])
    merged = np.concatenate(latencies) if latencies else np.zeros(0, dtype=np.int64)
    return merged, uncovered
