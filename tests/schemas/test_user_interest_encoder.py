"""Unit tests of the batch UserInterest encoder against the generic Avro codec."""

from __future__ import annotations

import numpy as np
import pytest

from schemas import USER_INTEREST, AvroCodec
from schemas.user_interest_encoder import UserInterestEncoder


@pytest.mark.parametrize("dimension", [1, 8, 64, 128])
def test_encoder_matches_fastavro_bytes(dimension: int) -> None:
    rng = np.random.default_rng(dimension)
    vectors = rng.normal(size=(4, dimension)).astype(np.float32)
    user_ids = ["a", "ü-é", "", "x" * 300]
    weights = [1.0, 2.5, 0.0, 1e-300]
    counts = [1, 300, 0, 2**40]
    times = [5, -1, 2**40, 1_700_000_000_000]
    versions = ["m", "model-v2", "", "ß"]
    superseded = [0, 5, 2**33, 1]

    encoded = UserInterestEncoder().encode_many(user_ids, vectors, weights, counts, times, 123, versions, superseded)

    codec = AvroCodec.for_schema(USER_INTEREST)
    for row in range(4):
        expected = codec.encode({
            "user_id": user_ids[row],
            "vector": vectors[row].tolist(),
            "total_weight": weights[row],
            "event_count": counts[row],
            "last_event_time_ms": times[row],
            "emit_time_ms": 123,
            "embedding_model_version": versions[row],
            "superseded_event_count": superseded[row],
        })
        assert encoded[row] == expected, f"row {row}"


def test_encoder_rejects_mismatched_rows() -> None:
    with pytest.raises(ValueError, match="expected 2 vectors"):
        UserInterestEncoder().encode_many(
            ["a", "b"], np.zeros((3, 4), np.float32), [1, 1], [1, 1], [1, 1], 0, ["m", "m"], [0, 0])
