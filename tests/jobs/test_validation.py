"""Unit tests of watch-event validation and weighting."""

from __future__ import annotations

import math

import pytest

from dreamumm.config import PreferenceSettings
from jobs.validation import MAX_ID_LENGTH, InvalidEvent, validate_event
from jobs.weighting import EventWeigher
from operators import preference_weight

MAX_WATCH_MS = 86_400_000.0


def make_record(**overrides: object) -> dict[str, object]:
    record: dict[str, object] = {
        "user_id": "1",
        "video_id": "2",
        "watch_time_ms": 5_000.0,
        "duration_ms": 10_000,
        "event_time_ms": 1_651_314_030_792,
    }
    record.update(overrides)
    return record


def test_valid_record_passes() -> None:
    event = validate_event(make_record(), MAX_WATCH_MS)
    assert event.user_id == "1"
    assert event.duration_ms == 10_000


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("user_id", "", "user_id is empty"),
        ("video_id", "", "video_id is empty"),
        ("user_id", "u" * (MAX_ID_LENGTH + 1), "more than the maximum"),
        ("watch_time_ms", math.nan, "finite"),
        ("watch_time_ms", -1.0, "finite number >= 0"),
        ("watch_time_ms", math.inf, "finite"),
        ("watch_time_ms", MAX_WATCH_MS * 2, "plausible maximum"),
        ("event_time_ms", -5, "must not be negative"),
    ],
)
def test_invalid_field_is_rejected(field: str, value: object, fragment: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        validate_event(make_record(**{field: value}), MAX_WATCH_MS)
    assert caught.value.reason == "invalid_field"
    assert fragment in caught.value.detail


def test_negative_duration_counts_as_missing() -> None:
    assert validate_event(make_record(duration_ms=-3), MAX_WATCH_MS).duration_ms is None


def test_weigher_uses_threshold_rule() -> None:
    weigher = EventWeigher(PreferenceSettings())
    # Default rule: threshold = clip(duration, 5 s, 18 s); 10 s video, 10 s watched -> weight 0.5.
    assert weigher.weight(10_000.0, 10_000) == pytest.approx(0.5)
    assert weigher.weight(0.0, 0) == pytest.approx(preference_weight(0.0, 18_000.0, 0.5))
