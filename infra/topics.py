"""Topic creation, deletion and readiness checks with the confluent_kafka AdminClient."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ClusterMetadata, ConfigResource, NewTopic

from infra.admin import make_admin_client

logger = logging.getLogger(__name__)

CLEANUP_POLICY = "cleanup.policy"
POLL_INTERVAL_S = 0.2
# Kafka's limit on topic names (Topic.MAX_NAME_LENGTH) and its legal characters.
MAX_TOPIC_NAME_LENGTH = 249
_TOPIC_NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]+")


class TopicError(RuntimeError):
    """A topic could not be created, deleted or found in time."""


@dataclass(frozen=True)
class TopicSpec:
    """Desired topic: name, partition count, compaction and extra topic configs.

    ``compacted`` sets cleanup.policy=compact. ``config`` may still set
    cleanup.policy to "compact,delete" on a compacted topic.
    """

    name: str
    partitions: int = 1
    compacted: bool = False
    config: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _TOPIC_NAME_PATTERN.fullmatch(self.name) or self.name in (".", ".."):
            raise ValueError(
                f"Invalid topic name {self.name!r}: use letters, digits, '.', '_' and '-' only, "
                "and not '.' or '..'"
            )
        if len(self.name) > MAX_TOPIC_NAME_LENGTH:
            raise ValueError(
                f"Topic name {self.name!r} has {len(self.name)} characters, Kafka allows at most "
                f"{MAX_TOPIC_NAME_LENGTH}"
            )
        if self.partitions < 1:
            raise ValueError(f"Topic {self.name!r} needs at least 1 partition, got {self.partitions}")

        policy = self.config.get(CLEANUP_POLICY)
        if policy is not None:
            has_compact = "compact" in _policy_parts(policy)
            if has_compact != self.compacted:
                raise ValueError(
                    f"Topic {self.name!r} has compacted={self.compacted} but config "
                    f"{CLEANUP_POLICY}={policy!r}. Set compacted to match, or drop {CLEANUP_POLICY} from config."
                )

    def topic_config(self) -> dict[str, str]:
        """Return the topic configs to create the topic with, cleanup.policy included."""
        config = dict(self.config)
        if self.compacted:
            config.setdefault(CLEANUP_POLICY, "compact")
        return config


def ensure_topics(
    bootstrap_servers: str,
    specs: Iterable[TopicSpec],
    timeout_s: float = 30.0,
    *,
    replication_factor: int = 1,
) -> list[str]:
    """Create the topics in ``specs`` that do not exist yet and wait until they have leaders.

    Returns the names created by this call, in spec order. An existing topic is left
    as it is, and a warning is logged if its partition count or compaction differs
    from its spec. Raises TopicError if the broker rejects a topic or does not
    respond within ``timeout_s``.
    """
    specs = list(specs)
    _reject_duplicate_names(specs)
    if not specs:
        return []
    if replication_factor < 1:
        raise ValueError(f"replication_factor must be at least 1, got {replication_factor}")

    admin = make_admin_client(bootstrap_servers)
    metadata = _list_topics(admin, bootstrap_servers, timeout_s)
    existing = [spec for spec in specs if spec.name in metadata.topics]
    missing = [spec for spec in specs if spec.name not in metadata.topics]

    _warn_about_mismatches(admin, metadata, existing, timeout_s)

    created: list[str] = []
    if missing:
        new_topics = [
            NewTopic(
                spec.name,
                num_partitions=spec.partitions,
                replication_factor=replication_factor,
                config=spec.topic_config(),
            )
            for spec in missing
        ]
        futures = admin.create_topics(new_topics, operation_timeout=timeout_s, request_timeout=timeout_s)
        for spec in missing:
            try:
                futures[spec.name].result()
            except KafkaException as error:
                kafka_error = error.args[0]
                if kafka_error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    logger.info("Topic %s was created by another client meanwhile", spec.name)
                    continue
                raise TopicError(
                    f"Creating topic {spec.name!r} ({spec.partitions} partitions, replication factor "
                    f"{replication_factor}, config {spec.topic_config()}) on {bootstrap_servers} failed: "
                    f"{kafka_error.str()}"
                ) from error
            created.append(spec.name)
            logger.info(
                "Created topic %s with %d partitions, replication factor %d, config %s",
                spec.name,
                spec.partitions,
                replication_factor,
                spec.topic_config(),
            )

    wait_for_topics(bootstrap_servers, [spec.name for spec in specs], timeout_s)
    return created


def delete_topics(
    bootstrap_servers: str,
    names: Iterable[str],
    timeout_s: float = 30.0,
) -> list[str]:
    """Delete the named topics and wait until the broker no longer lists them.

    Returns the names deleted by this call. Topics that do not exist are skipped.
    Raises TopicError if the broker rejects a deletion or the topics are still
    listed after ``timeout_s``.
    """
    names = list(dict.fromkeys(names))
    if not names:
        return []

    admin = make_admin_client(bootstrap_servers)
    metadata = _list_topics(admin, bootstrap_servers, timeout_s)
    present = [name for name in names if name in metadata.topics]
    if not present:
        return []

    futures = admin.delete_topics(present, operation_timeout=timeout_s, request_timeout=timeout_s)
    deleted: list[str] = []
    for name in present:
        try:
            futures[name].result()
        except KafkaException as error:
            kafka_error = error.args[0]
            if kafka_error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                logger.info("Topic %s was deleted by another client meanwhile", name)
                continue
            raise TopicError(f"Deleting topic {name!r} on {bootstrap_servers} failed: {kafka_error.str()}") from error
        deleted.append(name)
        logger.info("Deleted topic %s", name)

    _wait_until_absent(admin, bootstrap_servers, present, timeout_s)
    return deleted


def wait_for_topics(bootstrap_servers: str, names: Iterable[str], timeout_s: float = 30.0) -> None:
    """Wait until every named topic exists and each of its partitions has a leader.

    Raises TopicError naming the topics that are still missing or leaderless after ``timeout_s``.
    """
    names = list(dict.fromkeys(names))
    if not names:
        return

    admin = make_admin_client(bootstrap_servers)
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = max(0.1, deadline - time.monotonic())
        not_ready = names
        try:
            metadata = admin.list_topics(timeout=min(remaining, 5.0))
        except KafkaException as error:
            logger.debug("Metadata request to %s failed: %s", bootstrap_servers, error)
        else:
            not_ready = [name for name in names if not _is_ready(metadata, name)]
            if not not_ready:
                return

        if time.monotonic() >= deadline:
            raise TopicError(
                f"Topics {not_ready} on {bootstrap_servers} were not ready (created, with a leader for "
                f"every partition) within {timeout_s:.0f} s. Create them with ensure_topics() "
                "or check the broker log."
            )
        time.sleep(POLL_INTERVAL_S)


def _is_ready(metadata: ClusterMetadata, name: str) -> bool:
    topic = metadata.topics.get(name)
    if topic is None or topic.error is not None or not topic.partitions:
        return False
    return all(partition.leader >= 0 and partition.error is None for partition in topic.partitions.values())


def _wait_until_absent(admin: AdminClient, bootstrap_servers: str, names: Sequence[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        metadata = _list_topics(admin, bootstrap_servers, max(0.1, deadline - time.monotonic()))
        still_listed = [name for name in names if name in metadata.topics]
        if not still_listed:
            return
        if time.monotonic() >= deadline:
            raise TopicError(
                f"Topics {still_listed} are still listed by {bootstrap_servers} {timeout_s:.0f} s after deletion"
            )
        time.sleep(POLL_INTERVAL_S)


def _list_topics(admin: AdminClient, bootstrap_servers: str, timeout_s: float) -> ClusterMetadata:
    try:
        return admin.list_topics(timeout=timeout_s)
    except KafkaException as error:
        raise TopicError(
            f"Listing topics on {bootstrap_servers} failed within {timeout_s:.0f} s: {error}. "
            "Check that the broker is running and the address is right."
        ) from error


def _warn_about_mismatches(
    admin: AdminClient,
    metadata: ClusterMetadata,
    existing: Sequence[TopicSpec],
    timeout_s: float,
) -> None:
    """Log a warning for each existing topic whose partition count or compaction differs from its spec."""
    for spec in existing:
        actual_partitions = len(metadata.topics[spec.name].partitions)
        if actual_partitions != spec.partitions:
            logger.warning(
                "Topic %s exists with %d partitions, but its spec asks for %d. Leaving it unchanged. "
                "Delete and recreate it to change the partition count.",
                spec.name,
                actual_partitions,
                spec.partitions,
            )

    if not existing:
        return
    resources = [ConfigResource(ConfigResource.Type.TOPIC, spec.name) for spec in existing]
    futures = admin.describe_configs(resources, request_timeout=timeout_s)
    for spec, resource in zip(existing, resources):
        try:
            entries = futures[resource].result()
        except KafkaException as error:
            logger.warning("Could not read the configs of topic %s to compare them: %s", spec.name, error)
            continue
        entry = entries.get(CLEANUP_POLICY)
        actual_compacted = entry is not None and "compact" in _policy_parts(entry.value or "")
        if actual_compacted != spec.compacted:
            logger.warning(
                "Topic %s exists with %s=%s, but its spec has compacted=%s. Leaving it unchanged.",
                spec.name,
                CLEANUP_POLICY,
                entry.value if entry is not None else None,
                spec.compacted,
            )


def _policy_parts(policy: str) -> set[str]:
    return {part.strip() for part in policy.split(",") if part.strip()}


def _reject_duplicate_names(specs: Sequence[TopicSpec]) -> None:
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise ValueError(f"Topic {spec.name!r} appears more than once in specs. Keep one spec per topic.")
        seen.add(spec.name)
