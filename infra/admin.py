"""Construction of confluent_kafka AdminClients for infra."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from confluent_kafka.admin import AdminClient

# librdkafka log levels follow syslog: 3 is error, 6 (its default) is info.
QUIET_LOG_LEVEL = 2


def make_admin_client(
    bootstrap_servers: str,
    *,
    quiet: bool = False,
    config: Mapping[str, Any] | None = None,
) -> AdminClient:
    """Return an AdminClient for ``bootstrap_servers``.

    With ``quiet``, librdkafka does not print connection errors to stderr. Health
    probes use it because a refused connection is an expected result there.
    ``config`` contains extra librdkafka settings, which override the ones set here.
    """
    client_config: dict[str, Any] = {"bootstrap.servers": bootstrap_servers}
    if quiet:
        client_config["log_level"] = QUIET_LOG_LEVEL
    client_config.update(config or {})
    return AdminClient(client_config)
