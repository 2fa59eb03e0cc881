"""Settings of the local single-node KRaft broker and the server.properties built from them."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.jars import REPO_ROOT

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 19092
DEFAULT_CONTROLLER_PORT = 19093
DEFAULT_HEAP = "512m"
# Kafka's own default for transaction.max.timeout.ms (15 minutes). The Flink Kafka connector
# docs state that its exactly-once producer requests a 1 hour transaction timeout unless the
# job sets transaction.timeout.ms, and the broker rejects a timeout above this maximum. Jobs
# must therefore set transaction.timeout.ms at or below this value.
DEFAULT_TRANSACTION_MAX_TIMEOUT_MS = 900_000

PORT_ENV = "DREAMUMM_KAFKA_PORT"
CONTROLLER_PORT_ENV = "DREAMUMM_KAFKA_CONTROLLER_PORT"
ROOT_DIR_ENV = "DREAMUMM_KAFKA_DIR"

# The one node is both broker and controller, so it is always node 1.
NODE_ID = 1

_HEAP_PATTERN = re.compile(r"[1-9][0-9]*[kKmMgG]?")
_PROPERTY_KEY_PATTERN = re.compile(r"[A-Za-z0-9._-]+")


def default_root_dir() -> Path:
    """Return $DREAMUMM_KAFKA_DIR if set, else ``<repo root>/var/kafka/local``."""
    override = os.environ.get(ROOT_DIR_ENV)
    if override:
        return Path(override).expanduser()
    return REPO_ROOT / "var" / "kafka" / "local"


@dataclass(frozen=True)
class BrokerSettings:
    """Listen addresses, directories and JVM heap of the local broker.

    ``root_dir`` contains server.properties, data/, logs/ and broker.pid.
    ``extra_properties`` are written last into server.properties, so they override
    the generated entries.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    controller_port: int = DEFAULT_CONTROLLER_PORT
    root_dir: Path = field(default_factory=default_root_dir)
    heap: str = DEFAULT_HEAP
    transaction_max_timeout_ms: int = DEFAULT_TRANSACTION_MAX_TIMEOUT_MS
    extra_properties: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root_dir", Path(self.root_dir).expanduser().resolve())
        _validate_host(self.host)
        for name, port in (("port", self.port), ("controller_port", self.controller_port)):
            if not 1 <= port <= 65535:
                raise ValueError(f"{name} must be between 1 and 65535, got {port}")
        if self.port == self.controller_port:
            raise ValueError(
                f"port and controller_port must differ, both are {self.port}. "
                f"Set controller_port or {CONTROLLER_PORT_ENV} to another port."
            )
        if not _HEAP_PATTERN.fullmatch(self.heap):
            raise ValueError(f"heap must be a JVM memory size such as 512m or 1g, got {self.heap!r}")
        if self.transaction_max_timeout_ms < 1:
            raise ValueError(
                f"transaction_max_timeout_ms must be positive, got {self.transaction_max_timeout_ms}"
            )
        for key, value in self.extra_properties.items():
            _validate_property(key, value)

    @classmethod
    def from_env(cls, **overrides: Any) -> BrokerSettings:
        """Build settings from DREAMUMM_KAFKA_PORT, DREAMUMM_KAFKA_CONTROLLER_PORT and DREAMUMM_KAFKA_DIR.

        Keyword arguments take precedence over the environment, and unset
        variables keep the defaults.
        """
        values: dict[str, Any] = {}
        for env_name, field_name in ((PORT_ENV, "port"), (CONTROLLER_PORT_ENV, "controller_port")):
            raw = os.environ.get(env_name)
            if raw:
                try:
                    values[field_name] = int(raw)
                except ValueError as error:
                    raise ValueError(f"{env_name} must be a port number, got {raw!r}") from error
        values.update(overrides)
        return cls(**values)

    @property
    def bootstrap_servers(self) -> str:
        """Client bootstrap address, ``host:port``."""
        return f"{self.host}:{self.port}"

    @property
    def properties_path(self) -> Path:
        return self.root_dir / "server.properties"

    @property
    def data_dir(self) -> Path:
        return self.root_dir / "data"

    @property
    def logs_dir(self) -> Path:
        return self.root_dir / "logs"

    @property
    def server_log_path(self) -> Path:
        """Broker log written by log4j2 (see infra/log4j2-broker.xml)."""
        return self.logs_dir / "server.log"

    @property
    def console_log_path(self) -> Path:
        """JVM stdout and stderr: startup failures that happen before log4j2 is configured."""
        return self.logs_dir / "console.log"

    @property
    def pid_path(self) -> Path:
        return self.root_dir / "broker.pid"


def server_properties(settings: BrokerSettings) -> dict[str, str]:
    """Return the server.properties entries for a single-node KRaft broker and controller."""
    listener = f"PLAINTEXT://{settings.host}:{settings.port}"
    controller_listener = f"CONTROLLER://{settings.host}:{settings.controller_port}"
    properties = {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        "controller.quorum.voters": f"{NODE_ID}@{settings.host}:{settings.controller_port}",
        "listeners": f"{listener},{controller_listener}",
        "advertised.listeners": listener,
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(settings.data_dir),
        # Internal topics default to 3 replicas, which one node cannot host.
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # Topics come only from infra.topics.ensure_topics, so a typo in a topic name
        # fails instead of creating a topic with default settings.
        "auto.create.topics.enable": "false",
        # The first consumer group member gets its assignment at once instead of after 3 s.
        "group.initial.rebalance.delay.ms": "0",
        "transaction.max.timeout.ms": str(settings.transaction_max_timeout_ms),
        # Compacted topics and __consumer_offsets need the log cleaner. Kafka 4.1 enables it
        # by default and documents the key as deprecated, to be removed in Kafka 5.0.
        "log.cleaner.enable": "true",
    }
    properties.update(settings.extra_properties)
    return properties


def render_properties(properties: Mapping[str, str]) -> str:
    """Return ``properties`` in java.util.Properties file format, one ``key=value`` a line."""
    lines = ["# Generated by infra/broker_config.py. Edits are overwritten on the next start."]
    for key, value in properties.items():
        _validate_property(key, value)
        lines.append(f"{key}={_escape_property_value(value)}")
    return "\n".join(lines) + "\n"


def _validate_host(host: str) -> None:
    if host == "localhost":
        return
    try:
        address = ipaddress.ip_address(host)
    except ValueError as error:
        raise ValueError(
            f"host must be localhost or an IPv4 loopback address such as 127.0.0.1, got {host!r}"
        ) from error
    if address.version != 4 or not address.is_loopback:
        raise ValueError(
            f"host must be localhost or an IPv4 loopback address such as 127.0.0.1, got {host!r}. "
            "The local broker has no authentication, so it listens on loopback only."
        )


def _validate_property(key: str, value: str) -> None:
    if not _PROPERTY_KEY_PATTERN.fullmatch(key):
        raise ValueError(
            f"Invalid broker property name {key!r}: use letters, digits, '.', '_' and '-' only"
        )
    if not isinstance(value, str):
        raise ValueError(f"Broker property {key!r} must be a string, got {value!r}")
    if "\n" in value or "\r" in value:
        raise ValueError(f"Broker property {key!r} must be one line, got {value!r}")


def _escape_property_value(value: str) -> str:
    # java.util.Properties treats a backslash as an escape and drops leading blanks.
    escaped = value.replace("\\", "\\\\")
    if escaped[:1] in (" ", "\t"):
        escaped = "\\" + escaped
    return escaped
