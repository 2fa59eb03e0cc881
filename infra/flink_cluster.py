"""A local standalone Flink cluster: one JobManager and any number of TaskManagers, each its
own JVM, started from the Flink distribution that the apache-flink wheel ships.

Each process runs Flink's own start script in the foreground (``jobmanager.sh`` or
``taskmanager.sh start-foreground``), which execs the JVM, so the process id that
``subprocess.Popen`` returns is the JVM's. Each process leads its own process group, so a
signal to the group also reaches the Python workers that a TaskManager started. Fault tests
use that to kill a TaskManager as a crash would.

Submit a job to the cluster by setting ``job.jobmanager_address`` to ``FlinkCluster.rest_address``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from infra.flink_cluster_config import (
    JOBMANAGER,
    TASKMANAGER_PREFIX,
    FlinkClusterSettings,
    flink_home,
    write_cluster_files,
)
from infra.ports import find_free_ports, is_port_bindable
from infra.tools import find_java

logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 30
POLL_INTERVAL_S = 0.25
REST_TIMEOUT_S = 5.0
STOP_WAIT_S = 30.0
KILL_WAIT_S = 10.0
# Variables of the caller that would point the cluster's scripts at another configuration, or
# put the caller's own paths on the Python workers' import path.
_CALLER_VARIABLES = ("FLINK_CONF_DIR", "FLINK_LOG_DIR", "FLINK_LIB_DIR", "FLINK_PID_DIR", "FLINK_PLUGINS_DIR",
                     "FLINK_IDENT_STRING", "FLINK_ENV_JAVA_OPTS", "JVM_ARGS", "PYTHONPATH",
                     "_python_worker_execution_mode")
# The JVMs run in sessions of their own, so a Python process that dies without calling stop()
# (a test run killed on timeout) would leave them running. setpriv from util-linux (part of
# every Debian and Ubuntu system) sets the JVM's parent-death signal to SIGKILL, so the kernel
# kills the JVM when the thread that started it ends; exec keeps that setting. Without
# setpriv, as on macOS, there is no such guard.
_SETPRIV = shutil.which("setpriv")
_PARENT_DEATH_GUARD = [_SETPRIV, "--pdeathsig", "KILL"] if _SETPRIV else []
# Job states after which a job does not run again (Flink's JobStatus.isGloballyTerminalState).
TERMINAL_JOB_STATES = frozenset({"FINISHED", "CANCELED", "FAILED"})


class FlinkClusterError(RuntimeError):
    """The local Flink cluster could not be started, queried or stopped."""


@dataclass
class _ClusterProcess:
    """One JVM of the cluster and where its output goes."""

    name: str
    popen: subprocess.Popen[bytes]
    log_dir: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def is_alive(self) -> bool:
        return self.popen.poll() is None


class FlinkCluster:
    """A standalone Flink cluster on loopback, in processes of this Python process.

    Used as a context manager, it starts the JobManager and the requested TaskManagers on
    entry and stops them all on exit. ``start()`` and ``stop()`` do the same by hand. On Linux
    the JVMs also die with the thread that started them, so start the cluster from a thread
    that outlives it, such as the main thread.
    """

    def __init__(self, settings: FlinkClusterSettings, taskmanagers: int = 1) -> None:
        if taskmanagers < 0:
            raise ValueError(f"taskmanagers must be 0 or more, got {taskmanagers}")
        self._settings = settings
        self._initial_taskmanagers = taskmanagers
        self._home: Path | None = None
        self._jobmanager: _ClusterProcess | None = None
        self._taskmanagers: list[_ClusterProcess] = []

    @classmethod
    def on_free_ports(cls, root_dir: Path, taskmanagers: int = 1, **settings: Any) -> FlinkCluster:
        """Return a cluster in ``root_dir`` whose RPC and REST ports are free ones on 127.0.0.1."""
        rpc_port, rest_port = find_free_ports(2)
        return cls(FlinkClusterSettings(root_dir=root_dir, jobmanager_rpc_port=rpc_port, rest_port=rest_port,
                                        **settings), taskmanagers)

    @property
    def settings(self) -> FlinkClusterSettings:
        return self._settings

    @property
    def rest_address(self) -> str:
        """``host:port`` of the REST endpoint, the value for job.jobmanager_address."""
        return self._settings.rest_address

    @property
    def rest_url(self) -> str:
        """Base URL of the REST API, such as ``http://127.0.0.1:8081``."""
        return f"http://{self._settings.rest_address}"

    @property
    def jobmanager_pid(self) -> int | None:
        """Process id of the JobManager JVM, or None if it is not running."""
        process = self._jobmanager
        return process.pid if process is not None and process.is_alive() else None

    def taskmanager_pids(self) -> dict[int, int]:
        """Return the process id of every running TaskManager, by index."""
        return {index: process.pid for index, process in enumerate(self._taskmanagers) if process.is_alive()}

    def __enter__(self) -> FlinkCluster:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def start(self, timeout_s: float = 90.0) -> None:
        """Write the configuration, start the JobManager and the TaskManagers, and wait for them.

        Returns once the REST API lists every TaskManager. Raises FlinkClusterError, with the
        log tail of the process that failed, if a port is taken, a process exits or the
        cluster is not ready within ``timeout_s``. Processes that this call started are
        stopped before it raises.
        """
        if self._jobmanager is not None:
            raise FlinkClusterError(f"the cluster in {self._settings.root_dir} is already started; call stop() first")
        settings = self._settings
        for name, port in (("jobmanager_rpc_port", settings.jobmanager_rpc_port), ("rest_port", settings.rest_port)):
            if not is_port_bindable(settings.host, port):
                raise FlinkClusterError(
                    f"port {port} on {settings.host} ({name}) is already in use; choose a free one, "
                    "for example with FlinkCluster.on_free_ports()")
        find_java()  # Flink's scripts need java too; failing here gives the install hint.
        self._home = flink_home()
        write_cluster_files(settings, self._home)

        started = time.monotonic()
        try:
            self._jobmanager = self._launch(JOBMANAGER, "jobmanager.sh", [])
            for _ in range(self._initial_taskmanagers):
                self.add_taskmanager(wait=False)
            self.wait_for_taskmanagers(self._initial_taskmanagers, timeout_s)
        except BaseException:
            self.stop()
            raise
        logger.info("Flink cluster in %s is ready at %s with %d TaskManagers after %.1f s",
                    settings.root_dir, self.rest_url, self._initial_taskmanagers, time.monotonic() - started)

    def add_taskmanager(self, wait: bool = True, timeout_s: float = 60.0) -> int:
        """Start one more TaskManager and return its index.

        With ``wait``, returns once the JobManager lists it. Its resource id is
        ``taskmanager-<index>``, which the REST API shows as the TaskManager's id.
        """
        if self._jobmanager is None:
            raise FlinkClusterError("the cluster is not started; call start() before add_taskmanager()")
        index = len(self._taskmanagers)
        name = f"{TASKMANAGER_PREFIX}{index}"
        self._taskmanagers.append(self._launch(name, "taskmanager.sh", ["-D", f"taskmanager.resource-id={name}"]))
        if wait:
            self._wait_for_registration(name, timeout_s)
        return index

    def kill_taskmanager(self, index: int, signum: signal.Signals = signal.SIGKILL) -> None:
        """Send ``signum`` to TaskManager ``index`` and its Python workers, and wait until the JVM exits.

        SIGKILL (the default) stops it as a crash would, with no chance to clean up, and the
        call also waits until the Python workers are gone.
        Raises FlinkClusterError if the index is unknown, the TaskManager is not running, or
        the JVM is alive ``KILL_WAIT_S`` seconds later.
        """
        if not 0 <= index < len(self._taskmanagers):
            raise FlinkClusterError(
                f"no TaskManager with index {index}; this cluster started indexes 0 to {len(self._taskmanagers) - 1}")
        process = self._taskmanagers[index]
        if not process.is_alive():
            raise FlinkClusterError(
                f"TaskManager {index} (pid {process.pid}) is not running; it exited with code {process.popen.returncode}")
        logger.info("Sending %s to TaskManager %s (pid %s)", signum.name, index, process.pid)
        _signal_group(process, signum)
        if not _wait_for_exit(process, KILL_WAIT_S):
            raise FlinkClusterError(
                f"TaskManager {index} (pid {process.pid}) is still running {KILL_WAIT_S:.0f} s after {signum.name}")
        if signum == signal.SIGKILL and not _wait_for_group_exit(process, KILL_WAIT_S):
            logger.warning("processes of TaskManager %s (process group %s) are still running %.0f s after SIGKILL",
                           index, process.pid, KILL_WAIT_S)

    def wait_for_taskmanagers(self, count: int, timeout_s: float = 60.0) -> None:
        """Wait until the JobManager lists exactly ``count`` TaskManagers.

        After a kill the count drops only when the JobManager notices the lost heartbeats,
        which takes about two heartbeat intervals. Raises FlinkClusterError on timeout, or
        if the JobManager exits.
        """
        deadline = time.monotonic() + timeout_s
        listed: list[str] = []
        while True:
            self._check_jobmanager_alive()
            try:
                listed = self.taskmanager_ids()
            except FlinkClusterError:
                listed = []  # The REST endpoint is not up yet.
            if len(listed) == count:
                return
            if time.monotonic() >= deadline:
                raise FlinkClusterError(
                    f"the JobManager at {self.rest_url} lists {len(listed)} TaskManagers {listed}, expected {count}, "
                    f"after {timeout_s:.0f} s.\n{self.log_tail()}")
            time.sleep(POLL_INTERVAL_S)

    def stop(self, timeout_s: float = STOP_WAIT_S) -> None:
        """Stop the TaskManagers, then the JobManager: SIGTERM, then SIGKILL after ``timeout_s``.

        Jobs that still run are not cancelled first; they stop with the cluster. Safe to call
        more than once, and on a cluster that failed to start.
        """
        processes = [*self._taskmanagers, *([self._jobmanager] if self._jobmanager else [])]
        for process in processes:
            if process.is_alive():
                logger.info("Stopping Flink %s (pid %s)", process.name, process.pid)
                _signal_group(process, signal.SIGTERM)
        for process in processes:
            if _wait_for_exit(process, timeout_s):
                # The JVM is gone; its Python workers may still be winding down.
                _signal_group(process, signal.SIGKILL)
                continue
            logger.warning("Flink %s (pid %s) is still running %.0f s after SIGTERM, sending SIGKILL",
                           process.name, process.pid, timeout_s)
            _signal_group(process, signal.SIGKILL)
            if not _wait_for_exit(process, KILL_WAIT_S):
                raise FlinkClusterError(
                    f"Flink {process.name} (pid {process.pid}) is still running {KILL_WAIT_S:.0f} s after SIGKILL; "
                    f"check it with `ps -p {process.pid}`")
        self._jobmanager = None
        self._taskmanagers = []

    # REST helpers

    def rest_get(self, path: str) -> Any:
        """Return the decoded JSON of ``GET <rest_url><path>``; raise FlinkClusterError if it fails."""
        return self._request("GET", path)

    def taskmanager_ids(self) -> list[str]:
        """Return the resource ids of the TaskManagers that the JobManager lists."""
        return sorted(str(manager["id"]) for manager in self.rest_get("/taskmanagers").get("taskmanagers", []))

    def jobs(self) -> dict[str, str]:
        """Return the state of every job that the JobManager lists, by job id."""
        return {str(job["id"]): str(job["status"]) for job in self.rest_get("/jobs").get("jobs", [])}

    def job_state(self, job_id: str) -> str:
        """Return the state of job ``job_id``, such as RUNNING, RESTARTING or FINISHED."""
        return str(self.rest_get(f"/jobs/{job_id}")["state"])

    def latest_checkpoint_id(self, job_id: str) -> int | None:
        """Return the id of the newest completed checkpoint of ``job_id``, or None if none completed.

        NOTE: the JobManager caches checkpoint statistics for rest.cache.checkpoint-statistics.timeout,
        which defaults to web.refresh-interval (3 s), so the id can trail the newest checkpoint by that long.
        """
        latest = self.rest_get(f"/jobs/{job_id}/checkpoints").get("latest") or {}
        completed = latest.get("completed")
        return int(completed["id"]) if completed else None

    def wait_for_job_state(self, job_id: str, states: set[str] | frozenset[str], timeout_s: float = 60.0) -> str:
        """Wait until job ``job_id`` is in one of ``states`` and return that state.

        Raises FlinkClusterError on timeout, naming the last state seen.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.job_state(job_id)
            if state in states:
                return state
            if time.monotonic() >= deadline:
                raise FlinkClusterError(
                    f"job {job_id} is {state} after {timeout_s:.0f} s, expected one of {sorted(states)}.\n"
                    f"{self.log_tail()}")
            time.sleep(POLL_INTERVAL_S)

    def wait_for_checkpoint(self, job_id: str, after_id: int = 0, timeout_s: float = 60.0) -> int:
        """Wait for a completed checkpoint of ``job_id`` with an id above ``after_id`` and return its id."""
        deadline = time.monotonic() + timeout_s
        while True:
            checkpoint_id = self.latest_checkpoint_id(job_id)
            if checkpoint_id is not None and checkpoint_id > after_id:
                return checkpoint_id
            if time.monotonic() >= deadline:
                raise FlinkClusterError(
                    f"job {job_id} completed no checkpoint after {after_id} within {timeout_s:.0f} s "
                    f"(newest: {checkpoint_id}, job state {self.job_state(job_id)}).\n{self.log_tail()}")
            time.sleep(POLL_INTERVAL_S)

    def cancel_job(self, job_id: str) -> None:
        """Ask the JobManager to cancel job ``job_id``; returns without waiting for it to stop."""
        self._request("PATCH", f"/jobs/{job_id}?mode=cancel")

    # Logs

    def log_paths(self, process_name: str) -> list[Path]:
        """Return the .log, .out and .err files of one process, such as ``jobmanager`` or ``taskmanager-0``."""
        log_dir = self._settings.log_dir(process_name)
        return sorted(path for pattern in ("*.log", "*.out", "*.err", "startup.txt") for path in log_dir.glob(pattern))

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """Return the last ``lines`` lines of each log file of the JobManager and the TaskManagers."""
        names = [JOBMANAGER, *(f"{TASKMANAGER_PREFIX}{index}" for index in range(len(self._taskmanagers)))]
        parts = []
        for name in names:
            for path in self.log_paths(name):
                tail = _read_tail(path, lines)
                if tail:
                    parts.append(f"--- last lines of {path} ---\n{tail}")
        return "\n".join(parts) if parts else f"(no log output yet in {self._settings.log_root})"

    # Internals

    def _launch(self, name: str, script: str, arguments: list[str]) -> _ClusterProcess:
        assert self._home is not None
        settings = self._settings
        log_dir = settings.log_dir(name)
        log_dir.mkdir(parents=True, exist_ok=True)
        environment = {key: value for key, value in os.environ.items() if key not in _CALLER_VARIABLES}
        environment.update({
            "FLINK_CONF_DIR": str(settings.conf_dir),
            "FLINK_LIB_DIR": str(settings.lib_dir),
            "FLINK_LOG_DIR": str(log_dir),
            "FLINK_PID_DIR": str(settings.pid_dir(name)),
            "FLINK_IDENT_STRING": name,
            "FLINK_PLUGINS_DIR": str(settings.plugins_dir or self._home / "plugins"),
        })
        command = [*_PARENT_DEATH_GUARD, "bash", str(self._home / "bin" / script), "start-foreground", *arguments]
        # The script's own output (before the JVM redirects to its .out and .err files) goes
        # here: errors of the configuration parser and of the memory calculation.
        with (log_dir / "startup.txt").open("ab") as startup_output:
            popen = subprocess.Popen(command, cwd=settings.root_dir, env=environment, stdin=subprocess.DEVNULL,
                                     stdout=startup_output, stderr=subprocess.STDOUT, start_new_session=True)
        logger.info("Started Flink %s (pid %s), logs in %s", name, popen.pid, log_dir)
        return _ClusterProcess(name, popen, log_dir)

    def _wait_for_registration(self, name: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        process = self._taskmanagers[-1]
        while name not in self.taskmanager_ids():
            self._check_jobmanager_alive()
            if not process.is_alive():
                raise FlinkClusterError(
                    f"Flink {name} (pid {process.pid}) exited with code {process.popen.returncode} while "
                    f"starting; logs are in {process.log_dir}.\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                raise FlinkClusterError(
                    f"Flink {name} did not register with the JobManager at {self.rest_url} within "
                    f"{timeout_s:.0f} s; logs are in {process.log_dir}.\n{self.log_tail()}")
            time.sleep(POLL_INTERVAL_S)

    def _check_jobmanager_alive(self) -> None:
        process = self._jobmanager
        if process is None:
            raise FlinkClusterError("the cluster is not started; call start() first")
        if not process.is_alive():
            raise FlinkClusterError(
                f"the Flink JobManager (pid {process.pid}) exited with code {process.popen.returncode}; "
                f"logs are in {process.log_dir}.\n{self.log_tail()}")

    def _request(self, method: str, path: str) -> Any:
        url = self.rest_url + path
        request = urllib.request.Request(url, method=method)
        try:
            with urllib.request.urlopen(request, timeout=REST_TIMEOUT_S) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace").strip()
            raise FlinkClusterError(f"{method} {url} failed with HTTP {error.code}: {detail}") from error
        except (urllib.error.URLError, OSError) as error:
            raise FlinkClusterError(
                f"{method} {url} failed: {error}. Is the cluster running? Logs are in "
                f"{self._settings.log_dir(JOBMANAGER)}") from error
        if not body:
            return None
        try:
            return json.loads(body)
        except json.JSONDecodeError as error:
            raise FlinkClusterError(f"{method} {url} returned invalid JSON: {body[:200]!r}") from error


def _signal_group(process: _ClusterProcess, signum: signal.Signals) -> None:
    # The group id is the JVM's pid (start_new_session), and stays valid while any member lives.
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        logger.debug("process group %s of Flink %s is gone before %s", process.pid, process.name, signum.name)


def _wait_for_exit(process: _ClusterProcess, timeout_s: float) -> bool:
    try:
        process.popen.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return False
    return True


def _wait_for_group_exit(process: _ClusterProcess, timeout_s: float) -> bool:
    # Signal 0 only checks whether any process of the group still exists.
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL_S / 5)


def _read_tail(path: Path, lines: int) -> str:
    try:
        with path.open("rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - 64 * 1024))
            text = file.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
