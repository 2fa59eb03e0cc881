"""Steady-state throughput of the feature job, Kafka to Kafka, on SYNTHETIC events.

The events are synthetic and not yet calibrated to the KuaiRand sample: users uniform,
videos from a Zipf(1.3) law, log-normal watch times, uniform durations. The job runs bounded
twice, on N and on 4N events, and the steady rate is 3N divided by the difference of the two
wall times, which removes the job's start-up. It needs a running broker
(`dreamumm broker start`) and recreates the configured topics, deleting their records.

    .venv/bin/python -m benchmarks.job_throughput --events 200000 --parallelism 1
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys

import numpy as np
import pandas as pd

from dreamumm import kafka_io, steps
from dreamumm.config import Settings, load_settings
from dreamumm.records import video_embedding_records, watch_event_records
from jobs.feature_job import run_feature_job

logger = logging.getLogger("benchmarks.job_throughput")


def synthetic_events(count: int, users: int, videos: int, seed: int) -> pd.DataFrame:
    """Return ``count`` synthetic events in the KuaiRand column layout."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "user_id": rng.integers(0, users, count),
        "video_id": rng.zipf(1.3, count) % videos,
        "play_time_ms": rng.lognormal(8.0, 1.2, count).astype(np.int64),
        "duration_ms": rng.integers(0, 200_000, count),
        "time_ms": 1_651_000_000_000 + np.arange(count) * 10,
    })


def publish(settings: Settings, events: int, videos: int, users: int, seed: int) -> None:
    """Recreate the topics and publish random unit embeddings and ``events`` synthetic events."""
    steps.create_topics(settings, recreate=True)
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(videos, settings.embedding.dimension))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    embeddings = {video: vectors[video].astype(np.float32) for video in range(videos)}
    bootstrap = settings.kafka.bootstrap_servers
    kafka_io.produce(bootstrap, settings.kafka.embeddings_topic, video_embedding_records(embeddings, "synthetic"))
    kafka_io.produce(bootstrap, settings.kafka.events_topic,
                     watch_event_records(synthetic_events(events, users, videos, seed)))


def timed_run(settings: Settings, events: int, videos: int, users: int, seed: int) -> float:
    publish(settings, events, videos, users, seed)
    run = run_feature_job(settings, steps.prepare_runtime().jars)
    return run.seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000, help="N, events of the short run (default 200000)")
    parser.add_argument("--users", type=int, default=10_000, help="distinct users (default 10000)")
    parser.add_argument("--videos", type=int, default=5_000, help="distinct videos (default 5000)")
    parser.add_argument("--parallelism", type=int, default=1, help="job parallelism (default 1)")
    parser.add_argument("--mode", choices=["process", "thread"], default="thread",
                        help="PyFlink Python execution mode (default thread)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the synthetic data")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    base = load_settings()
    settings = base.model_copy(update={"job": base.job.model_copy(update={
        "bounded": True, "parallelism": args.parallelism, "execution_mode": args.mode})})
    short = timed_run(settings, args.events, args.videos, args.users, args.seed)
    long = timed_run(settings, 4 * args.events, args.videos, args.users, args.seed)
    steady = 3 * args.events / (long - short)
    sys.stdout.write(
        f"SYNTHETIC events (not calibrated to KuaiRand), d={settings.embedding.dimension}, "
        f"parallelism {args.parallelism}, {args.mode} mode, {os.cpu_count()} cores, {platform.python_version()}\n"
        f"  {args.events} events: {short:.1f} s; {4 * args.events} events: {long:.1f} s (start-up included)\n"
        f"  steady state: {steady:,.0f} events/s\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
