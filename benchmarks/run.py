"""``make bench``: the feature job against its baselines, Kafka to Kafka, on SYNTHETIC events.

For each embedding dimension, every alternative replays the same recorded events topic into an
output topic of its own. The benchmark reads from the output topics how fast each one went and
checks every user's final vector against the float64 reference. It also records memory and CPU.
Then the job runs live at half of its measured maximum rate to measure latency and state.
Results print as ratios to the baselines of the same run and go to ``docs/benchmarks.md``.

    .venv/bin/python -m benchmarks.run --events 1000000 --dims 128,64,256
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.alternatives import BASELINE_MODULES, Topics, run_baseline, start_job
from benchmarks.latency import LiveResult, live_run
from benchmarks.machine import machine_facts
from benchmarks.measure import Agreement, compare_with_reference, read_output, sustained_rate
from benchmarks.processes import ChildRun
from benchmarks.report import write_report
from benchmarks.serving import add_arguments as add_serving_arguments
from benchmarks.serving import run_serving_benchmark, shape_of
from benchmarks.workload import (
    APPEND_TIME,
    Workload,
    WorkloadShape,
    build_workload,
    publish_embeddings,
    publish_events,
    recreate_topics,
    reference_of,
)
from dreamumm import kafka_io, steps
from dreamumm.config import REPO_ROOT, Settings, load_settings
from infra import TopicSpec

logger = logging.getLogger("benchmarks.run")

JOB_ALTERNATIVES = {"flink-p1": 1, "flink-p2": 2}
ALL_ALTERNATIVES = (*BASELINE_MODULES, *JOB_ALTERNATIVES)
EVENTS_TOPIC = "bench-events"


@dataclass
class ReplayResult:
    """One alternative replaying the recorded events topic at one dimension."""

    name: str
    dimension: int
    events: int
    sustained_rate: float
    replay_seconds: float
    output_records: int
    dead_letters: int
    agreement: Agreement
    peak_rss_bytes: int
    peak_rss_by_kind: dict[str, int]
    cpu_seconds_by_kind: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)


def _replay(name: str, settings: Settings, workload: Workload, dimension: int, reference: dict,
            work_root: Path, timeout_s: float) -> ReplayResult:
    bootstrap = settings.kafka.bootstrap_servers
    topics = Topics(EVENTS_TOPIC, f"bench-embeddings-d{dimension}", f"bench-{name}-d{dimension}-features",
                    f"bench-{name}-d{dimension}-dead-letters")
    partitions = settings.kafka.partitions
    recreate_topics(bootstrap, [TopicSpec(topics.features, partitions, config=APPEND_TIME),
                                TopicSpec(topics.dead_letters, partitions, config=APPEND_TIME)])
    work_dir = work_root / f"{name}-d{dimension}"
    shutil.rmtree(work_dir, ignore_errors=True)
    details: dict[str, Any] = {}
    run: ChildRun
    if name in JOB_ALTERNATIVES:
        run = start_job(settings, topics, JOB_ALTERNATIVES[name], dimension, work_dir, bounded=True).wait(timeout_s)
        if run.return_code != 0:
            raise RuntimeError(f"{name} failed with exit code {run.return_code}; see {work_dir / 'job.log'}")
    else:
        run, details = run_baseline(name, settings, topics, dimension, workload.shape.events, work_dir, timeout_s)
    output = read_output(bootstrap, topics.features)
    agreement = compare_with_reference(output.latest, reference)
    result = ReplayResult(
        name=name, dimension=dimension, events=workload.shape.events,
        sustained_rate=sustained_rate(output, workload.shape.events), replay_seconds=run.wall_seconds,
        output_records=output.records, dead_letters=kafka_io.count_records(bootstrap, topics.dead_letters),
        agreement=agreement, peak_rss_bytes=run.usage.peak_rss_bytes, peak_rss_by_kind=run.usage.peak_rss_by_kind,
        cpu_seconds_by_kind=run.usage.cpu_seconds_by_kind, details=details)
    logger.info("%s d=%d: %.0f events/s sustained, replay %.1f s, %s", name, dimension, result.sustained_rate,
                result.replay_seconds, agreement.describe())
    return result


def _job_config(settings: Settings) -> str:
    """Describe the job settings that shape its speed and latency, for the report."""
    job, emission = settings.job, settings.emission
    return (f"checkpoints every {job.checkpoint_interval_ms / 1000:g} s, {job.state_backend} state, at-least-once "
            f"Kafka sinks, emission policy {emission.policy} ({emission.interval_ms} ms), Python bundles of at most "
            f"{job.bundle_time_ms} ms, watermarks every {job.watermark_interval_ms} ms")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="SYNTHETIC events (default 1000000)")
    parser.add_argument("--users", type=int, default=100_000, help="distinct users (default 100000)")
    parser.add_argument("--videos", type=int, default=50_000, help="distinct videos (default 50000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data (default 0)")
    parser.add_argument("--dims", default="128,64,256", help="embedding dimensions, comma-separated")
    parser.add_argument("--alternatives", default=",".join(ALL_ALTERNATIVES),
                        help=f"comma-separated subset of {', '.join(ALL_ALTERNATIVES)}")
    parser.add_argument("--live-dims", default="128", help="dimensions of the live latency runs ('' for none)")
    parser.add_argument("--live-rate", type=float, default=None,
                        help="events/s of the live runs (default: half of each job's replay rate)")
    parser.add_argument("--warmup-seconds", type=float, default=30.0,
                        help="live run warm-up, long enough for the job to catch up after start (default 30)")
    parser.add_argument("--measure-seconds", type=float, default=30.0, help="live run measured part (default 30)")
    parser.add_argument("--timeout-seconds", type=float, default=1800.0, help="limit per replay (default 1800)")
    parser.add_argument("--report", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md",
                        help="Markdown report to write (default docs/benchmarks.md)")
    parser.add_argument("--work-dir", type=Path, default=REPO_ROOT / "var" / "bench",
                        help="folder for logs, state and results.json (default var/bench)")
    add_serving_arguments(parser)
    parser.add_argument("--no-serving", action="store_true", help="skip the serving benchmark")
    args = parser.parse_args(argv)
    args.dims = [int(value) for value in args.dims.split(",") if value]
    args.live_dims = [int(value) for value in args.live_dims.split(",") if value]
    args.alternatives = [value for value in args.alternatives.split(",") if value]
    unknown = sorted(set(args.alternatives) - set(ALL_ALTERNATIVES))
    if unknown:
        parser.error(f"unknown alternatives {unknown}; choose from {list(ALL_ALTERNATIVES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    settings = load_settings()
    runtime = steps.prepare_runtime()
    broker = steps.local_broker(settings, runtime)
    logger.info("%s the Kafka broker at %s", "started" if broker.start() else "reusing", broker.bootstrap_servers)

    shape = WorkloadShape(args.events, args.users, args.videos, args.seed)
    workload = build_workload(shape)
    logger.info("SYNTHETIC workload fitted to the KuaiRand sample: %s", json.dumps(workload.statistics))
    bootstrap, partitions = settings.kafka.bootstrap_servers, settings.kafka.partitions
    for dimension in args.dims:
        publish_embeddings(bootstrap, f"bench-embeddings-d{dimension}", workload, dimension, partitions)
    publish_events(bootstrap, EVENTS_TOPIC, workload, partitions)

    replays: list[ReplayResult] = []
    failures: list[str] = []
    lives: list[LiveResult] = []
    for dimension in args.dims:
        reference = reference_of(workload, dimension, settings.preference)
        for name in args.alternatives:
            try:
                replays.append(_replay(name, settings, workload, dimension, reference, args.work_dir,
                                       args.timeout_seconds))
            except (RuntimeError, TimeoutError, OSError) as error:
                # One broken alternative should not throw away the others' results.
                logger.error("%s at d=%d failed: %s", name, dimension, error)
                failures.append(f"{name} at d = {dimension}: {error}")
        if dimension not in args.live_dims:
            continue
        for name, parallelism in JOB_ALTERNATIVES.items():
            measured = [r.sustained_rate for r in replays if r.name == name and r.dimension == dimension]
            if args.live_rate is not None:
                rate = args.live_rate
            elif measured and math.isfinite(measured[0]):
                rate = measured[0] / 2
            else:
                continue
            try:
                lives.append(live_run(settings, workload, dimension, parallelism, rate,
                                      args.warmup_seconds, args.measure_seconds,
                                      args.work_dir / f"live-{name}-d{dimension}"))
            except (RuntimeError, TimeoutError, OSError) as error:
                logger.error("live run of %s at d=%d failed: %s", name, dimension, error)
                failures.append(f"live run of {name} at d = {dimension}: {error}")

    serving = None
    if not args.no_serving:
        try:
            serving = run_serving_benchmark(settings, shape_of(args, args.seed), args.work_dir / "serving")
        except (RuntimeError, TimeoutError, OSError) as error:
            logger.error("the serving benchmark failed: %s", error)
            failures.append(f"serving benchmark: {error}")

    facts = machine_facts(replays)
    results = {"machine": facts, "workload": {**asdict(shape), "statistics": workload.statistics},
               "replays": [asdict(r) | {"agreement_ok": r.agreement.ok} for r in replays],
               "live": [asdict(r) | {"state_bytes_per_user": r.state_bytes_per_user} for r in lives],
               "serving": serving,
               "failures": failures,
               "job_config": _job_config(settings),
               "command": "make bench ARGS='" + " ".join(argv if argv is not None else sys.argv[1:]) + "'",
               "seconds": time.monotonic() - started}
    args.work_dir.mkdir(parents=True, exist_ok=True)
    (args.work_dir / "results.json").write_text(json.dumps(results, indent=2, default=str))
    summary = write_report(results, args.report)
    sys.stdout.write(summary)
    return 0 if not failures and all(r.agreement.ok for r in replays) else 1


if __name__ == "__main__":
    sys.exit(main())
