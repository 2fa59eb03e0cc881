"""Tests for operators.reference: a hand-computed case and agreement with the streaming state."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from embeddings.content import ContentEmbeddingConfig, build_content_embeddings
from embeddings.sample_data import SAMPLE_EVENTS_PATH, VIDEO_FEATURES_PATH, load_events
from embeddings.video_table import load_video_table
from operators.interest import InterestAccumulator, cosine
from operators.preference import preference_weight
from operators.reference import reference_interests
from operators.threshold import DEFAULT_THRESHOLD_RULE, FixedThreshold

SIGMOID_ONE = 1.0 / (1.0 + math.exp(-1.0))

EMBEDDINGS = {
    1: np.array([1.0, 0.0]),
    2: np.array([0.0, 1.0]),
    3: np.array([3.0, 4.0]),
}


def hand_events() -> pd.DataFrame:
    rows = [
        # user, video, play_time_ms, duration_ms, time_ms
        (7, 1, 10_000, 30_000, 100),
        (7, 2, 11_000, 30_000, 300),
        (7, 4, 50_000, 30_000, 900),
        (8, 3, 9_000, 0, 50),
        (9, 4, 1_000, 30_000, 10),
    ]
    return pd.DataFrame(rows, columns=["user_id", "video_id", "play_time_ms", "duration_ms", "time_ms"])


def test_hand_computed_case() -> None:
    result = reference_interests(hand_events(), EMBEDDINGS, alpha_per_s=1.0, threshold_rule=FixedThreshold(10_000))

    assert sorted(result) == [7, 8, 9]

    # User 7: weights 0.5 (at the threshold) and sigmoid(1) (one second past it);
    # the event of video 4 has no embedding.
    user_7 = result[7]
    norm = math.hypot(0.5, SIGMOID_ONE)
    assert user_7.vector is not None
    assert user_7.vector.dtype == np.float64
    assert user_7.vector[0] == pytest.approx(0.5 / norm, rel=1e-15)
    assert user_7.vector[1] == pytest.approx(SIGMOID_ONE / norm, rel=1e-15)
    assert user_7.total_weight == pytest.approx(0.5 + SIGMOID_ONE, rel=1e-15)
    assert user_7.event_count == 2
    assert user_7.last_event_time_ms == 300
    assert user_7.events_without_embedding == 1

    # User 8: one second short of the threshold, embedding [3, 4] normalised.
    user_8 = result[8]
    assert user_8.vector is not None
    np.testing.assert_allclose(user_8.vector, [0.6, 0.8], rtol=1e-15)
    assert user_8.total_weight == pytest.approx(1.0 - SIGMOID_ONE, rel=1e-15)
    assert user_8.event_count == 1
    assert user_8.last_event_time_ms == 50

    user_9 = result[9]
    assert user_9.vector is None
    assert user_9.total_weight == 0.0
    assert user_9.event_count == 0
    assert user_9.last_event_time_ms is None
    assert user_9.events_without_embedding == 1


def test_default_rule_uses_no_duration_threshold() -> None:
    # Video 3 has duration 0 here, so its threshold is 18 s, and 9 s of play is 9 s short.
    result = reference_interests(hand_events(), EMBEDDINGS, alpha_per_s=0.5)

    expected = 1.0 / (1.0 + math.exp(0.5 * 9.0))
    assert result[8].total_weight == pytest.approx(expected, rel=1e-14)


def test_missing_column_raises() -> None:
    events = hand_events().drop(columns=["time_ms"])

    with pytest.raises(ValueError, match=r"missing column\(s\) \['time_ms'\]"):
        reference_interests(events, EMBEDDINGS, alpha_per_s=1.0)


def test_zero_embedding_raises_with_video_id() -> None:
    with pytest.raises(ValueError, match="embedding of video 2 is all zeros"):
        reference_interests(hand_events(), {**EMBEDDINGS, 2: np.zeros(2)}, alpha_per_s=1.0)


def test_all_weights_zero_gives_none() -> None:
    events = pd.DataFrame(
        [(1, 1, 0, 1_000_000, 5)],
        columns=["user_id", "video_id", "play_time_ms", "duration_ms", "time_ms"],
    )

    result = reference_interests(events, EMBEDDINGS, alpha_per_s=1000.0, threshold_rule=FixedThreshold(1e6))

    assert result[1].vector is None
    assert result[1].event_count == 1
    assert result[1].total_weight == 0.0


def test_streaming_state_matches_reference_on_sample() -> None:
    """Per-event scalar weights with an encode after each event agree with the reference."""
    events = load_events(SAMPLE_EVENTS_PATH)
    embeddings = build_content_embeddings(load_video_table(VIDEO_FEATURES_PATH), ContentEmbeddingConfig())
    alpha = 0.5

    expected = reference_interests(events, embeddings, alpha_per_s=alpha)

    states: dict[int, bytes] = {}
    for row in events.itertuples(index=False):
        threshold = DEFAULT_THRESHOLD_RULE.threshold_ms(row.duration_ms)
        weight = preference_weight(row.play_time_ms, threshold, alpha)
        previous = states.get(row.user_id)
        accumulator = InterestAccumulator(64) if previous is None else InterestAccumulator.from_bytes(previous)
        accumulator.add(weight, embeddings[row.video_id], row.time_ms)
        states[row.user_id] = accumulator.to_bytes()

    assert set(states) == set(expected)
    for user_id, state in states.items():
        accumulator = InterestAccumulator.from_bytes(state)
        reference = expected[user_id]
        vector = accumulator.normalised()
        assert reference.vector is not None
        assert vector is not None
        assert cosine(vector, reference.vector) >= 1 - 1e-6
        assert math.isclose(accumulator.total_weight, reference.total_weight, rel_tol=1e-6)
        assert accumulator.event_count == reference.event_count
        assert accumulator.last_event_time_ms == reference.last_event_time_ms


def test_half_life_discounts_older_events() -> None:
    events = pd.DataFrame({
        "user_id": [1, 1], "video_id": [10, 11], "play_time_ms": [60_000.0, 60_000.0],
        "duration_ms": [20_000, 20_000], "time_ms": [0, 2_000],
    })
    embeddings = {10: np.array([1.0, 0.0]), 11: np.array([0.0, 1.0])}

    plain = reference_interests(events, embeddings, alpha_per_s=0.5)[1]
    decayed = reference_interests(events, embeddings, alpha_per_s=0.5, half_life_ms=1_000.0)[1]

    assert decayed.total_weight == pytest.approx(plain.total_weight * 1.25 / 2)
    assert decayed.vector[0] / decayed.vector[1] == pytest.approx(0.25)
