"""The offline evaluation's replay against the real feature job, with recency decay and one record
per event.

The job's per-user sum does not depend on arrival order, but its records do: while it works
through the backlog, the event-time join releases events grouped by video, so a user's events
reach the sum out of event-time order. The test therefore rebuilds the job's arrival order from
its records. Each record must equal the replay's state of the events summed before it plus
exactly one more event of the user, and the last record must equal the replay's final state."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pytest

from dreamumm import kafka_io
from dreamumm.config import Settings
from embeddings import SAMPLE_EVENTS_PATH, load_events
from evaluation.events import prepare_events
from evaluation.replay import Replay
from jobs.feature_job import run_feature_job
from jobs.weighting import build_threshold_rule
from operators import cosine
from schemas import USER_INTEREST, AvroCodec

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000.0
# The job keeps float32 sums and rescales them at every newer event, but the replay sums in float64.
MIN_COSINE = 1 - 1e-5
WEIGHT_RELATIVE_TOLERANCE = 1e-4


def read_feature_records(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """Return every committed UserInterest record of the features topic, per user in offset order."""
    codec = AvroCodec.for_schema(USER_INTEREST)
    records: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in kafka_io.read_topic(settings.kafka.bootstrap_servers, settings.kafka.features_topic):
        assert record.value is not None, f"unexpected tombstone for user {record.key!r}"
        value = codec.decode(record.value)
        assert record.key == value["user_id"].encode("utf-8")
        # One user's records share a partition, so their offset order is the job's emission order.
        records[value["user_id"]].append(value)
    return records


def mismatch(record: dict[str, Any], vector_sum: np.ndarray, total_weight: float) -> float | None:
    """Return how far a state is from a record (0 is equal), or None when it is beyond the tolerances."""
    angle_error = 1.0 - cosine(record["vector"], vector_sum)
    weight_error = abs(record["total_weight"] - total_weight) / max(abs(total_weight), 1e-300)
    if angle_error >= 1.0 - MIN_COSINE or weight_error > WEIGHT_RELATIVE_TOLERANCE:
        return None
    return angle_error + weight_error


def arrival_order(replay: Replay, rows: np.ndarray, user_records: list[dict[str, Any]], weights: np.ndarray,
                  half_life_ms: float) -> tuple[list[int], str | None]:
    """Find, record by record, the one new event that turns the replay's state into the record.

    Events with a weight near 0 or the same embedding can fit a record about equally well, so the
    closest fit wins. A wrong pick among such events changes later states by far less than the
    tolerances, because every event is summed by the end.

    Returns the rows in the order the job summed them, and a description of the first record that
    no remaining event explains, or None when every record is explained.
    """
    times = replay.events.time_ms
    summed: list[int] = []
    remaining = [int(row) for row in rows]
    for record in user_records:
        newest = record["last_event_time_ms"]
        candidates = [row for row in remaining if times[row] <= newest
                      and max([int(times[row])] + [int(times[done]) for done in summed]) == newest]
        found, closest = None, np.inf
        for row in candidates:
            vector_sum, total_weight = replay.state_of_rows(np.array(summed + [row]), weights, half_life_ms)
            error = mismatch(record, vector_sum, total_weight)
            if error is not None and error < closest:
                found, closest = row, error
        if found is None:
            return summed, (f"record {record['event_count']} (newest event {newest}) is not the replay's state "
                            f"of the {len(summed)} events before it plus any one of {len(candidates)} candidates")
        summed.append(found)
        remaining.remove(found)
    return summed, None


def test_replay_matches_every_job_record(make_settings, runtime_jars, sample_inputs) -> None:
    settings = make_settings(emission={"policy": "every_event"}, preference={"recency_half_life_ms": DAY_MS})
    preference = settings.preference
    published = sample_inputs.publish(settings)

    run_feature_job(settings, runtime_jars)
    records = read_feature_records(settings)

    events = prepare_events(load_events(SAMPLE_EVENTS_PATH), published, preference.max_watch_time_ms)
    assert events.accounting.balanced
    assert events.accounting.used == events.accounting.read, events.accounting
    replay = Replay(events)
    weights = replay.preference_weights(preference.alpha_per_s, build_threshold_rule(preference))
    final_sums = replay.running_sums(weights, preference.recency_half_life_ms)

    assert set(records) == {str(user_id) for user_id in np.unique(events.user_ids)}
    unexplained: list[str] = []
    final_mismatches: list[str] = []
    for user in range(events.user_count):
        rows = replay.rows_of_user(user)
        user_id = str(events.user_ids[rows[0]])
        user_records = records[user_id]

        # every_event writes one record per contributing event, so no event is unaccounted for.
        counts = [record["event_count"] for record in user_records]
        assert counts == list(range(1, len(rows) + 1)), f"user {user_id}: event counts {counts}"
        assert all(record["deduplicated_event_count"] == 0 for record in user_records), f"user {user_id}"
        assert all(record["superseded_event_count"] == 0 for record in user_records), f"user {user_id}"

        # The final state does not depend on the arrival order: it is the running sum after the last event.
        if cosine(user_records[-1]["vector"], final_sums[rows[-1]]) <= MIN_COSINE:
            final_mismatches.append(f"user {user_id}")

        order, problem = arrival_order(replay, rows, user_records, weights, preference.recency_half_life_ms)
        if problem is not None:
            unexplained.append(f"user {user_id}: {problem}")
        else:
            assert sorted(order) == sorted(int(row) for row in rows)

    assert not final_mismatches, f"final state differs from the replay for {final_mismatches[:5]}"
    assert not unexplained, f"{len(unexplained)} users have unexplained records, e.g. {unexplained[:3]}"
