"""Bad input, duplicates, schema versions and user deletions, on the real broker and job.

Every case either contributes under a stated rule or lands in the dead-letter topic with a
reason, and the job's counters account for each event."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from dreamumm import kafka_io
from dreamumm.records import watch_event_records
from dreamumm.summary import summarise_run
from jobs.feature_job import run_feature_job
from operators import cosine
from schemas import USER_DELETION, WATCH_EVENT, WATCH_EVENT_V2, AvroCodec

pytestmark = pytest.mark.integration

V1 = AvroCodec.for_schema(WATCH_EVENT)
V2 = AvroCodec.for_schema(WATCH_EVENT_V2)


def test_bad_input_and_duplicates(make_settings, runtime_jars, sample_inputs, bad_records, checks) -> None:
    settings = make_settings()
    vectors = sample_inputs.publish(settings)
    bootstrap, topic = settings.kafka.bootstrap_servers, settings.kafka.events_topic
    events = sample_inputs.events
    last_per_user = events.sort_values("time_ms").groupby("user_id").tail(1).head(20)
    video = str(int(events["video_id"].iloc[0]))
    time_ms = int(events["time_ms"].max())
    valid = {"user_id": "u", "video_id": video, "watch_time_ms": 30_000.0, "duration_ms": 20_000,
             "event_time_ms": time_ms}

    # Duplicates of each of 20 users' newest event: the same event id delivered twice.
    kafka_io.produce(bootstrap, topic, watch_event_records(last_per_user))
    # The same event without an id, twice: the stated key (user, video, event time) catches it.
    no_id = {**valid, "user_id": "no-id-user"}
    kafka_io.produce(bootstrap, topic, [(b"no-id-user", V1.encode(no_id), time_ms)] * 2)
    # Contributing edge cases: a non-ASCII user id, a version 2 record, zero and missing durations.
    kafka_io.produce(bootstrap, topic, [
        ("用户-é".encode(), V1.encode({**valid, "user_id": "用户-é"}), time_ms),
        (b"v2-user", V2.encode({**valid, "user_id": "v2-user", "client_platform": "ios"}), time_ms),
        (b"image-user", V1.encode({**valid, "user_id": "image-user", "duration_ms": 0}), time_ms),
        (b"unknown-length", V1.encode({**valid, "user_id": "unknown-length", "duration_ms": None}), time_ms),
    ])
    # Rejected: malformed bytes, other schemas, missing fields, impossible values, unknown video.
    other_schema = AvroCodec.for_schema(USER_DELETION).encode({"user_id": "u", "requested_time_ms": 1})
    rejected = [
        *[(key, value, reason) for key, value, reason in bad_records.events],
        (b"u", other_schema, "unknown_schema"),
        (b"u", V1.encode(valid)[:14], "invalid_avro"),
        (b"u", V1.encode({**valid, "watch_time_ms": -5.0}), "invalid_field"),
        (b"u", V1.encode({**valid, "watch_time_ms": 2 * 86_400_000.0}), "invalid_field"),
        (b"u", V1.encode({**valid, "watch_time_ms": math.inf}), "invalid_field"),
        (b"u", V1.encode({**valid, "user_id": "x" * 300}), "invalid_field"),
        (b"u", V1.encode({**valid, "video_id": "no-such-video"}), "missing_embedding"),
    ]
    kafka_io.produce(bootstrap, topic, [(key, value, time_ms) for key, value, _ in rejected])

    run = run_feature_job(settings, runtime_jars)

    summary = summarise_run(settings)
    checks.accounted(run.counters, summary)
    assert summary.balanced
    assert summary.events_deduplicated == len(last_per_user) + 1
    assert summary.dead_letters_by_reason == Counter(reason for _, _, reason in rejected)
    assert summary.users["no-id-user"].event_count == 1
    expected = np.asarray(vectors[int(video)], dtype=np.float64)
    for user_id in ("用户-é", "v2-user", "image-user", "unknown-length"):
        assert summary.users[user_id].event_count == 1, user_id
        assert cosine(summary.users[user_id].vector, expected) >= 1 - 1e-6, user_id
    sample_users = {user: vector for user, vector in summary.users.items() if user.isdigit()}
    summary.users = sample_users
    checks.matches_reference(settings, summary, events, vectors)


def test_deletion_erases_user(make_settings, runtime_jars, sample_inputs, checks) -> None:
    settings = make_settings()
    vectors = sample_inputs.publish(settings)
    events = sample_inputs.events
    counts = events["user_id"].value_counts()
    erased_user, cut_user = (int(user) for user in counts.index[:2])
    cut_time = int(events.loc[events["user_id"] == cut_user, "time_ms"].median())
    deletion = AvroCodec.for_schema(USER_DELETION)
    kafka_io.produce(settings.kafka.bootstrap_servers, settings.kafka.deletions_topic, [
        (str(erased_user).encode(), deletion.encode({"user_id": str(erased_user),
                                                      "requested_time_ms": int(events["time_ms"].max())})),
        (str(cut_user).encode(), deletion.encode({"user_id": str(cut_user), "requested_time_ms": cut_time,
                                                   "reason": "account_closed"})),
        (b"bad", b"not a deletion"),
    ])

    run = run_feature_job(settings, runtime_jars)

    summary = summarise_run(settings)
    assert run.counters.balanced, run.counters.describe()
    assert run.counters.get("user_erasures") == 2
    assert str(erased_user) not in summary.users
    assert summary.feature_tombstones >= 1
    assert summary.deletion_dead_letters_by_reason == Counter({"invalid_avro": 1})
    kept = events[(events["user_id"] != erased_user)
                  & ((events["user_id"] != cut_user) | (events["time_ms"] > cut_time))]
    checks.matches_reference(settings, summary, kept, vectors)
    assert run.counters.get("events_erased") == len(events) - len(kept)
