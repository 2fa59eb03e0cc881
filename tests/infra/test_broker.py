"""Integration tests: a real KRaft broker from the cached jars, on free loopback ports."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, ConfigResource

import infra.broker as broker_module
from infra import (
    BrokerSettings,
    BrokerStartError,
    LocalBroker,
    RuntimeJars,
    TopicError,
    TopicSpec,
    delete_topics,
    ensure_jars,
    ensure_topics,
    find_free_ports,
    is_port_open,
    wait_for_topics,
)

pytestmark = pytest.mark.integration

# Lower than Kafka's default of 15 minutes, so a test can show that the setting is applied.
TRANSACTION_MAX_TIMEOUT_MS = 120_000
COMPACTED_TOPIC = "test-user-state"
PLAIN_TOPIC = "test-watch-events"


@pytest.fixture(scope="module")
def runtime_jars() -> RuntimeJars:
    jars, _ = ensure_jars()
    return jars


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory, runtime_jars: RuntimeJars) -> Iterator[LocalBroker]:
    port, controller_port = find_free_ports(2)
    settings = BrokerSettings(
        port=port,
        controller_port=controller_port,
        root_dir=tmp_path_factory.mktemp("kafka"),
        transaction_max_timeout_ms=TRANSACTION_MAX_TIMEOUT_MS,
    )
    local_broker = LocalBroker(settings, jars=runtime_jars)
    # A cluster id may start with "-", which the format command once read as an option. Every
    # run of this module starts from such an id.
    new_cluster_id = broker_module._new_cluster_id
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(broker_module, "_new_cluster_id", lambda: "-" + new_cluster_id()[1:])
        assert local_broker.start(timeout_s=90) is True
    yield local_broker
    local_broker.stop()


@pytest.fixture(scope="module")
def topics(broker: LocalBroker) -> list[str]:
    return ensure_topics(
        broker.bootstrap_servers,
        [TopicSpec(COMPACTED_TOPIC, partitions=3, compacted=True), TopicSpec(PLAIN_TOPIC, partitions=2)],
    )


def read_values(bootstrap_servers: str, topic: str, isolation_level: str, expected_count: int) -> list[bytes]:
    """Read ``topic`` from the start until ``expected_count`` values arrive or 30 s pass."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"test-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": isolation_level,
        }
    )
    values: list[bytes] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        while len(values) < expected_count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:
                raise KafkaException(message.error())
            values.append(message.value())
    finally:
        consumer.close()
    return values


def test_broker_is_healthy(broker: LocalBroker) -> None:
    assert broker.is_running()
    assert broker.is_healthy()
    pid_text = broker.settings.pid_path.read_text(encoding="utf-8").strip()
    assert int(pid_text) == broker.pid
    assert broker.settings.server_log_path.stat().st_size > 0


def test_second_start_reuses_broker(broker: LocalBroker) -> None:
    other = LocalBroker(broker.settings)

    assert other.start() is False
    assert other.pid == broker.pid


def test_broker_config_applied(broker: LocalBroker) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    resource = ConfigResource(ConfigResource.Type.BROKER, "1")

    entries = admin.describe_configs([resource], request_timeout=10)[resource].result()

    assert entries["auto.create.topics.enable"].value == "false"
    assert entries["transaction.max.timeout.ms"].value == str(TRANSACTION_MAX_TIMEOUT_MS)
    assert entries["group.initial.rebalance.delay.ms"].value == "0"
    assert entries["log.cleaner.enable"].value == "true"


def test_ensure_topics_creates_missing(broker: LocalBroker, topics: list[str]) -> None:
    assert topics == [COMPACTED_TOPIC, PLAIN_TOPIC]

    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    metadata = admin.list_topics(timeout=10)
    assert len(metadata.topics[COMPACTED_TOPIC].partitions) == 3
    assert len(metadata.topics[PLAIN_TOPIC].partitions) == 2

    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in (COMPACTED_TOPIC, PLAIN_TOPIC)]
    futures = admin.describe_configs(resources, request_timeout=10)
    assert futures[resources[0]].result()["cleanup.policy"].value == "compact"
    assert futures[resources[1]].result()["cleanup.policy"].value == "delete"


