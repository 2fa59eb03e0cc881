"""Checks against the Kafka cluster before the job starts, so that a setting the cluster
cannot honour fails at once with its name rather than later inside a Flink task."""

from __future__ import annotations

import logging

from confluent_kafka.admin import ConfigResource

from dreamumm import kafka_io
from dreamumm.config import ConfigError, Settings
from dreamumm.steps import require_topics
from infra.admin import make_admin_client

logger = logging.getLogger(__name__)

TRANSACTION_MAX_TIMEOUT = "transaction.max.timeout.ms"


def check_before_start(settings: Settings, timeout_s: float = 15.0) -> None:
    """Check the topics, the stop offsets and the transaction timeout against the cluster.

    Raises:
        TopicError: if a pipeline topic does not exist.
        ConfigError: if ``job.events_stop_offsets`` does not list exactly the events topic's
            partitions, or ``job.transaction_timeout_ms`` exceeds a broker's maximum.
    """
    require_topics(settings)
    if settings.job.bounded and settings.job.events_stop_offsets is not None:
        _check_stop_offsets(settings, timeout_s)
    if settings.job.delivery_guarantee == "exactly-once":
        _check_transaction_timeout(settings, timeout_s)


def _check_stop_offsets(settings: Settings, timeout_s: float) -> None:
    topic = settings.kafka.events_topic
    partitions = set(kafka_io.end_offsets(settings.kafka.bootstrap_servers, topic, timeout_s))
    listed = set(settings.job.events_stop_offsets or {})
    if listed != partitions:
        raise ConfigError(
            f"job.events_stop_offsets lists partitions {sorted(listed)}, but {topic} has partitions "
            f"{sorted(partitions)}; give an end offset for every partition (for example from a recording's manifest)")


def _check_transaction_timeout(settings: Settings, timeout_s: float) -> None:
    """Compare job.transaction_timeout_ms with every broker's transaction.max.timeout.ms."""
    admin = make_admin_client(settings.kafka.bootstrap_servers)
    metadata = admin.list_topics(timeout=timeout_s)
    resources = [ConfigResource(ConfigResource.Type.BROKER, str(broker_id)) for broker_id in metadata.brokers]
    for resource, future in admin.describe_configs(resources, request_timeout=timeout_s).items():
        entry = future.result(timeout=timeout_s).get(TRANSACTION_MAX_TIMEOUT)
        if entry is None or entry.value is None:
            logger.warning("broker %s did not report %s; the transaction timeout is not checked",
                           resource.name, TRANSACTION_MAX_TIMEOUT)
            continue
        maximum = int(entry.value)
        if settings.job.transaction_timeout_ms > maximum:
            raise ConfigError(
                f"job.transaction_timeout_ms = {settings.job.transaction_timeout_ms} exceeds broker "
                f"{resource.name}'s {TRANSACTION_MAX_TIMEOUT} = {maximum}, so the exactly-once sinks could not "
                f"start; lower job.transaction_timeout_ms (DREAMUMM__JOB__TRANSACTION_TIMEOUT_MS) or raise "
                f"{TRANSACTION_MAX_TIMEOUT} on the brokers")
