"""The benchmark's input: SYNTHETIC watch events and random video embeddings, and their reference.

The events come from ``benchmarks.synthetic``, fitted to the shipped KuaiRand sample; the
embeddings are random unit vectors, one per video and dimension. Events are encoded once and
shared by every dimension: each dimension has its own embeddings topic, and all of them are
published before the events, because the job matches an event with the embedding appended
before it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from benchmarks.synthetic import describe, fit_profile, generate_events
from dreamumm import kafka_io
from dreamumm.config import PreferenceSettings
from dreamumm.records import video_embedding_records, watch_event_records
from embeddings import load_events
from infra import TopicSpec, delete_topics, ensure_topics
from jobs.weighting import build_threshold_rule
from operators import ReferenceInterest, reference_interests

logger = logging.getLogger(__name__)

MODEL_VERSION = "synthetic-random-v1"
"""Model version of the benchmark's embeddings."""

APPEND_TIME = {"message.timestamp.type": "LogAppendTime"}
"""Topic config that makes the broker stamp records; latency and rates are read from these stamps."""


@dataclass(frozen=True)
class WorkloadShape:
    """Size of a benchmark workload."""

    events: int
    users: int
    videos: int
    seed: int


@dataclass
class Workload:
    """SYNTHETIC events, their encoded Kafka records, and embeddings per dimension."""

    shape: WorkloadShape
    events: pd.DataFrame
    records: list[tuple[bytes, bytes, int]]
    statistics: dict[str, float]
    embeddings: dict[int, dict[int, NDArray[np.float32]]] = field(default_factory=dict)

    def embeddings_of(self, dimension: int) -> dict[int, NDArray[np.float32]]:
        """Return the random unit embeddings of every video at ``dimension``, made on first use."""
        if dimension not in self.embeddings:
            rng = np.random.default_rng(self.shape.seed + dimension)
            vectors = rng.normal(size=(self.shape.videos, dimension))
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            self.embeddings[dimension] = {video: vectors[video].astype(np.float32)
                                          for video in range(self.shape.videos)}
        return self.embeddings[dimension]


def build_workload(shape: WorkloadShape) -> Workload:
    """Generate the SYNTHETIC events of ``shape`` and encode them as WatchEvent records."""
    started = time.monotonic()
    profile = fit_profile(load_events())
    events = generate_events(profile, shape.events, shape.users, shape.videos, shape.seed)
    records = list(watch_event_records(events, sort_by_time=False))
    logger.info("generated and encoded %d SYNTHETIC events in %.1f s", len(records), time.monotonic() - started)
    return Workload(shape=shape, events=events, records=records, statistics=describe(events))


def recreate_topics(bootstrap_servers: str, specs: list[TopicSpec]) -> None:
    """Delete and create ``specs`` so that every run starts from empty topics."""
    delete_topics(bootstrap_servers, [spec.name for spec in specs])
    ensure_topics(bootstrap_servers, specs)


def publish_embeddings(bootstrap_servers: str, topic: str, workload: Workload, dimension: int,
                       partitions: int) -> None:
    """Recreate ``topic`` and write one embedding per video at ``dimension``."""
    recreate_topics(bootstrap_servers, [TopicSpec(topic, partitions, compacted=True, config=APPEND_TIME)])
    kafka_io.produce(bootstrap_servers, topic,
                     video_embedding_records(workload.embeddings_of(dimension), MODEL_VERSION))


def publish_events(bootstrap_servers: str, topic: str, workload: Workload, partitions: int) -> None:
    """Recreate ``topic`` and write every event of the workload, keyed by user."""
    recreate_topics(bootstrap_servers, [TopicSpec(topic, partitions, config=APPEND_TIME)])
    kafka_io.produce(bootstrap_servers, topic, workload.records)


def reference_of(workload: Workload, dimension: int,
                 preference: PreferenceSettings) -> dict[int, ReferenceInterest]:
    """Return the float64 reference interest of every user at ``dimension``."""
    started = time.monotonic()
    reference = reference_interests(workload.events, workload.embeddings_of(dimension),
                                    preference.alpha_per_s, build_threshold_rule(preference))
    logger.info("float64 reference of %d users at d=%d in %.1f s", len(reference), dimension,
                time.monotonic() - started)
    return reference
