"""The job's counters, as the counter file reporter (``jvm/.../CounterFileReporter``) writes them.

Each Flink process writes ``counters-<pid>.json`` with the totals of the job's counters by
name; the totals of a run are the sums over those files. The accounting identity of a run
without failover is ``events_read = events_contributed + events_dead_lettered +
events_deduplicated``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

logger = logging.getLogger(__name__)

ACCOUNTING_TERMS = ("events_contributed", "events_dead_lettered", "events_deduplicated")


@dataclass(frozen=True)
class JobCounters:
    """Counter totals of one job run, summed over processes and subtasks."""

    totals: Mapping[str, int]

    def get(self, name: str) -> int:
        """Return the total of counter ``name``, 0 if no task registered it."""
        return int(self.totals.get(name, 0))

    @property
    def balanced(self) -> bool:
        """True when every event read contributed, was dead-lettered or was dropped as a duplicate."""
        return self.get("events_read") == sum(self.get(term) for term in ACCOUNTING_TERMS)

    def describe(self) -> str:
        """Return the accounting identity with its numbers, for logs and assertion messages."""
        terms = " + ".join(f"{term} {self.get(term)}" for term in ACCOUNTING_TERMS)
        return f"events_read {self.get('events_read')} vs {terms}"


def read_counters(directory: Path) -> JobCounters:
    """Sum the counter files in ``directory``; an absent folder gives empty totals."""
    totals: dict[str, int] = {}
    for path in sorted(directory.glob("counters-*.json")):
        try:
            counters = json.loads(path.read_text(encoding="utf-8"))["counters"]
        except (OSError, ValueError, KeyError) as error:
            raise ValueError(f"counter file {path} is unreadable or not a counter report: {error}") from error
        for name, value in counters.items():
            totals[name] = totals.get(name, 0) + int(value)
    return JobCounters(totals)


def wait_for_final_counters(directory: Path, timeout_s: float = 10.0, quiet_s: float = 1.5) -> JobCounters:
    """Return the counters once the files have stopped changing for ``quiet_s`` seconds.

    The reporter writes a counter's final value when its task ends, and the local cluster shuts
    down just after the job result is returned, so the files settle within a second or two.
    """
    deadline = time.monotonic() + timeout_s
    last = read_counters(directory)
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        current = read_counters(directory)
        if current != last:
            last, stable_since = current, time.monotonic()
        elif time.monotonic() - stable_since >= quiet_s:
            return current
    logger.warning("the counter files in %s still changed after %.0f s; returning the newest totals",
                   directory, timeout_s)
    return last
