"""The alternatives the benchmark compares, each run as a child process on the same topics.

- ``plain-python`` and ``quix-streams``: the baselines in ``benchmarks.baselines``, run with
  the separate virtualenv ``.venv-baselines`` (Quix Streams pins older confluent-kafka and
  pydantic than the project).
- ``flink-p1``, ``flink-p2``: the feature job itself (``dreamumm run-job``) with the shipped
  configuration, at parallelism 1 and 2, bounded for replays and unbounded for latency.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.processes import Child, ChildRun
from dreamumm.config import REPO_ROOT, Settings
from infra import TopicSpec, ensure_topics

DELETIONS_TOPIC = "bench-deletions"
"""Deletions topic of every benchmark run of the job; it stays empty."""

logger = logging.getLogger(__name__)

BASELINES_PYTHON = REPO_ROOT / ".venv-baselines" / "bin" / "python"
"""Interpreter of the baselines' virtualenv (``make bench`` creates it)."""

BASELINE_MODULES = {
    "plain-python": "benchmarks.baselines.plain_python",
    "quix-streams": "benchmarks.baselines.quix_streams_job",
}


@dataclass(frozen=True)
class Topics:
    """The topics one alternative reads and writes."""

    events: str
    embeddings: str
    features: str
    dead_letters: str


def job_environment(settings: Settings, topics: Topics, parallelism: int, dimension: int,
                    work_dir: Path, rest_port: int | None) -> dict[str, str]:
    """Return the environment that points ``dreamumm run-job`` at the benchmark's topics.

    Everything not set here comes from the shipped configuration, so the job runs with its
    production settings (checkpoint interval, emission interval, state backend), with three
    exceptions. The SYNTHETIC events happened in 2022 but reach Kafka now, so the lateness limit
    is ten years. Deduplication is off, because the synthetic stream has no duplicates and the
    baselines do not deduplicate. The sinks deliver at least once, so a record is visible when it
    is written, as in the baselines; with exactly-once, read_committed consumers would see it
    only at the next checkpoint.
    """
    env = dict(os.environ)
    overrides: dict[str, Any] = {
        "KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "KAFKA__EVENTS_TOPIC": topics.events,
        "KAFKA__EMBEDDINGS_TOPIC": topics.embeddings,
        "KAFKA__FEATURES_TOPIC": topics.features,
        "KAFKA__DEAD_LETTER_TOPIC": topics.dead_letters,
        "KAFKA__DELETIONS_TOPIC": DELETIONS_TOPIC,
        "JOB__ALLOWED_LATENESS_MS": 10 * 365 * 86_400_000,
        "JOB__DEDUP_WINDOW_MS": 0,
        "JOB__DELIVERY_GUARANTEE": "at-least-once",
        "EMBEDDING__DIMENSION": dimension,
        "JOB__PARALLELISM": parallelism,
        "JOB__WORK_DIR": work_dir,
    }
    if rest_port is not None:
        overrides["JOB__REST_PORT"] = rest_port
    env.update({f"DREAMUMM__{name}": str(value) for name, value in overrides.items()})
    return env


def start_job(settings: Settings, topics: Topics, parallelism: int, dimension: int, work_dir: Path,
              bounded: bool, rest_port: int | None = None) -> Child:
    """Start the feature job as a child process."""
    ensure_topics(settings.kafka.bootstrap_servers, [TopicSpec(DELETIONS_TOPIC, settings.kafka.partitions,
                                                               compacted=True)])
    command = [str(Path(sys.executable).parent / "dreamumm"), "run-job"]
    if bounded:
        command.append("--bounded")
    env = job_environment(settings, topics, parallelism, dimension, work_dir, rest_port)
    return Child(command, env, work_dir / "job.log")


def write_spec(settings: Settings, topics: Topics, dimension: int, expected_events: int,
               work_dir: Path, name: str) -> Path:
    """Write the spec file a baseline reads (see ``benchmarks.baselines.spec``)."""
    spec = {
        "bootstrap_servers": settings.kafka.bootstrap_servers,
        "events_topic": topics.events,
        "embeddings_topic": topics.embeddings,
        "features_topic": topics.features,
        "dead_letter_topic": topics.dead_letters,
        "dimension": dimension,
        "preference": settings.preference.model_dump(mode="json"),
        "expected_events": expected_events,
        "state_dir": str(work_dir / "state"),
        # A fresh group per run: Quix Streams resumes after a group's committed offsets.
        "consumer_group": f"bench-{name}-d{dimension}-{uuid.uuid4().hex[:12]}",
    }
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / "spec.json"
    path.write_text(json.dumps(spec, indent=2))
    return path


def run_baseline(name: str, settings: Settings, topics: Topics, dimension: int, expected_events: int,
                 work_dir: Path, timeout_s: float) -> tuple[ChildRun, dict[str, Any]]:
    """Run one baseline to completion and return its run and its result line."""
    if not BASELINES_PYTHON.exists():
        raise FileNotFoundError(f"{BASELINES_PYTHON} is missing: run `make bench`, which creates it")
    spec = write_spec(settings, topics, dimension, expected_events, work_dir, name)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    child = Child([str(BASELINES_PYTHON), "-m", BASELINE_MODULES[name], "--spec", str(spec)], env,
                  work_dir / f"{name}.log")
    run = child.wait(timeout_s)
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    if run.return_code != 0 or not lines:
        raise RuntimeError(f"baseline {name} failed with exit code {run.return_code}; see {work_dir / f'{name}.log'}")
    return run, json.loads(lines[-1])
