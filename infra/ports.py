"""TCP port checks on loopback addresses, and free-port lookup for tests."""

from __future__ import annotations

import socket
from contextlib import ExitStack

LOOPBACK_HOST = "127.0.0.1"


def find_free_ports(count: int = 1, host: str = LOOPBACK_HOST) -> list[int]:
    """Return ``count`` distinct ports on ``host`` that were free a moment ago.

    All sockets stay bound until every port is picked, so the ports differ. Another
    process can still take a port before the caller binds it, so tests that start
    servers on these ports may fail rarely for that reason.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")

    with ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(sock.getsockname()[1])
        return ports


def is_port_bindable(host: str, port: int) -> bool:
    """Return True if a TCP server could listen on ``host:port`` now.

    SO_REUSEADDR is set, as the JVM sets it for server sockets, so a port whose
    old connections sit in TIME_WAIT still counts as bindable.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def is_port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """Return True if something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False
