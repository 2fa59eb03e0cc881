"""The baselines' per-user state: the batch update against the one-event-at-a-time update, and its bytes."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.baselines.embedding_table import EmbeddingTable
from benchmarks.baselines.interest_state import (
    InterestState,
    add_events,
    decode_states,
    encode_states,
    encode_user_interests,
)
from schemas import USER_INTEREST, AvroCodec
from schemas.user_interest_encoder import UserInterestEncoder

DIMENSION = 8
USERS = 40
EVENTS = 600
BATCHES = 5


@pytest.fixture
def table() -> EmbeddingTable:
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(30, DIMENSION))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    # Videos 0-19 have model version "v1", videos 20-29 "v2".
    codes = np.where(np.arange(30) < 20, 0, 1)
    return EmbeddingTable({str(video): video for video in range(30)}, vectors.astype(np.float32), codes, ("v1", "v2"))


def events_of(seed: int, mostly_v1: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    # With mostly_v1, most runs of one version are several events long, so sums survive restarts.
    rows = rng.integers(0, 20, size=EVENTS) if mostly_v1 else rng.integers(0, 30, size=EVENTS)
    switch = rng.random(EVENTS) < 0.05
    rows[switch] = rng.integers(20, 30, size=int(switch.sum()))
    return {
        "users": rng.integers(0, USERS, size=EVENTS),
        "rows": rows,
        "weights": rng.random(EVENTS),
        "times": rng.integers(1_700_000_000_000, 1_700_000_100_000, size=EVENTS),
    }


def one_at_a_time(events: dict[str, np.ndarray], table: EmbeddingTable) -> dict[str, InterestState]:
    states: dict[str, InterestState] = {}
    for user, row, weight, time_ms in zip(events["users"], events["rows"], events["weights"], events["times"]):
        state = states.setdefault(str(user), InterestState.empty(DIMENSION))
        state.add(float(weight), table.vectors[row], int(time_ms), table.model_versions[table.version_codes[row]])
    return states


def in_batches(events: dict[str, np.ndarray], table: EmbeddingTable) -> dict[str, bytes]:
    """Run the batch update as the plain baseline does, with a dict standing in for RocksDB."""
    store: dict[str, bytes] = {}
    for positions in np.array_split(np.arange(EVENTS), BATCHES):
        user_rows: dict[str, int] = {}
        indices = [user_rows.setdefault(str(events["users"][position]), len(user_rows)) for position in positions]
        user_ids = list(user_rows)
        batch = decode_states(user_ids, [store.get(user_id) for user_id in user_ids], DIMENSION, table)
        add_events(batch, np.asarray(indices, dtype=np.int64), events["weights"][positions],
                   events["rows"][positions], events["times"][positions], table)
        store.update(zip(user_ids, encode_states(batch, table)))
    return store


@pytest.mark.parametrize("mostly_v1", [True, False])
def test_batch_update_equals_event_updates(table: EmbeddingTable, mostly_v1: bool) -> None:
    events = events_of(seed=9, mostly_v1=mostly_v1)

    expected = one_at_a_time(events, table)
    stored = in_batches(events, table)

    assert set(stored) == set(expected)
    for user_id, state in expected.items():
        batched = InterestState.from_bytes(stored[user_id], DIMENSION)
        assert batched.model_version == state.model_version, f"user {user_id}"
        assert batched.event_count == state.event_count, f"user {user_id}"
        assert batched.superseded_event_count == state.superseded_event_count, f"user {user_id}"
        assert batched.last_event_time_ms == state.last_event_time_ms, f"user {user_id}"
        assert batched.total_weight == pytest.approx(state.total_weight, rel=1e-12), f"user {user_id}"
        np.testing.assert_allclose(batched.vector_sum, state.vector_sum, rtol=1e-5, atol=1e-6,
                                   err_msg=f"user {user_id}")
    assert sum(state.event_count + state.superseded_event_count for state in expected.values()) == EVENTS


def test_state_bytes_round_trip() -> None:
    state = InterestState(np.arange(DIMENSION, dtype=np.float32), 2.5, 7, 1_700_000_000_123, 3, "model-é")

    data = state.to_bytes()
    decoded = InterestState.from_bytes(data, DIMENSION)

    assert len(data) == 32 + 4 * DIMENSION + len("model-é".encode("utf-8"))
    assert (decoded.total_weight, decoded.event_count, decoded.last_event_time_ms) == (2.5, 7, 1_700_000_000_123)
    assert (decoded.superseded_event_count, decoded.model_version) == (3, "model-é")
    np.testing.assert_array_equal(decoded.vector_sum, state.vector_sum)


def test_state_bytes_too_short() -> None:
    with pytest.raises(ValueError, match="shorter than"):
        InterestState.from_bytes(b"\x00" * 40, DIMENSION)


def test_single_and_batch_encoding_agree() -> None:
    encoder = UserInterestEncoder()
    state = InterestState(np.linspace(-1, 1, DIMENSION, dtype=np.float32), 1.5, 4, 1_700_000_000_000, 1, "v1")
    empty = InterestState(np.zeros(DIMENSION, dtype=np.float32), 0.0, 1, 1_700_000_000_000, 0, "v1")

    single = [state.encode(encoder, "7", 123), empty.encode(encoder, "8", 123)]
    batched = encode_user_interests(
        encoder, ["7", "8"], np.stack([state.vector_sum, empty.vector_sum]), np.array([1.5, 0.0]), [4, 1],
        [1_700_000_000_000] * 2, ["v1", "v1"], [1, 0], 123)

    assert single[1] is None
    assert batched[1] is None
    decoded = AvroCodec.for_schema(USER_INTEREST).decode(single[0])
    assert decoded["user_id"] == "7"
    assert decoded["event_count"] == 4
    assert decoded["superseded_event_count"] == 1
    np.testing.assert_allclose(decoded["vector"], state.vector_sum / np.linalg.norm(state.vector_sum), rtol=1e-6)
    np.testing.assert_allclose(
        AvroCodec.for_schema(USER_INTEREST).decode(batched[0])["vector"], decoded["vector"], rtol=1e-6)
