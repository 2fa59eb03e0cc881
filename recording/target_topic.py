"""Creating or checking the topic that a replay writes to."""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource

from infra.admin import make_admin_client
from infra.topics import TopicSpec, ensure_topics
from recording.errors import ReplayError

logger = logging.getLogger(__name__)

TIMESTAMP_TYPE = "message.timestamp.type"
RETENTION_MS = "retention.ms"
# A replay keeps old timestamps, and time-based retention deletes a segment once its newest
# timestamp is older than retention.ms, within minutes of the replay. So topics that a replay
# creates keep their records until they are deleted.
REPLAY_TOPIC_CONFIG = {TIMESTAMP_TYPE: "CreateTime", RETENTION_MS: "-1"}


def prepare_target_topic(
    bootstrap_servers: str,
    topic: str,
    partition_count: int,
    oldest_timestamp_ms: int | None,
    *,
    allow_log_append_time: bool = False,
    replication_factor: int = 1,
    timeout_s: float = 30.0,
) -> int:
    """Create ``topic`` if it is missing, check its configs, and return its partition count.

    A topic created here has ``partition_count`` partitions, CreateTime timestamps and no
    time-based retention. Raises ReplayError if an existing topic has
    message.timestamp.type=LogAppendTime, because the broker would then replace the
    recorded timestamps, unless ``allow_log_append_time`` is set. Logs a warning if the
    topic's retention.ms would delete records as old as ``oldest_timestamp_ms``.
    """
    admin = make_admin_client(bootstrap_servers)
    if not _topic_exists(admin, bootstrap_servers, topic, timeout_s):
        try:
            spec = TopicSpec(topic, partition_count, config=dict(REPLAY_TOPIC_CONFIG))
        except ValueError as error:
            raise ReplayError(f"cannot create the replay target: {error}") from error
        ensure_topics(bootstrap_servers, [spec], timeout_s, replication_factor=replication_factor)

    configs = _topic_configs(admin, topic, timeout_s)
    timestamp_type = configs.get(TIMESTAMP_TYPE)
    if timestamp_type == "LogAppendTime":
        if not allow_log_append_time:
            raise ReplayError(
                f"topic {topic!r} on {bootstrap_servers} has {TIMESTAMP_TYPE}=LogAppendTime, so the broker would "
                "replace every recorded timestamp with its append time. Replay into a new topic (replay creates "
                f"it with CreateTime), set {TIMESTAMP_TYPE}=CreateTime on {topic!r} with kafka-configs.sh "
                "--alter --add-config, or allow the broker's timestamps with --allow-log-append-time "
                "(allow_log_append_time=True)."
            )
        logger.warning(
            "Topic %s has %s=LogAppendTime: the broker replaces the recorded timestamps with its append times",
            topic, TIMESTAMP_TYPE,
        )
    _warn_about_retention(topic, configs.get(RETENTION_MS), oldest_timestamp_ms)
    return _partition_count(admin, bootstrap_servers, topic, timeout_s)


def _topic_exists(admin: AdminClient, bootstrap_servers: str, topic: str, timeout_s: float) -> bool:
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as error:
        raise ReplayError(
            f"could not reach Kafka at {bootstrap_servers} within {timeout_s:.0f} s ({error}). Check that the "
            "broker is running, or set DREAMUMM__KAFKA__BOOTSTRAP_SERVERS."
        ) from error
    return topic in metadata.topics


def _partition_count(admin: AdminClient, bootstrap_servers: str, topic: str, timeout_s: float) -> int:
    try:
        metadata = admin.list_topics(topic, timeout=timeout_s)
    except KafkaException as error:
        raise ReplayError(f"reading the metadata of topic {topic!r} on {bootstrap_servers} failed: {error}") from error
    return len(metadata.topics[topic].partitions)


def _topic_configs(admin: AdminClient, topic: str, timeout_s: float) -> dict[str, str | None]:
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    try:
        entries = admin.describe_configs([resource], request_timeout=timeout_s)[resource].result()
    except KafkaException as error:
        raise ReplayError(
            f"reading the configs of topic {topic!r} failed: {error}. They are needed to check that the broker "
            f"keeps the recorded timestamps ({TIMESTAMP_TYPE})."
        ) from error
    return {name: entry.value for name, entry in entries.items()}


def _warn_about_retention(topic: str, retention_ms: str | None, oldest_timestamp_ms: int | None) -> None:
    if retention_ms is None or oldest_timestamp_ms is None or int(retention_ms) < 0:
        return
    age_ms = time.time() * 1000 - oldest_timestamp_ms
    if age_ms > int(retention_ms):
        logger.warning(
            "Topic %s has %s=%s, but the oldest recorded record is %.1f days old. The broker deletes replayed "
            "records that old at its next retention check (log.retention.check.interval.ms, 5 minutes by "
            "default). Replay into a new topic, or raise %s.",
            topic, RETENTION_MS, retention_ms, age_ms / 86_400_000, RETENTION_MS,
        )
