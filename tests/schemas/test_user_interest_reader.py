"""The fast UserInterest reader against fastavro's encoding of the same records."""

from __future__ import annotations

import numpy as np
import pytest

from schemas import USER_INTEREST, AvroCodec, DecodeError
from schemas.user_interest_reader import UserInterestReader


def _record(dimension: int, user_id: str = "user-ä-7") -> dict[str, object]:
    rng = np.random.default_rng(dimension)
    return {
        "user_id": user_id,
        "vector": rng.normal(size=dimension).astype(np.float32).tolist(),
        "total_weight": 12.375,
        "event_count": 300_000_000_000,
        "last_event_time_ms": -5,
        "emit_time_ms": 1_700_000_000_123,
        "embedding_model_version": "content-v2",
        "superseded_event_count": 0,
    }


@pytest.mark.parametrize("dimension", [0, 1, 64, 128, 256])
def test_reader_returns_what_fastavro_wrote(dimension: int) -> None:
    record = _record(dimension)
    decoded = UserInterestReader().read(AvroCodec.for_schema(USER_INTEREST).encode(record))
    assert decoded.user_id == record["user_id"]
    np.testing.assert_array_equal(decoded.vector, np.asarray(record["vector"], dtype=np.float32))
    assert decoded.total_weight == record["total_weight"]
    assert decoded.event_count == record["event_count"]
    assert decoded.last_event_time_ms == record["last_event_time_ms"]
    assert decoded.emit_time_ms == record["emit_time_ms"]
    assert decoded.embedding_model_version == record["embedding_model_version"]
    assert decoded.superseded_event_count == record["superseded_event_count"]


def test_reader_rejects_another_schema_and_truncated_records() -> None:
    payload = AvroCodec.for_schema(USER_INTEREST).encode(_record(8))
    reader = UserInterestReader()
    with pytest.raises(DecodeError) as other_schema:
        reader.read(b"\xc3\x01" + bytes(8) + payload[10:])
    assert other_schema.value.reason == "unknown_schema"
    for cut in (len(payload) - 1, 20, 11):
        with pytest.raises(DecodeError) as truncated:
            reader.read(payload[:cut])
        assert truncated.value.reason == "invalid_avro"
    with pytest.raises(DecodeError, match="after the last field"):
        reader.read(payload + b"\x00")
