"""Local runtime for development and tests: Maven-fetched jars, a KRaft Kafka broker, topics."""

from infra.broker import BrokerError, BrokerStartError, LocalBroker, PortInUseError
from infra.broker_config import BrokerSettings, default_root_dir, server_properties
from infra.jars import JarDownloadError, RuntimeJars, default_cache_dir, ensure_jars
from infra.ports import find_free_ports, is_port_open
from infra.tools import MissingToolError, find_java, find_maven
from infra.topics import TopicError, TopicSpec, delete_topics, ensure_topics, wait_for_topics

__all__ = [
    "BrokerError",
    "BrokerSettings",
    "BrokerStartError",
    "JarDownloadError",
    "LocalBroker",
    "MissingToolError",
    "PortInUseError",
    "RuntimeJars",
    "TopicError",
    "TopicSpec",
    "default_cache_dir",
    "default_root_dir",
    "delete_topics",
    "ensure_jars",
    "ensure_topics",
    "find_free_ports",
    "find_java",
    "find_maven",
    "is_port_open",
    "server_properties",
    "wait_for_topics",
]
