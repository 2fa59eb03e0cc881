"""Serving benchmark: the materialiser, store look-ups and ranking, in process and over HTTP.

SYNTHETIC users are written to a features topic. Each user's vector is a normalised random sum
of real content embeddings of the shipped KuaiRand videos. It sums as many videos as a user of
the real sample has events, drawn from the sample's events per user. The benchmark then

1. materialises the topic into a fresh store and compares the rate with a bare consumer that
   only reads the same records (the baseline);
2. times ``FeatureStoreReader.get`` and ``multi_get`` against a raw RocksDB ``get`` of the same keys;
3. times ``Ranker.rank`` on both vector paths against the bare numpy work of a request (one
   matrix product and a top-k), with real embeddings and the shipped long-view model;
4. starts ``dreamumm serve`` and measures rank and look-up latency over HTTP at fixed
   concurrencies, closed loop, from client threads on the same machine.

``python -m benchmarks.serving`` runs it alone and replaces the serving section of
``docs/benchmarks.md``; ``make bench`` runs it after the job's benchmark.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml
from confluent_kafka import Consumer, TopicPartition

from benchmarks.workload import recreate_topics
from dreamumm import kafka_io, steps
from dreamumm.config import REPO_ROOT, Settings, load_settings
from dreamumm.records import video_embedding_records
from embeddings import (
    SAMPLE_EVENTS_PATH,
    VIDEO_FEATURES_PATH,
    ContentEmbeddingConfig,
    build_content_embeddings,
    load_events,
    load_video_table,
    model_version,
)
from infra import TopicSpec, find_free_ports
from ranking import Candidate, HistoryItem, build_ranker
from schemas import USER_INTEREST, AvroCodec
from store import FeatureStoreReader, Materialiser
from store.database import open_secondary
from store.layout import USERS

logger = logging.getLogger("benchmarks.serving")

SECTION_START = "<!-- serving benchmark: start -->"
SECTION_END = "<!-- serving benchmark: end -->"
FEATURES_TOPIC = "bench-serving-features"
EMBEDDINGS_TOPIC = "bench-serving-embeddings"


@dataclass(frozen=True)
class ServingShape:
    """Size of the serving benchmark."""

    users: int
    candidates: int
    history: int
    requests: int
    concurrencies: tuple[int, ...]
    workers: tuple[int, ...]
    seed: int


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    """Return p50, p99 and max of durations in seconds, in ms."""
    values = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {"p50": float(np.percentile(values, 50)), "p99": float(np.percentile(values, 99)),
            "max": float(values.max()), "count": int(values.size)}


def time_calls(call: Callable[[int], object], count: int) -> list[float]:
    """Call ``call(i)`` for i in range(count) and return each call's duration in seconds."""
    durations = []
    for index in range(count):
        started = time.perf_counter()
        call(index)
        durations.append(time.perf_counter() - started)
    return durations


def synthetic_users(count: int, embeddings: dict[int, np.ndarray], version: str,
                    rng: np.random.Generator) -> list[tuple[bytes, bytes]]:
    """Return (key, value) UserInterest records of ``count`` SYNTHETIC users (see the module docstring)."""
    events = load_events(SAMPLE_EVENTS_PATH)
    counts = events.groupby("user_id").size().to_numpy()
    video_ids = np.array(sorted(embeddings))
    matrix = np.stack([embeddings[video] for video in video_ids]).astype(np.float64)
    codec = AvroCodec.for_schema(USER_INTEREST)
    now_ms = int(time.time() * 1000)
    records = []
    for user in range(count):
        event_count = int(rng.choice(counts))
        picked = rng.integers(0, len(video_ids), size=event_count)
        weights = rng.uniform(0.0, 1.0, size=event_count)
        vector = weights @ matrix[picked]
        vector /= np.linalg.norm(vector)
        records.append((f"user-{user}".encode(), codec.encode({
            "user_id": f"user-{user}", "vector": vector.astype(np.float32).tolist(),
            "total_weight": float(weights.sum()), "event_count": event_count,
            "last_event_time_ms": now_ms - int(rng.integers(0, 86_400_000)), "emit_time_ms": now_ms,
            "embedding_model_version": version})))
    return records


def bare_consume_seconds(bootstrap_servers: str, topic: str, expected: int) -> float:
    """Return how long a read-committed consumer takes to read ``expected`` records of ``topic``, doing nothing else."""
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": "bench-serving-bare",
                         "enable.auto.commit": False, "isolation.level": "read_committed",
                         "enable.partition.eof": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, partition, 0) for partition in partitions])
        started, seen = time.monotonic(), 0
        while seen < expected:
            seen += sum(1 for message in consumer.consume(10_000, timeout=1.0) if message.error() is None)
            if time.monotonic() - started > 600:
                raise TimeoutError(f"read {seen} of {expected} records of {topic} in 600 s")
        return time.monotonic() - started
    finally:
        consumer.close()


