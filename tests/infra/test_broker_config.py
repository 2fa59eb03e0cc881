"""Unit tests for BrokerSettings, server.properties rendering and the port-in-use check."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from infra.broker import LocalBroker, PortInUseError
from infra.broker_config import (
    CONTROLLER_PORT_ENV,
    PORT_ENV,
    ROOT_DIR_ENV,
    BrokerSettings,
    render_properties,
    server_properties,
)
from infra.ports import find_free_ports, is_port_bindable, is_port_open


def parse_properties(text: str) -> dict[str, str]:
    entries = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            entries[key] = value
    return entries


def test_properties_single_node_kraft(tmp_path: Path) -> None:
    settings = BrokerSettings(port=20001, controller_port=20002, root_dir=tmp_path)

    properties = server_properties(settings)

    assert properties["process.roles"] == "broker,controller"
    assert properties["node.id"] == "1"
    assert properties["controller.quorum.voters"] == "1@127.0.0.1:20002"
    assert properties["listeners"] == "PLAINTEXT://127.0.0.1:20001,CONTROLLER://127.0.0.1:20002"
    assert properties["advertised.listeners"] == "PLAINTEXT://127.0.0.1:20001"
    assert properties["controller.listener.names"] == "CONTROLLER"
    assert properties["log.dirs"] == str(tmp_path.resolve() / "data")
    assert properties["offsets.topic.replication.factor"] == "1"
    assert properties["transaction.state.log.replication.factor"] == "1"
    assert properties["transaction.state.log.min.isr"] == "1"
    assert properties["auto.create.topics.enable"] == "false"
    assert properties["group.initial.rebalance.delay.ms"] == "0"
    assert properties["transaction.max.timeout.ms"] == "900000"
    assert properties["log.cleaner.enable"] == "true"


def test_extra_properties_override(tmp_path: Path) -> None:
    settings = BrokerSettings(
        root_dir=tmp_path,
        transaction_max_timeout_ms=120_000,
        extra_properties={"auto.create.topics.enable": "true", "num.partitions": "4"},
    )

    properties = server_properties(settings)

    assert properties["transaction.max.timeout.ms"] == "120000"
    assert properties["auto.create.topics.enable"] == "true"
    assert properties["num.partitions"] == "4"


def test_render_escapes_backslashes(tmp_path: Path) -> None:
    text = render_properties({"log.dirs": r"C:\kafka", "a.b": " leading blank"})

    assert parse_properties(text) == {"log.dirs": r"C:\\kafka", "a.b": r"\ leading blank"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"host": "0.0.0.0"}, "loopback"),
        ({"host": "10.1.2.3"}, "loopback"),
        ({"host": "example.org"}, "loopback"),
        ({"port": 0}, "between 1 and 65535"),
        ({"controller_port": 70000}, "between 1 and 65535"),
        ({"port": 20005, "controller_port": 20005}, "must differ"),
        ({"heap": "lots"}, "JVM memory size"),
        ({"transaction_max_timeout_ms": 0}, "positive"),
        ({"extra_properties": {"bad key": "x"}}, "Invalid broker property name"),
        ({"extra_properties": {"a.b": "two\nlines"}}, "one line"),
    ],
)
def test_settings_reject_invalid(tmp_path: Path, overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BrokerSettings(root_dir=tmp_path, **overrides)  # type: ignore[arg-type]


def test_settings_accept_localhost(tmp_path: Path) -> None:
    settings = BrokerSettings(host="localhost", root_dir=tmp_path)

    assert settings.bootstrap_servers == "localhost:19092"


def test_from_env_reads_ports_and_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(PORT_ENV, "29092")
    monkeypatch.setenv(CONTROLLER_PORT_ENV, "29093")
    monkeypatch.setenv(ROOT_DIR_ENV, str(tmp_path / "kafka"))

    settings = BrokerSettings.from_env()

    assert settings.port == 29092
    assert settings.controller_port == 29093
    assert settings.root_dir == (tmp_path / "kafka").resolve()
    assert settings.pid_path == (tmp_path / "kafka" / "broker.pid").resolve()


def test_from_env_overrides_win(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(PORT_ENV, "29092")

    settings = BrokerSettings.from_env(port=29500, root_dir=tmp_path)

    assert settings.port == 29500


def test_from_env_rejects_bad_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PORT_ENV, "kafka")

    with pytest.raises(ValueError, match=f"{PORT_ENV} must be a port number, got 'kafka'"):
        BrokerSettings.from_env()


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = find_free_ports(3)

    assert len(set(ports)) == 3
    for port in ports:
        assert is_port_bindable("127.0.0.1", port)


def test_start_rejects_taken_port(tmp_path: Path) -> None:
    port, controller_port = find_free_ports(2)
    settings = BrokerSettings(port=port, controller_port=controller_port, root_dir=tmp_path)

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        assert is_port_open("127.0.0.1", port)

        # The port check runs before any jar lookup or JVM launch.
        with pytest.raises(PortInUseError, match=f"Port {port} on 127.0.0.1 is already in use") as error:
            LocalBroker(settings).start()

    assert PORT_ENV in str(error.value)
    assert "BrokerSettings(port=...)" in str(error.value)


def test_start_rejects_taken_controller_port(tmp_path: Path) -> None:
    port, controller_port = find_free_ports(2)
    settings = BrokerSettings(port=port, controller_port=controller_port, root_dir=tmp_path)

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", controller_port))
        squatter.listen()

        with pytest.raises(PortInUseError, match=CONTROLLER_PORT_ENV):
            LocalBroker(settings).start()


def test_stop_without_broker_is_noop(tmp_path: Path) -> None:
    broker = LocalBroker(BrokerSettings(root_dir=tmp_path))

    assert broker.stop() is False
    assert broker.kill() is False
    assert broker.is_running() is False


def test_stale_pid_file_is_ignored(tmp_path: Path) -> None:
    settings = BrokerSettings(root_dir=tmp_path)
    settings.root_dir.mkdir(parents=True, exist_ok=True)
    # pid 1 is alive but is not a kafka.Kafka process with this server.properties.
    settings.pid_path.write_text("1\n", encoding="utf-8")
    broker = LocalBroker(settings)

    assert broker.is_running() is False
    assert broker.pid is None
    assert broker.stop() is False
    assert not settings.pid_path.exists()
