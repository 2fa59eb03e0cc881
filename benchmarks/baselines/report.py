"""The result line a baseline writes as the last line of its stdout, and the command line they share."""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable

from benchmarks.baselines.spec import BaselineSpec, SpecError, load_spec

logger = logging.getLogger(__name__)

REPORTED_PACKAGES = ("kafka-python", "quixstreams", "rocksdict", "fastavro", "numpy", "confluent-kafka")
"""Distributions whose installed versions every result line lists."""


@dataclass(frozen=True)
class RunReport:
    """Counts and costs of one baseline run, written as one JSON line.

    ``events_read`` = ``contributed`` + ``dead_lettered``: dead-lettered embeddings are not
    counted here, only logged. ``records_written`` counts the records written to the features
    topic, tombstones included, and ``users`` the distinct users that contributed an event.
    ``seconds`` runs from the first poll, which reads the embeddings topic, until the producer
    has flushed, so it includes loading the embeddings (logged apart). ``peak_rss_bytes`` is
    the peak resident set size of the process, and ``state_dir_bytes`` the bytes on disk under
    ``state_dir`` after the state store is closed.
    """

    name: str
    events_read: int
    contributed: int
    dead_lettered: int
    records_written: int
    users: int
    seconds: float
    peak_rss_bytes: int
    state_dir_bytes: int
    versions: dict[str, str] = field(default_factory=dict)


@dataclass
class RunCounters:
    """Counts that a baseline keeps while it runs, with the meanings of ``RunReport``'s fields."""

    events_read: int = 0
    contributed: int = 0
    dead_lettered: int = 0
    records_written: int = 0
    users: int = 0


def idle_timeout_error(spec: BaselineSpec, events_read: int) -> TimeoutError:
    """Return the error of a run that stopped receiving events before ``spec.expected_events``."""
    return TimeoutError(
        f"no event arrived for {spec.idle_timeout_s} s after {events_read} of {spec.expected_events} events; "
        f"check that {spec.events_topic} contains expected_events records")


def finish_report(name: str, counters: RunCounters, seconds: float, spec: BaselineSpec) -> RunReport:
    """Log the run's rate and build its report, measuring memory and the closed state's size now."""
    logger.info("%s read %d events in %.2f s (%.0f events/s): %d contributed, %d dead-lettered, "
                "%d records written", name, counters.events_read, seconds, counters.events_read / seconds,
                counters.contributed, counters.dead_lettered, counters.records_written)
    return RunReport(name, counters.events_read, counters.contributed, counters.dead_lettered,
                     counters.records_written, counters.users, round(seconds, 3), peak_rss_bytes(),
                     directory_bytes(spec.state_dir), package_versions())


def peak_rss_bytes() -> int:
    """Return the peak resident set size of this process in bytes (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def directory_bytes(path: Path) -> int:
    """Return the total size in bytes of the regular files under ``path``, 0 when it is absent."""
    total = 0
    for root, _folders, files in os.walk(path):
        for name in files:
            file_path = Path(root) / name
            if file_path.is_file() and not file_path.is_symlink():
                total += file_path.stat().st_size
    return total


def package_versions() -> dict[str, str]:
    """Return the installed version of each of ``REPORTED_PACKAGES``, or "not installed"."""
    versions = {}
    for package in REPORTED_PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def run_baseline(name: str, run: Callable[[BaselineSpec], RunReport], argv: list[str] | None = None) -> int:
    """Parse ``--spec``, run the baseline, write its result line to stdout and return the exit code.

    Logs go to stderr. A failed run logs the error, writes no result line and returns 1.
    """
    parser = argparse.ArgumentParser(
        description=f"Run the {name} baseline of the DreamUMM feature job on the topics of a spec file.")
    parser.add_argument("--spec", required=True, type=Path, help="path of the JSON run specification")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        spec = load_spec(args.spec)
    except SpecError as error:
        logger.error("%s", error)
        return 2
    try:
        report = run(spec)
    except Exception:
        logger.exception("the %s baseline failed", name)
        return 1
    sys.stdout.write(json.dumps(asdict(report)) + "\n")
    sys.stdout.flush()
    return 0