def rank_request(rng: np.random.Generator, video_ids: list[str], shape: ServingShape, user_id: str,
                 with_history: bool) -> dict[str, Any]:
    """Return a rank request body with random candidates and, if asked, a random history."""
    picked = rng.choice(len(video_ids), size=shape.candidates + shape.history, replace=False)
    body: dict[str, Any] = {"user_id": user_id, "k": 20,
                            "candidates": [{"video_id": video_ids[i]} for i in picked[:shape.candidates]]}
    if with_history:
        body["history"] = [{"video_id": video_ids[i], "play_time_ms": float(rng.integers(0, 60_000)),
                            "duration_ms": float(rng.integers(0, 120_000))} for i in picked[shape.candidates:]]
    return body


def http_load(base_url: str, bodies: list[tuple[str, dict[str, Any] | None]], concurrency: int) -> dict[str, Any]:
    """Send the requests from ``concurrency`` threads, each with its own keep-alive client, closed loop.

    ``bodies`` are (path, JSON body or None for a GET). Returns latency percentiles, the request rate
    and the count of non-200 responses.
    """
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()

    def worker(share: list[tuple[str, dict[str, Any] | None]]) -> None:
        mine, failed = [], 0
        with httpx.Client(base_url=base_url, timeout=30.0) as client:
            for path, body in share:
                started = time.perf_counter()
                response = client.get(path) if body is None else client.post(path, json=body)
                mine.append(time.perf_counter() - started)
                failed += response.status_code != 200
        with lock:
            latencies.extend(mine)
            failures[0] += failed

    threads = [threading.Thread(target=worker, args=(bodies[index::concurrency],)) for index in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {**percentiles_ms(latencies), "requests_per_s": len(latencies) / wall, "non_200": failures[0]}


def start_service(settings: Settings, work_dir: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``dreamumm serve`` with ``workers`` processes on a free port; return the process and its URL."""
    (port,) = find_free_ports(1)
    data = settings.model_dump(mode="json")
    # The store stays as the materialiser left it, so readiness must not wait for its heartbeat.
    data["serving"].update({"port": port, "workers": workers, "host": "127.0.0.1",
                            "max_materialiser_silence_ms": 86_400_000})
    config_path = work_dir / f"serve-{workers}.yaml"
    config_path.write_text(yaml.safe_dump(data), encoding="utf-8")
    log = (work_dir / f"serve-{workers}.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "dreamumm.cli", "--config", str(config_path), "serve"],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dreamumm serve exited with code {process.returncode}; see {log.name}")
        try:
            if httpx.get(url + "/health/ready", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop_service(process)
    raise TimeoutError(f"dreamumm serve was not ready within 60 s; see {log.name}")


def stop_service(process: subprocess.Popen[bytes]) -> None:
    """Stop the service's whole process group, so that uvicorn's worker processes stop with it."""
    # The group outlives a parent that already exited, so signal it either way.
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def run_serving_benchmark(settings: Settings, shape: ServingShape, work_dir: Path) -> dict[str, Any]:
    """Run the serving benchmark on the broker of ``settings`` and return its results."""
    # httpx logs every request at INFO, thousands of lines here.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    rng = np.random.default_rng(shape.seed)
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    data = settings.model_dump(mode="json")
    data["kafka"].update({"features_topic": FEATURES_TOPIC, "embeddings_topic": EMBEDDINGS_TOPIC})
    data["store"].update({"path": str(work_dir / "store"), "secondary_dir": str(work_dir / "readers")})
    settings = Settings.model_validate(data)
    bootstrap, partitions = settings.kafka.bootstrap_servers, settings.kafka.partitions

    config = ContentEmbeddingConfig(dimension=settings.embedding.dimension, salt=settings.embedding.content_salt)
    version = model_version(config)
    embeddings = build_content_embeddings(load_video_table(VIDEO_FEATURES_PATH), config)
    recreate_topics(bootstrap, [TopicSpec(FEATURES_TOPIC, partitions, compacted=True),
                                TopicSpec(EMBEDDINGS_TOPIC, partitions, compacted=True)])
    kafka_io.produce(bootstrap, EMBEDDINGS_TOPIC, video_embedding_records(embeddings, version))
    kafka_io.produce(bootstrap, FEATURES_TOPIC, synthetic_users(shape.users, embeddings, version, rng))
    total_records = shape.users + len(embeddings)

    with Materialiser(settings) as materialiser:
        started = time.monotonic()
        materialiser.run(until_caught_up=True)
        materialise_s = time.monotonic() - started
    bare_s = bare_consume_seconds(bootstrap, FEATURES_TOPIC, shape.users)
    logger.info("materialised %s records in %.1f s; a bare consumer read the users in %.1f s",
                total_records, materialise_s, bare_s)

    lookups = 20_000
    users = [f"user-{i}" if rng.random() < 0.9 else f"unknown-{i}" for i in rng.integers(0, shape.users, lookups)]
    video_ids = [str(video) for video in sorted(embeddings)]
    results: dict[str, Any] = {"shape": shape.__dict__ | {"concurrencies": list(shape.concurrencies),
                                                         "workers": list(shape.workers)},
                               "dimension": settings.embedding.dimension, "videos": len(embeddings),
                               "materialise": {"records": total_records, "seconds": materialise_s,
                                               "records_per_s": total_records / materialise_s,
                                               "bare_consume_users_per_s": shape.users / bare_s}}
    with FeatureStoreReader.open(settings.store) as reader:
        results["get"] = percentiles_ms(time_calls(lambda i: reader.get(users[i]), lookups))
        batches = [users[i:i + 100] for i in range(0, lookups, 100)]
        results["multi_get_100"] = percentiles_ms(time_calls(lambda i: reader.multi_get(batches[i]), len(batches)))
        raw = open_secondary(settings.store.path, work_dir / "raw-reader")
        try:
            raw_users = raw.families[USERS]
            keys = [user.encode("utf-8") for user in users]
            results["raw_get"] = percentiles_ms(time_calls(lambda i: raw_users.get(keys[i]), lookups))
        finally:
            raw.close()

        ranker = build_ranker(settings, reader)
        requests = [rank_request(rng, video_ids, shape, f"user-{rng.integers(0, shape.users)}", True)
                    for _ in range(500)]

        def rank(index: int, vector: str) -> object:
            body = requests[index]
            return ranker.rank(body["user_id"], [HistoryItem(**item) for item in body["history"]],
                               [Candidate(item["video_id"]) for item in body["candidates"]], 20,
                               vector_request=vector)  # type: ignore[arg-type]

        results["rank_stored"] = percentiles_ms(time_calls(lambda i: rank(i, "auto"), len(requests)))
        results["rank_candidate"] = percentiles_ms(time_calls(lambda i: rank(i, "candidate"), len(requests)))
        matrix = np.stack([embeddings[int(item["video_id"])] for item in requests[0]["candidates"]]).astype(np.float32)
        user_vector = matrix[0]

        def bare(_index: int) -> object:
            scores = matrix @ user_vector
            top = np.argpartition(-scores, 20)[:20]
            return top[np.argsort(-scores[top])]

        results["rank_bare_numpy"] = percentiles_ms(time_calls(bare, len(requests)))

    http: list[dict[str, Any]] = []
    for workers in shape.workers:
        process, url = start_service(settings, work_dir, workers)
        try:
            for concurrency in shape.concurrencies:
                rank_bodies = [("/v1/rank", requests[i % len(requests)]) for i in range(shape.requests)]
                look_ups = [(f"/v1/users/user-{rng.integers(0, shape.users)}/vector", None)
                            for _ in range(shape.requests)]
                for name, bodies in (("rank", rank_bodies), ("vector look-up", look_ups)):
                    http_load(url, bodies[:50], concurrency)  # warm-up
                    measured = http_load(url, bodies, concurrency)
                    http.append({"endpoint": name, "workers": workers, "concurrency": concurrency, **measured})
                    logger.info("HTTP %s, %s worker(s), concurrency %s: p50 %.2f ms, p99 %.2f ms, %.0f requests/s",
                                name, workers, concurrency, measured["p50"], measured["p99"],
                                measured["requests_per_s"])
        finally:
            stop_service(process)
    results["http"] = http
    return results


def _ms(value: float) -> str:
    return f"{value:.3f} ms" if value < 1 else f"{value:.1f} ms"


def render_section(results: dict[str, Any]) -> list[str]:
    """Return the Markdown lines of the serving section."""
    shape = results["shape"]
    materialise = results["materialise"]
    raw_p50 = results["raw_get"]["p50"]
    bare_p50 = results["rank_bare_numpy"]["p50"]
    lines = [
        SECTION_START,
        "## Serving: feature store and ranking",
        "",
        f"Input: {shape['users']:,} SYNTHETIC users (each a normalised random sum of real content embeddings,",
        "as many as a user of the KuaiRand sample has events) and the "
        f"{results['videos']:,} real videos' content embeddings at d = {results['dimension']}.",
        f"Requests carry {shape['candidates']} random candidates and {shape['history']} random history items; k = 20.",
        "The load generator's threads run on the same 2 cores as the service, so HTTP figures include its cost.",
        "The materialiser is stopped while requests run, so the store does not change under them.",
        "",
        "| operation | p50 | p99 | vs baseline (p50) | baseline |",
        "| --- | ---: | ---: | ---: | --- |",
        f"| `FeatureStoreReader.get` (10% unknown users) | {_ms(results['get']['p50'])} | {_ms(results['get']['p99'])} | "
        f"{results['get']['p50'] / raw_p50:.1f}x | raw RocksDB get of the same key, {_ms(raw_p50)} |",
        f"| `FeatureStoreReader.multi_get`, 100 users | {_ms(results['multi_get_100']['p50'])} | "
        f"{_ms(results['multi_get_100']['p99'])} | {results['multi_get_100']['p50'] / (100 * raw_p50):.2f}x | "
        f"100 raw gets, {_ms(100 * raw_p50)} |",
        f"| `Ranker.rank`, stored vector | {_ms(results['rank_stored']['p50'])} | {_ms(results['rank_stored']['p99'])} | "
        f"{results['rank_stored']['p50'] / bare_p50:.1f}x | numpy product and top-k alone, {_ms(bare_p50)} |",
        f"| `Ranker.rank`, Candidate-DreamUMM | {_ms(results['rank_candidate']['p50'])} | "
        f"{_ms(results['rank_candidate']['p99'])} | {results['rank_candidate']['p50'] / bare_p50:.1f}x | same |",
        "",
        f"Materialiser: {materialise['records']:,} records into a new store in {materialise['seconds']:.1f} s, "
        f"{materialise['records_per_s']:,.0f} records/s, start-up included; a bare read-committed consumer "
        f"read the users at {materialise['bare_consume_users_per_s']:,.0f} records/s, so the materialiser "
        f"ran at {materialise['records_per_s'] / materialise['bare_consume_users_per_s']:.2f}x of the bare read.",
        "",
        "Over HTTP (`dreamumm serve`, closed loop, keep-alive connections):",
        "",
        "| endpoint | server workers | concurrency | p50 | p99 | requests/s | vs in process (p50) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in results["http"]:
        in_process = results["rank_stored"]["p50"] if row["endpoint"] == "rank" else results["get"]["p50"]
        lines.append(f"| {row['endpoint']} | {row['workers']} | {row['concurrency']} | {_ms(row['p50'])} | "
                     f"{_ms(row['p99'])} | {row['requests_per_s']:,.0f} | {row['p50'] / in_process:.0f}x |")
    failed = sum(row["non_200"] for row in results["http"])
    lines += ["", f"Responses other than 200: {failed}.", SECTION_END, ""]
    return lines


def replace_section(report: Path, section: list[str]) -> None:
    """Put ``section`` in place of the serving section of ``report``, or append it."""
    text = report.read_text() if report.exists() else "# Benchmarks\n"
    block = "\n".join(section)
    if SECTION_START in text and SECTION_END in text:
        before, rest = text.split(SECTION_START, 1)
        after = rest.split(SECTION_END, 1)[1].lstrip("\n")
        text = before + block + after
    else:
        text = text.rstrip("\n") + "\n\n" + block
    report.write_text(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the serving benchmark's options to ``parser``."""
    parser.add_argument("--serving-users", type=int, default=100_000, help="SYNTHETIC users in the store (default 100000)")
    parser.add_argument("--serving-candidates", type=int, default=500, help="candidates per request (default 500)")
    parser.add_argument("--serving-history", type=int, default=50, help="history items per request (default 50)")
    parser.add_argument("--serving-requests", type=int, default=2_000,
                        help="HTTP requests per endpoint and concurrency (default 2000)")
    parser.add_argument("--serving-concurrency", default="1,8", help="HTTP client concurrencies (default 1,8)")
    parser.add_argument("--serving-workers", default="1,2", help="server worker counts (default 1,2)")


def shape_of(args: argparse.Namespace, seed: int) -> ServingShape:
    """Return the serving benchmark's shape from parsed options."""
    return ServingShape(users=args.serving_users, candidates=args.serving_candidates, history=args.serving_history,
                        requests=args.serving_requests,
                        concurrencies=tuple(int(value) for value in args.serving_concurrency.split(",") if value),
                        workers=tuple(int(value) for value in args.serving_workers.split(",") if value), seed=seed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic users and requests (default 0)")
    parser.add_argument("--report", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md",
                        help="Markdown report whose serving section to replace (default docs/benchmarks.md)")
    parser.add_argument("--work-dir", type=Path, default=REPO_ROOT / "var" / "bench" / "serving",
                        help="folder for the store, logs and serving.json (default var/bench/serving)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    broker = steps.local_broker(settings, steps.prepare_runtime())
    logger.info("%s the Kafka broker at %s", "started" if broker.start() else "reusing", broker.bootstrap_servers)
    results = run_serving_benchmark(settings, shape_of(args, args.seed), args.work_dir)
    (args.work_dir / "serving.json").write_text(json.dumps(results, indent=2))
    section = render_section(results)
    replace_section(args.report, section)
    sys.stdout.write("\n".join(section[1:-2]) + f"\n\nwrote the serving section of {args.report}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
