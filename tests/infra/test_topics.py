"""Unit tests for TopicSpec validation. Topic creation itself is tested against a broker in test_broker.py."""

from __future__ import annotations

import pytest

from infra.topics import TopicSpec, ensure_topics


def test_compacted_spec_sets_cleanup_policy() -> None:
    spec = TopicSpec("user-state", partitions=4, compacted=True, config={"min.cleanable.dirty.ratio": "0.1"})

    assert spec.topic_config() == {"min.cleanable.dirty.ratio": "0.1", "cleanup.policy": "compact"}


def test_plain_spec_has_no_cleanup_policy() -> None:
    assert TopicSpec("events").topic_config() == {}


def test_compact_delete_policy_is_kept() -> None:
    spec = TopicSpec("t", compacted=True, config={"cleanup.policy": "compact,delete"})

    assert spec.topic_config()["cleanup.policy"] == "compact,delete"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "Invalid topic name"),
        ({"name": "has space"}, "Invalid topic name"),
        ({"name": ".."}, "Invalid topic name"),
        ({"name": "x" * 250}, "at most 249"),
        ({"name": "t", "partitions": 0}, "at least 1 partition"),
        ({"name": "t", "compacted": True, "config": {"cleanup.policy": "delete"}}, "compacted=True"),
        ({"name": "t", "compacted": False, "config": {"cleanup.policy": "compact"}}, "compacted=False"),
    ],
)
def test_spec_rejects_invalid(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TopicSpec(**kwargs)  # type: ignore[arg-type]


def test_ensure_topics_rejects_duplicates() -> None:
    # The duplicate check runs before any connection, so no broker is needed.
    with pytest.raises(ValueError, match="'t' appears more than once"):
        ensure_topics("127.0.0.1:1", [TopicSpec("t"), TopicSpec("t", partitions=2)])
