"""The two baseline jobs of the benchmark (plain Python, Quix Streams) end to end on the real broker,
against the float64 reference, on SYNTHETIC events fitted to the KuaiRand sample.

The baselines run as subprocesses of their own virtualenv, ``.venv-baselines``, because Quix
Streams needs older confluent-kafka and pydantic versions than the project pins.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from benchmarks.synthetic import fit_profile, generate_events
from dreamumm import kafka_io, steps
from dreamumm.config import REPO_ROOT, Settings
from dreamumm.records import video_embedding_records, watch_event_records
from dreamumm.summary import RunSummary, summarise_run
from embeddings import load_events
from jobs.weighting import build_threshold_rule
from operators import cosine, reference_interests
from schemas import USER_INTEREST, WATCH_EVENT, AvroCodec

pytestmark = pytest.mark.integration

BASELINE_PYTHON = REPO_ROOT / ".venv-baselines" / "bin" / "python"
EVENTS = 3000
USERS = 300
VIDEOS = 500
WITHHELD_VIDEOS = 10
STALE_VIDEOS = 20
MODEL_VERSION = "synthetic-v1"
RUN_TIMEOUT_S = 300


def publish_stream(
    settings: Settings, bad_records: Any
) -> tuple[pd.DataFrame, dict[int, np.ndarray], Counter[str]]:
    """Publish embeddings, SYNTHETIC events, model-switch events and bad records.

    Returns the synthetic events, the embeddings that the reference uses and the dead-letter
    reasons that the events should get.
    """
    steps.create_topics(settings)
    bootstrap, kafka = settings.kafka.bootstrap_servers, settings.kafka
    dimension = settings.embedding.dimension
    events = generate_events(fit_profile(load_events()), EVENTS, USERS, VIDEOS, seed=11)

    rng = np.random.default_rng(11)
    vectors = rng.normal(size=(VIDEOS, dimension))
    popular = events["video_id"].value_counts().index.to_numpy()
    withheld = set(popular[-WITHHELD_VIDEOS:].tolist())
    stale = popular[:STALE_VIDEOS].tolist()
    published = {video: vectors[video] for video in range(VIDEOS) if video not in withheld}
    # The opposite vector first: a baseline that kept it instead of the newest would fail the cosine check.
    kafka_io.produce(bootstrap, kafka.embeddings_topic,
                     video_embedding_records({video: -vectors[video] for video in stale}, MODEL_VERSION))
    kafka_io.produce(bootstrap, kafka.embeddings_topic, video_embedding_records(published, MODEL_VERSION))
    kafka_io.produce(bootstrap, kafka.embeddings_topic, [(b"bad", bad_records.embedding)])
    kafka_io.produce(bootstrap, kafka.embeddings_topic, model_switch_embeddings(dimension))

    kafka_io.produce(bootstrap, kafka.events_topic, watch_event_records(events, sort_by_time=False))
    kafka_io.produce(bootstrap, kafka.events_topic, model_switch_events())
    bad_events = bad_records.events
    kafka_io.produce(bootstrap, kafka.events_topic, [(key, value) for key, value, _ in bad_events])
    expected = Counter(reason for _, _, reason in bad_events)
    expected["missing_embedding"] = int(events["video_id"].isin(withheld).sum())
    return events, published, expected


def model_switch_embeddings(dimension: int) -> list[tuple[bytes, bytes]]:
    """Two videos of model version "switch-a" and one of "switch-b"."""
    records = []
    for video_id, model_version in (("a1", "switch-a"), ("a2", "switch-a"), ("b1", "switch-b")):
        vector = np.zeros(dimension, dtype=np.float32)
        vector[len(records)] = 1.0
        records += video_embedding_records({video_id: vector}, model_version)
    return records


def model_switch_events() -> list[tuple[bytes, bytes]]:
    """Events of users whose videos change model version: "switch" a, b and "back" a, b, a, a."""
    codec = AvroCodec.for_schema(WATCH_EVENT)
    plan = [("switch", "a1"), ("back", "a1"), ("switch", "b1"), ("back", "b1"), ("back", "a1"), ("back", "a2")]
    records = []
    for position, (user_id, video_id) in enumerate(plan):
        record = {"user_id": user_id, "video_id": video_id, "watch_time_ms": 30_000.0, "duration_ms": 20_000,
                  "event_time_ms": 1_700_000_000_000 + position}
        records.append((user_id.encode(), codec.encode(record)))
    return records


def write_spec(settings: Settings, path: Path, state_dir: Path, expected_events: int) -> Path:
    kafka = settings.kafka
    spec = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "events_topic": kafka.events_topic,
        "embeddings_topic": kafka.embeddings_topic,
        "features_topic": kafka.features_topic,
        "dead_letter_topic": kafka.dead_letter_topic,
        "dimension": settings.embedding.dimension,
        "preference": settings.preference.model_dump(mode="json"),
        "expected_events": expected_events,
        "state_dir": str(state_dir),
        "consumer_group": kafka.consumer_group,
        "idle_timeout_s": 30.0,
    }
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


def run_baseline_process(module: str, spec_path: Path) -> dict[str, object]:
    """Run a baseline in its virtualenv and return its result line."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    completed = subprocess.run(
        [str(BASELINE_PYTHON), "-m", f"benchmarks.baselines.{module}", "--spec", str(spec_path)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert completed.returncode == 0, f"{module} failed:\n{completed.stderr[-4000:]}"
    return json.loads(completed.stdout.strip().splitlines()[-1])


def check_switch_users(summary: RunSummary) -> None:
    switch, back = summary.users["switch"], summary.users["back"]
    assert (switch.model_version, switch.event_count, switch.superseded_event_count) == ("switch-b", 1, 1)
    assert (back.model_version, back.event_count, back.superseded_event_count) == ("switch-a", 2, 2)
    # Each restart drops the earlier sum, so "back" points between its two version-a videos.
    assert back.vector[0] == pytest.approx(math.sqrt(0.5), rel=1e-6)
    assert back.vector[1] == pytest.approx(math.sqrt(0.5), rel=1e-6)
    assert back.last_event_time_ms == 1_700_000_000_005


@pytest.mark.skipif(not BASELINE_PYTHON.is_file(),
                    reason="no .venv-baselines: create it with python3.11 -m venv .venv-baselines && "
                           ".venv-baselines/bin/pip install -r benchmarks/baselines/requirements.txt")
@pytest.mark.parametrize("module", ["plain_python", "quix_streams_job"])
def test_baseline_matches_reference(bad_records, module: str, make_settings, tmp_path: Path) -> None:
    settings = make_settings()
    events, published, expected_dead_letters = publish_stream(settings, bad_records)
    events_published = kafka_io.count_records(settings.kafka.bootstrap_servers, settings.kafka.events_topic)
    spec_path = write_spec(settings, tmp_path / "spec.json", tmp_path / "state", events_published)

    result = run_baseline_process(module, spec_path)

    summary = summarise_run(settings)
    reference = reference_interests(events, published, settings.preference.alpha_per_s,
                                    build_threshold_rule(settings.preference))
    expected_users = {str(user) for user, interest in reference.items() if interest.vector is not None}
    assert set(summary.users) == expected_users | {"switch", "back"}
    for user_id in expected_users:
        emitted, interest = summary.users[user_id], reference[int(user_id)]
        assert cosine(emitted.vector, interest.vector) >= 1 - 1e-6, f"user {user_id}"
        assert emitted.total_weight == pytest.approx(interest.total_weight, rel=1e-6), f"user {user_id}"
        assert emitted.event_count == interest.event_count, f"user {user_id}"
        assert emitted.superseded_event_count == 0, f"user {user_id}"
        assert emitted.last_event_time_ms == interest.last_event_time_ms, f"user {user_id}"
    check_switch_users(summary)

    assert summary.dead_letters_by_reason == expected_dead_letters
    assert summary.embedding_dead_letters_by_reason == Counter({"invalid_embedding": 1})
    assert summary.feature_tombstones == 0
    user_interest_codec = AvroCodec.for_schema(USER_INTEREST)
    for record in kafka_io.read_topic(settings.kafka.bootstrap_servers, settings.kafka.features_topic):
        assert record.key == user_interest_codec.decode(record.value)["user_id"].encode("utf-8")
    assert summary.balanced
    assert result["events_read"] == events_published
    assert result["events_read"] == result["contributed"] + result["dead_lettered"]
    assert result["dead_lettered"] == sum(expected_dead_letters.values())
    assert result["records_written"] == summary.feature_records
    assert result["users"] == len(summary.users)
    assert result["seconds"] > 0
    assert result["state_dir_bytes"] > 0
