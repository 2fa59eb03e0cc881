"""A local single-node KRaft Kafka broker, run as a detached JVM from the cached jars."""

from __future__ import annotations

import base64
import errno
import logging
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from types import TracebackType

from confluent_kafka import KafkaException

from infra.admin import make_admin_client
from infra.broker_config import (
    CONTROLLER_PORT_ENV,
    NODE_ID,
    PORT_ENV,
    BrokerSettings,
    render_properties,
    server_properties,
)
from infra.jars import INFRA_DIR, RuntimeJars, ensure_jars
from infra.locks import exclusive_lock
from infra.ports import is_port_bindable, is_port_open
from infra.tools import find_java

logger = logging.getLogger(__name__)

LOG4J2_CONFIG_PATH = INFRA_DIR / "log4j2-broker.xml"
LOG_TAIL_LINES = 20
KILL_WAIT_S = 10.0
POLL_INTERVAL_S = 0.25
STORAGE_FORMAT_TIMEOUT_S = 120.0


class BrokerError(RuntimeError):
    """The local broker could not be started, checked or stopped."""


class BrokerStartError(BrokerError):
    """The broker process exited or did not become healthy in time."""


class PortInUseError(BrokerError):
    """A port in the broker settings is taken by a process that is not this broker."""


class LocalBroker:
    """A single-node Kafka broker (KRaft, broker and controller in one JVM) on loopback.

    The JVM runs detached in its own session, so it outlives the Python process that
    started it. Any LocalBroker with the same settings finds it again through
    ``<root_dir>/broker.pid``. Used as a context manager, it starts the broker on
    entry and stops it on exit only if the entry started it.
    """

    def __init__(self, settings: BrokerSettings | None = None, jars: RuntimeJars | None = None) -> None:
        self._settings = settings or BrokerSettings.from_env()
        self._jars = jars
        self._process: subprocess.Popen[bytes] | None = None
        self._started_by_context = False

    @property
    def settings(self) -> BrokerSettings:
        return self._settings

    @property
    def bootstrap_servers(self) -> str:
        """Client bootstrap address, ``host:port``."""
        return self._settings.bootstrap_servers

    @property
    def pid(self) -> int | None:
        """Process id of the running broker JVM, or None if it is not running."""
        return self._running_pid()

    def __enter__(self) -> LocalBroker:
        self._started_by_context = self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._started_by_context:
            self._started_by_context = False
            self.stop()

    def start(self, timeout_s: float = 60.0) -> bool:
        """Start the broker and wait until it serves metadata requests.

        Returns True if this call started the JVM, and False if a healthy broker
        from the same root_dir was already running and is reused. The storage is
        formatted only on the first start in a root_dir.

        Raises PortInUseError if another process uses a configured port.
        Raises BrokerStartError if the broker running from this root_dir has other
        settings, or, with the log tail, if the JVM exits or is not healthy within
        ``timeout_s``. A JVM that this call started is stopped before
        BrokerStartError is raised.
        """
        settings = self._settings
        settings.root_dir.mkdir(parents=True, exist_ok=True)
        settings.logs_dir.mkdir(parents=True, exist_ok=True)

        with exclusive_lock(settings.root_dir / "broker.lock"):
            running_pid = self._running_pid()
            if running_pid is not None:
                self._check_running_properties(running_pid)
                self._wait_for_running_broker(running_pid, timeout_s)
                logger.info(
                    "Reusing the running broker (pid %s) at %s from %s",
                    running_pid,
                    self.bootstrap_servers,
                    settings.root_dir,
                )
                return False

            settings.pid_path.unlink(missing_ok=True)
            self._check_ports_free()

            java = find_java()
            jars = self._jars or ensure_jars()[0]
            classpath = jars.kafka_classpath_arg()
            settings.properties_path.write_text(render_properties(server_properties(settings)), encoding="utf-8")
            self._format_storage_if_needed(java, classpath)

            self._launch(java, classpath)
            try:
                self._wait_until_healthy(timeout_s)
            except BrokerStartError:
                self._terminate(timeout_s=KILL_WAIT_S)
                raise
        return True

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop the broker with SIGTERM, then SIGKILL after ``timeout_s`` seconds.

        Returns False if no broker was running. Raises BrokerError if the JVM is
        still alive after SIGKILL.
        """
        return self._terminate(timeout_s)

    def kill(self) -> bool:
        """Kill the broker JVM with SIGKILL, as a crash would. Returns False if none was running.

        The next start() takes about 9 s longer than usual. Kafka 4.1.1 rejects the new
        registration as a duplicate of the killed one until that broker session expires
        (broker.session.timeout.ms, 9000 ms by default).
        """
        pid = self._running_pid()
        if pid is None:
            self._settings.pid_path.unlink(missing_ok=True)
            return False

        logger.info("Killing broker pid %s with SIGKILL", pid)
        self._signal(pid, signal.SIGKILL)
        if not self._wait_for_exit(pid, KILL_WAIT_S):
            raise BrokerError(f"Broker pid {pid} is still running {KILL_WAIT_S:.0f} s after SIGKILL")
        self._forget(pid)
        return True

    def is_running(self) -> bool:
        """Return True if the broker JVM of this root_dir is alive, healthy or not."""
        return self._running_pid() is not None

    def is_healthy(self, timeout_s: float = 5.0) -> bool:
        """Return True if this broker responds to a metadata request within ``timeout_s``.

        The response must come from node 1 with the cluster id stored in this
        root_dir's data/meta.properties, so another broker on the port does not count.
        """
        expected_cluster_id = self._stored_cluster_id()
        if expected_cluster_id is None:
            return False
        return self._probe_cluster_id(timeout_s) == expected_cluster_id

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """Return the last ``lines`` lines of the broker log and of the JVM console output."""
        parts = []
        for path in (self._settings.server_log_path, self._settings.console_log_path):
            tail = _read_tail(path, lines)
            if tail:
                parts.append(f"--- last lines of {path} ---\n{tail}")
        return "\n".join(parts) if parts else f"(no log output yet in {self._settings.logs_dir})"

    def _check_running_properties(self, pid: int) -> None:
        # The running JVM read server.properties when it started, so a different file
        # content now means it listens on other ports or uses other settings.
        settings = self._settings
        expected = render_properties(server_properties(settings))
        try:
            actual = settings.properties_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            actual = ""
        if actual != expected:
            raise BrokerStartError(
                f"Broker pid {pid} from {settings.root_dir} is running with settings that differ from the "
                f"requested ones (see {settings.properties_path}). Stop it with LocalBroker.stop() first, "
                "or use another root_dir."
            )

    def _wait_for_running_broker(self, pid: int, timeout_s: float) -> None:
        # A broker that another caller just started may still be on its way up.
        deadline = time.monotonic() + timeout_s
        while not self.is_healthy(timeout_s=min(2.0, max(0.1, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                raise BrokerStartError(
                    f"Broker pid {pid} from {self._settings.root_dir} is running but did not become "
                    f"healthy within {timeout_s:.0f} s. Stop it with LocalBroker.stop() and start again.\n"
                    f"{self.log_tail()}"
                )
            if self._running_pid() is None:
                raise BrokerStartError(
                    f"Broker pid {pid} from {self._settings.root_dir} exited while starting.\n{self.log_tail()}"
                )
            time.sleep(POLL_INTERVAL_S)

    def _check_ports_free(self) -> None:
        settings = self._settings
        for name, env_name, port in (
            ("port", PORT_ENV, settings.port),
            ("controller_port", CONTROLLER_PORT_ENV, settings.controller_port),
        ):
            if is_port_bindable(settings.host, port):
                continue

            occupant = ""
            if port == settings.port:
                cluster_id = self._probe_cluster_id(timeout_s=2.0)
                if cluster_id is not None:
                    occupant = f" A Kafka broker with cluster id {cluster_id} runs there, started from another directory."
            raise PortInUseError(
                f"Port {port} on {settings.host} is already in use by a process that is not the broker "
                f"of {settings.root_dir}.{occupant} Stop that process, or choose a free port: "
                f"broker.{name} in config/dreamumm.yaml or DREAMUMM__BROKER__{name.upper()} for the "
                f"dreamumm command, BrokerSettings({name}=...) or {env_name} when using infra directly."
            )

    def _format_storage_if_needed(self, java: Path, classpath: str) -> None:
        settings = self._settings
        if (settings.data_dir / "meta.properties").exists():
            logger.debug("Storage in %s is already formatted", settings.data_dir)
            return

        cluster_id = _new_cluster_id()
        command = [
            str(java),
            *self._jvm_options(),
            "-cp",
            classpath,
            "kafka.tools.StorageTool",
            "format",
            # One argument each: a cluster id may start with "-", which a separate value would
            # turn into an unknown option (seen in about 1 in 64 formats).
            f"--cluster-id={cluster_id}",
            f"--config={settings.properties_path}",
        ]
        logger.info("Formatting broker storage in %s with cluster id %s", settings.data_dir, cluster_id)
        try:
            result = subprocess.run(
                command,
                cwd=settings.root_dir,
                capture_output=True,
                text=True,
                timeout=STORAGE_FORMAT_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise BrokerStartError(
                f"Formatting broker storage in {settings.data_dir} did not finish within "
                f"{STORAGE_FORMAT_TIMEOUT_S:.0f} s.\n{self.log_tail()}"
            ) from error

        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise BrokerStartError(
                f"Formatting broker storage in {settings.data_dir} failed with exit code {result.returncode}. "
                f"If the directory holds data from another cluster, delete {settings.root_dir} or choose "
                f"another root_dir.\n{output}\n{self.log_tail()}"
            )

    def _launch(self, java: Path, classpath: str) -> None:
        settings = self._settings
        command = [
            str(java),
            f"-Xms{settings.heap}",
            f"-Xmx{settings.heap}",
            "-XX:+ExitOnOutOfMemoryError",
            *self._jvm_options(),
            "-cp",
            classpath,
            "kafka.Kafka",
            str(settings.properties_path),
        ]
        with settings.console_log_path.open("ab") as console:
            console.write(f"--- starting broker at {time.strftime('%Y-%m-%dT%H:%M:%S%z')} ---\n".encode())
            console.flush()
            self._process = subprocess.Popen(
                command,
                cwd=settings.root_dir,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        pid = self._process.pid
        _write_atomically(settings.pid_path, f"{pid}\n")
        logger.info(
            "Started broker pid %s on %s (controller port %s), logs in %s",
            pid,
            self.bootstrap_servers,
            settings.controller_port,
            settings.logs_dir,
        )

    def _jvm_options(self) -> list[str]:
        return [
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J2_CONFIG_PATH}",
            f"-Dkafka.logs.dir={self._settings.logs_dir}",
        ]

    def _wait_until_healthy(self, timeout_s: float) -> None:
        assert self._process is not None
        started = time.monotonic()
        deadline = started + timeout_s
        while True:
            exit_code = self._process.poll()
            if exit_code is not None:
                self._forget(self._process.pid)
                raise BrokerStartError(
                    f"Broker exited with code {exit_code} while starting. "
                    f"Logs are in {self._settings.logs_dir}.\n{self.log_tail()}"
                )

            remaining = deadline - time.monotonic()
            if self.is_healthy(timeout_s=min(2.0, max(0.1, remaining))):
                logger.info("Broker at %s is healthy after %.1f s", self.bootstrap_servers, time.monotonic() - started)
                return
            if time.monotonic() >= deadline:
                raise BrokerStartError(
                    f"Broker pid {self._process.pid} was not healthy within {timeout_s:.0f} s and is stopped. "
                    f"Logs are in {self._settings.logs_dir}.\n{self.log_tail()}"
                )
            time.sleep(POLL_INTERVAL_S)

    def _terminate(self, timeout_s: float) -> bool:
        pid = self._running_pid()
        if pid is None:
            self._settings.pid_path.unlink(missing_ok=True)
            logger.debug("No broker running from %s", self._settings.root_dir)
            return False

        logger.info("Stopping broker pid %s with SIGTERM", pid)
        self._signal(pid, signal.SIGTERM)
        if not self._wait_for_exit(pid, timeout_s):
            logger.warning("Broker pid %s still running %.0f s after SIGTERM, sending SIGKILL", pid, timeout_s)
            self._signal(pid, signal.SIGKILL)
            if not self._wait_for_exit(pid, KILL_WAIT_S):
                raise BrokerError(
                    f"Broker pid {pid} is still running {KILL_WAIT_S:.0f} s after SIGKILL. "
                    f"Check it with `ps -p {pid}`."
                )
        self._forget(pid)
        logger.info("Stopped broker pid %s", pid)
        return True

    def _signal(self, pid: int, signum: signal.Signals) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            logger.debug("Broker pid %s exited before %s", pid, signum.name)

    def _wait_for_exit(self, pid: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self._is_broker_pid(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_INTERVAL_S)
        return True

    def _forget(self, pid: int) -> None:
        if self._process is not None and self._process.pid == pid:
            self._process.poll()
            self._process = None
        self._settings.pid_path.unlink(missing_ok=True)

    def _running_pid(self) -> int | None:
        """Return the broker pid from the pid file if that process is alive and is this broker."""
        if self._process is not None and self._process.poll() is None:
            return self._process.pid

        try:
            text = self._settings.pid_path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        try:
            pid = int(text)
        except ValueError:
            logger.warning("Ignoring pid file %s with invalid content %r", self._settings.pid_path, text)
            return None
        return pid if self._is_broker_pid(pid) else None

    def _is_broker_pid(self, pid: int) -> bool:
        """Return True if ``pid`` is alive and runs kafka.Kafka with this root_dir's server.properties.

        The command-line check keeps a reused pid from being taken for the broker.
        """
        if self._process is not None and self._process.pid == pid:
            return self._process.poll() is None

        _reap_if_child(pid)
        try:
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            return False
        except OSError as error:
            if error.errno in (errno.ESRCH, errno.ENOENT):
                return False
            raise
        return b"kafka.Kafka" in arguments and os.fsencode(self._settings.properties_path) in arguments

    def _stored_cluster_id(self) -> str | None:
        meta_path = self._settings.data_dir / "meta.properties"
        try:
            lines = meta_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return None
        for line in lines:
            key, _, value = line.partition("=")
            if key.strip() == "cluster.id":
                return value.strip()
        return None

    def _probe_cluster_id(self, timeout_s: float) -> str | None:
        """Return the cluster id that node 1 at the bootstrap address reports, or None."""
        settings = self._settings
        if not is_port_open(settings.host, settings.port, timeout_s=min(timeout_s, 1.0)):
            return None

        admin = make_admin_client(settings.bootstrap_servers, quiet=True)
        try:
            metadata = admin.list_topics(timeout=timeout_s)
        except KafkaException as error:
            logger.debug("Metadata request to %s failed: %s", settings.bootstrap_servers, error)
            return None
        if NODE_ID not in metadata.brokers:
            logger.debug("Metadata from %s lists no node %s", settings.bootstrap_servers, NODE_ID)
            return None
        return metadata.cluster_id


def _new_cluster_id() -> str:
    # Kafka cluster ids are random UUIDs in URL-safe base64 without padding (22 characters),
    # the same format that `kafka-storage.sh random-uuid` prints.
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")


def _reap_if_child(pid: int) -> None:
    # A broker started by this process and never waited for stays a zombie after it
    # exits, and a zombie still has a /proc entry. waitpid reaps it if it is our child,
    # and raises ChildProcessError for any other pid.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _read_tail(path: Path, lines: int) -> str:
    try:
        with path.open("rb") as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
            file.seek(max(0, size - 64 * 1024))
            data = file.read()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode("utf-8", errors="replace").splitlines()[-lines:])


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)

