"""The rule that picks the stored vector or Candidate-DreamUMM, one case per reason."""

from __future__ import annotations

import pytest

from ranking import ChoiceReason, VectorRule, VectorSource

VERSION = "test-space-v1"


@pytest.fixture
def rule() -> VectorRule:
    return VectorRule(model_version=VERSION, max_vector_age_ms=1_000, min_event_count=3)


def test_usable_vector_is_stored(rule: VectorRule, make_stored_vector) -> None:
    choice = rule.choose(make_stored_vector("u", [1, 0], event_count=3, last_event_time_ms=5_000), now_ms=6_000)
    assert (choice.source, choice.reason) == (VectorSource.STORED, ChoiceReason.STORED_VECTOR_USABLE)
    assert choice.detail == "the stored vector sums 3 events, the newest 1000 ms old"


@pytest.mark.parametrize("entry, reason, detail", [
    (None, ChoiceReason.NO_STORED_VECTOR, "no vector for this user"),
    (dict(model_version="other-space"), ChoiceReason.OTHER_MODEL_VERSION, "'other-space', the candidates of"),
    (dict(last_event_time_ms=4_999), ChoiceReason.STORED_VECTOR_TOO_OLD, "1001 ms old, more than the limit of 1000"),
    (dict(last_event_time_ms=6_500), ChoiceReason.STORED_VECTOR_AFTER_REQUEST, "500 ms after the request time"),
    (dict(event_count=2), ChoiceReason.TOO_FEW_EVENTS, "sums 2 events, fewer than the minimum of 3"),
    (dict(vector=[0, 0]), ChoiceReason.STORED_VECTOR_WITHOUT_DIRECTION, "all zeros"),
])
def test_each_failed_check_picks_candidate(rule: VectorRule, make_stored_vector, entry: dict | None,
                                           reason: ChoiceReason, detail: str) -> None:
    stored = None
    if entry is not None:
        fields = dict(vector=[1, 0], event_count=3, last_event_time_ms=5_000) | entry
        stored = make_stored_vector("u", **fields)
    choice = rule.choose(stored, now_ms=6_000)
    assert (choice.source, choice.reason) == (VectorSource.CANDIDATE, reason)
    assert detail in choice.detail


def test_caller_flag_overrides_a_usable_vector(rule: VectorRule, make_stored_vector) -> None:
    choice = rule.choose(make_stored_vector("u", [1, 0]), now_ms=1_000, request="candidate")
    assert (choice.source, choice.reason) == (VectorSource.CANDIDATE, ChoiceReason.CALLER_REQUESTED_CANDIDATE)


def test_model_version_is_checked_before_age(make_stored_vector) -> None:
    rule = VectorRule(model_version=VERSION, max_vector_age_ms=0)
    stored = make_stored_vector("u", [1, 0], last_event_time_ms=0, model_version="other-space")
    assert rule.choose(stored, now_ms=10).reason is ChoiceReason.OTHER_MODEL_VERSION


def test_no_age_limit_accepts_old_vectors(make_stored_vector) -> None:
    rule = VectorRule(model_version=VERSION)
    assert rule.choose(make_stored_vector("u", [1, 0], last_event_time_ms=0), now_ms=10**13).source is VectorSource.STORED


@pytest.mark.parametrize("fields, message", [
    (dict(max_vector_age_ms=-1), "max_vector_age_ms must be >= 0 or None, got -1"),
    (dict(min_event_count=0), "min_event_count must be >= 1, got 0"),
])
def test_rejects_bad_settings(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VectorRule(model_version=VERSION, **fields)


def test_rejects_unknown_request(rule: VectorRule) -> None:
    with pytest.raises(ValueError, match="'auto' or 'candidate', got 'stored'"):
        rule.choose(None, now_ms=0, request="stored")  # type: ignore[arg-type]
