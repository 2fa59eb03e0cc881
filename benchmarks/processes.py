"""Running an alternative as a child process while sampling the memory and CPU of its process tree.

The sampler reads ``/proc`` (Linux only): resident memory of the whole tree, the peak of that sum,
and CPU seconds per kind of process. The CPU split shows where the time goes between the Flink
JVM, the Python workers the JVM starts, the driver and the Kafka broker.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _read_stat(pid: int) -> tuple[int, int] | None:
    """Return (parent pid, CPU ticks) of ``pid``, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces, so fields follow the last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[11]) + int(fields[12])


def _resident_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def process_kind(command_line: str) -> str:
    """Classify a process of an alternative's tree by its command line."""
    if "kafka.Kafka" in command_line or "log4j2-broker" in command_line:
        return "kafka broker"
    if "java" in command_line.split(" ", 1)[0]:
        return "flink jvm"
    if "fn_execution" in command_line or "beam_boot" in command_line:
        return "python udf worker"
    return "driver"


def find_broker_pid() -> int | None:
    """Return the pid of a local Kafka broker process, if one runs."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and process_kind(_command_line(int(entry.name))) == "kafka broker":
            return int(entry.name)
    return None


@dataclass
class TreeUsage:
    """Resource use of a process tree while it ran."""

    peak_rss_bytes: int = 0
    peak_rss_by_kind: dict[str, int] = field(default_factory=dict)
    cpu_seconds_by_kind: dict[str, float] = field(default_factory=dict)


class TreeSampler(threading.Thread):
    """Samples a process tree (and the broker) every ``interval_s`` until ``stop`` is called."""

    def __init__(self, root_pid: int, interval_s: float = 0.5) -> None:
        super().__init__(name=f"sampler-{root_pid}", daemon=True)
        self._root = root_pid
        self._interval = interval_s
        self._stopped = threading.Event()
        self._broker = find_broker_pid()
        self._first_ticks: dict[int, int] = {}
        self._last_ticks: dict[int, int] = {}
        self._kinds: dict[int, str] = {}
        self.usage = TreeUsage()

    def _tree(self) -> list[int]:
        parents: dict[int, list[int]] = defaultdict(list)
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                stat = _read_stat(int(entry.name))
                if stat is not None:
                    parents[stat[0]].append(int(entry.name))
        tree, frontier = [], [self._root]
        while frontier:
            pid = frontier.pop()
            tree.append(pid)
            frontier.extend(parents.get(pid, []))
        return tree

    def _sample(self) -> None:
        rss_by_kind: dict[str, int] = defaultdict(int)
        pids = self._tree()
        for pid in pids:
            stat = _read_stat(pid)
            if stat is None:
                continue
            # Classified on every sample: a child forked from Python shows Python's command line
            # until it executes the JVM.
            self._kinds[pid] = process_kind(_command_line(pid))
            self._first_ticks.setdefault(pid, 0)
            self._last_ticks[pid] = stat[1]
            rss_by_kind[self._kinds[pid]] += _resident_bytes(pid)
        total = sum(rss_by_kind.values())
        self.usage.peak_rss_bytes = max(self.usage.peak_rss_bytes, total)
        for kind, rss in rss_by_kind.items():
            self.usage.peak_rss_by_kind[kind] = max(self.usage.peak_rss_by_kind.get(kind, 0), rss)
        if self._broker is not None:
            stat = _read_stat(self._broker)
            if stat is not None:
                self._kinds[self._broker] = "kafka broker"
                self._first_ticks.setdefault(self._broker, stat[1])
                self._last_ticks[self._broker] = stat[1]

    def run(self) -> None:
        while not self._stopped.is_set():
            self._sample()
            self._stopped.wait(self._interval)

    def stop(self) -> TreeUsage:
        """Stop sampling and return the usage. CPU of processes that ended between two samples
        is counted up to their last sample."""
        self._stopped.set()
        self.join()
        cpu: dict[str, float] = defaultdict(float)
        for pid, ticks in self._last_ticks.items():
            cpu[self._kinds[pid]] += (ticks - self._first_ticks.get(pid, 0)) / _CLOCK_TICKS
        self.usage.cpu_seconds_by_kind = dict(cpu)
        return self.usage


@dataclass(frozen=True)
class ChildRun:
    """A finished child process: its output, wall time and resource use."""

    return_code: int
    stdout: str
    wall_seconds: float
    usage: TreeUsage


class Child:
    """A child process in its own session, sampled while it runs."""

    def __init__(self, command: list[str], env: dict[str, str], log_path: Path) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("w")
        logger.info("starting %s (log: %s)", " ".join(command), log_path)
        self.started = time.monotonic()
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=self._log,
                                        text=True, start_new_session=True)
        self._sampler = TreeSampler(self.process.pid)
        self._sampler.start()

    def wait(self, timeout_s: float) -> ChildRun:
        """Wait for the child to exit; stop it and raise ``TimeoutError`` after ``timeout_s``."""
        try:
            stdout, _ = self.process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired as error:
            self.stop()
            raise TimeoutError(f"{self.process.args[0]} did not finish within {timeout_s} s") from error
        return self._finished(stdout)

    def stop(self) -> ChildRun:
        """Stop the child's whole process group (SIGTERM, then SIGKILL after 15 s)."""
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            stdout, _ = self.process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            stdout, _ = self.process.communicate()
        except ProcessLookupError:
            stdout = ""
        return self._finished(stdout or "")

    def usage_so_far(self) -> TreeUsage:
        return self._sampler.usage

    def _finished(self, stdout: str) -> ChildRun:
        wall = time.monotonic() - self.started
        usage = self._sampler.stop()
        self._log.close()
        return ChildRun(self.process.returncode, stdout, wall, usage)