def test_ensure_topics_skips_existing(
    broker: LocalBroker, topics: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    created = ensure_topics(
        broker.bootstrap_servers,
        [TopicSpec(COMPACTED_TOPIC, partitions=3, compacted=True), TopicSpec(PLAIN_TOPIC, partitions=5)],
    )

    assert created == []
    assert f"Topic {PLAIN_TOPIC} exists with 2 partitions, but its spec asks for 5" in caplog.text


def test_transactions_read_committed(broker: LocalBroker, topics: list[str]) -> None:
    producer = Producer(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "transactional.id": f"test-{uuid.uuid4()}",
            "transaction.timeout.ms": 60_000,
        }
    )
    producer.init_transactions(30)

    producer.begin_transaction()
    producer.produce(PLAIN_TOPIC, key=b"user-1", value=b"aborted", partition=0)
    producer.flush(30)
    producer.abort_transaction(30)

    producer.begin_transaction()
    producer.produce(PLAIN_TOPIC, key=b"user-1", value=b"committed", partition=0)
    producer.commit_transaction(30)

    committed = read_values(broker.bootstrap_servers, PLAIN_TOPIC, "read_committed", expected_count=1)
    uncommitted = read_values(broker.bootstrap_servers, PLAIN_TOPIC, "read_uncommitted", expected_count=2)

    assert committed == [b"committed"]
    # The aborted record is in the log, so only read_committed hides it.
    assert uncommitted == [b"aborted", b"committed"]


def test_transaction_timeout_above_max_rejected(broker: LocalBroker) -> None:
    producer = Producer(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "transactional.id": f"test-{uuid.uuid4()}",
            "transaction.timeout.ms": TRANSACTION_MAX_TIMEOUT_MS + 60_000,
        }
    )

    with pytest.raises(KafkaException) as error:
        producer.init_transactions(30)

    assert error.value.args[0].code() == KafkaError.INVALID_TRANSACTION_TIMEOUT


def test_delete_topics_removes_topic(broker: LocalBroker) -> None:
    ensure_topics(broker.bootstrap_servers, [TopicSpec("test-to-delete")])

    assert delete_topics(broker.bootstrap_servers, ["test-to-delete", "test-never-created"]) == ["test-to-delete"]
    assert delete_topics(broker.bootstrap_servers, ["test-to-delete"]) == []


def test_wait_for_missing_topic_times_out(broker: LocalBroker) -> None:
    with pytest.raises(TopicError, match="test-missing"):
        wait_for_topics(broker.bootstrap_servers, ["test-missing"], timeout_s=1)


def test_stop_closes_port(tmp_path: Path, runtime_jars: RuntimeJars) -> None:
    port, controller_port = find_free_ports(2)
    settings = BrokerSettings(port=port, controller_port=controller_port, root_dir=tmp_path / "kafka")
    broker = LocalBroker(settings, jars=runtime_jars)

    assert broker.start(timeout_s=90) is True
    cluster_id = (settings.data_dir / "meta.properties").read_text(encoding="utf-8")
    assert broker.stop() is True

    assert not is_port_open("127.0.0.1", port)
    assert not is_port_open("127.0.0.1", controller_port)
    assert not settings.pid_path.exists()
    assert broker.is_running() is False
    assert broker.stop() is False

    # A second start reuses the formatted storage, and kill() closes the ports too.
    assert broker.start(timeout_s=90) is True
    assert (settings.data_dir / "meta.properties").read_text(encoding="utf-8") == cluster_id
    assert broker.kill() is True
    assert not is_port_open("127.0.0.1", port)
    assert broker.is_running() is False


def test_start_rejects_changed_settings(broker: LocalBroker) -> None:
    (new_port,) = find_free_ports(1)
    changed = BrokerSettings(
        port=new_port,
        controller_port=broker.settings.controller_port,
        root_dir=broker.settings.root_dir,
        transaction_max_timeout_ms=TRANSACTION_MAX_TIMEOUT_MS,
    )

    with pytest.raises(BrokerStartError, match="settings that differ"):
        LocalBroker(changed).start()

    assert broker.is_healthy()


def test_context_manager_keeps_reused_broker(broker: LocalBroker) -> None:
    with LocalBroker(broker.settings) as reused:
        assert reused.pid == broker.pid

    assert broker.is_healthy()
