"""The summary of a job run, computed from what the job wrote to Kafka."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from dreamumm import kafka_io
from dreamumm.config import Settings
from schemas import DEAD_LETTER, USER_INTEREST, AvroCodec


@dataclass(frozen=True)
class UserVector:
    """The newest UserInterest record of one user."""

    user_id: str
    vector: np.ndarray
    total_weight: float
    event_count: int
    last_event_time_ms: int
    model_version: str
    superseded_event_count: int = 0
    deduplicated_event_count: int = 0


@dataclass
class RunSummary:
    """Accounting of one job run over a topic that it consumed completely."""

    events_read: int
    dead_letters_by_reason: Counter[str]
    embedding_dead_letters_by_reason: Counter[str]
    users: dict[str, UserVector]
    feature_records: int
    feature_tombstones: int
    deletion_dead_letters_by_reason: Counter[str] = field(default_factory=Counter)
    nearest_tags: dict[str, list[tuple[str, float]]] = field(default_factory=dict)

    @property
    def events_dead_lettered(self) -> int:
        return sum(self.dead_letters_by_reason.values())

    @property
    def events_contributed(self) -> int:
        """Events summed into a vector, including those a model-version change superseded."""
        return sum(user.event_count + user.superseded_event_count for user in self.users.values())

    @property
    def events_deduplicated(self) -> int:
        """Events dropped because they repeated an event already summed for their user."""
        return sum(user.deduplicated_event_count for user in self.users.values())

    @property
    def balanced(self) -> bool:
        """True when every event read contributed, was dead-lettered or was dropped as a duplicate.

        Users erased by a deletion have no record left, so a run with deletions does not balance
        here; the job's counters (``jobs.counters``) account for those.
        """
        return self.events_read == self.events_contributed + self.events_dead_lettered + self.events_deduplicated


def latest_user_vectors(settings: Settings) -> tuple[dict[str, UserVector], int, int]:
    """Read the feature topic; return the newest record per user, the record count and the tombstone count."""
    codec = AvroCodec.for_schema(USER_INTEREST)
    users: dict[str, UserVector] = {}
    count = tombstones = 0
    for record in kafka_io.read_topic(settings.kafka.bootstrap_servers, settings.kafka.features_topic):
        count += 1
        if record.value is None:
            tombstones += 1
            users.pop(record.key.decode("utf-8"), None)
            continue
        value = codec.decode(record.value)
        # Records of one user share a partition, so a later offset is a newer record.
        users[value["user_id"]] = UserVector(
            user_id=value["user_id"],
            vector=np.asarray(value["vector"], dtype=np.float32),
            total_weight=value["total_weight"],
            event_count=value["event_count"],
            last_event_time_ms=value["last_event_time_ms"],
            model_version=value["embedding_model_version"],
            superseded_event_count=value["superseded_event_count"],
            deduplicated_event_count=value["deduplicated_event_count"],
        )
    return users, count, tombstones


def summarise_run(settings: Settings, tag_vectors: Mapping[str, np.ndarray] | None = None,
                  users_with_tags: int = 3) -> RunSummary:
    """Count events read, dead-lettered and contributed, and find each top user's nearest tags."""
    kafka = settings.kafka
    events_read = kafka_io.count_records(kafka.bootstrap_servers, kafka.events_topic)
    dead_letter_codec = AvroCodec.for_schema(DEAD_LETTER)
    event_reasons: Counter[str] = Counter()
    embedding_reasons: Counter[str] = Counter()
    deletion_reasons: Counter[str] = Counter()
    for record in kafka_io.read_topic(kafka.bootstrap_servers, kafka.dead_letter_topic):
        letter = dead_letter_codec.decode(record.value)
        if letter["source_topic"] == kafka.events_topic:
            event_reasons[letter["reason"]] += 1
        elif letter["source_topic"] == kafka.embeddings_topic:
            embedding_reasons[letter["reason"]] += 1
        else:
            deletion_reasons[letter["reason"]] += 1
    users, feature_records, tombstones = latest_user_vectors(settings)
    summary = RunSummary(events_read, event_reasons, embedding_reasons, users, feature_records, tombstones,
                         deletion_dead_letters_by_reason=deletion_reasons)
    if tag_vectors:
        top_users = sorted(users.values(), key=lambda user: (-user.event_count, user.user_id))[:users_with_tags]
        for user in top_users:
            summary.nearest_tags[user.user_id] = nearest_tags(user.vector, tag_vectors)
    return summary


def nearest_tags(vector: np.ndarray, tag_vectors: Mapping[str, np.ndarray], count: int = 3) -> list[tuple[str, float]]:
    """Return the ``count`` tags whose unit vectors have the largest inner product with ``vector``."""
    names = list(tag_vectors)
    matrix = np.stack([tag_vectors[name] for name in names]).astype(np.float64)
    scores = matrix @ vector.astype(np.float64)
    order = np.argsort(-scores, kind="stable")[:count]
    return [(names[i], float(scores[i])) for i in order]


def format_summary(summary: RunSummary) -> str:
    """Render the summary as the plain-text report that `dreamumm demo` prints."""
    lines = [
        "DreamUMM feature job summary",
        f"  events read:              {summary.events_read}",
        f"  events contributed:       {summary.events_contributed}",
        f"  events dead-lettered:     {summary.events_dead_lettered}",
        f"  events deduplicated:      {summary.events_deduplicated}",
    ]
    for reason, count in sorted(summary.dead_letters_by_reason.items()):
        lines.append(f"    {reason}: {count}")
    if summary.embedding_dead_letters_by_reason:
        lines.append(f"  embedding records dead-lettered: {sum(summary.embedding_dead_letters_by_reason.values())}")
        for reason, count in sorted(summary.embedding_dead_letters_by_reason.items()):
            lines.append(f"    {reason}: {count}")
    lines.append(f"  users emitted:            {len(summary.users)} ({summary.feature_records} records written, "
                 f"{summary.feature_tombstones} of them tombstones)")
    verdict = "balanced" if summary.balanced else "NOT balanced: some events are unaccounted for"
    lines.append(f"  accounting (read = contributed + dead-lettered + deduplicated): {verdict}")
    for user_id, tags in summary.nearest_tags.items():
        user = summary.users[user_id]
        rendered = ", ".join(f"tag {name} ({score:.2f})" for name, score in tags)
        lines.append(f"  user {user_id} ({user.event_count} events, weight {user.total_weight:.2f}): closest to {rendered}")
    return "\n".join(lines)
