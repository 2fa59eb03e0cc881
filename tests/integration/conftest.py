"""Fixtures of the job's integration tests: publishing inputs and checking a run's accounting."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import pandas as pd
import pytest

from dreamumm import kafka_io, steps
from dreamumm.config import Settings
from dreamumm.records import video_embedding_records, watch_event_records
from dreamumm.summary import RunSummary, summarise_run
from embeddings import (
    SAMPLE_EVENTS_PATH,
    VIDEO_FEATURES_PATH,
    ContentEmbeddingConfig,
    build_content_embeddings,
    load_events,
    load_video_table,
    model_version,
)
from jobs.counters import JobCounters
from jobs.weighting import build_threshold_rule
from operators import cosine, reference_interests


class SampleInputs:
    """The shipped KuaiRand sample and its content embeddings, published to a test's topics."""

    def __init__(self) -> None:
        self.events = load_events(SAMPLE_EVENTS_PATH)
        self._video_table = load_video_table(VIDEO_FEATURES_PATH)

    def embeddings(self, settings: Settings) -> dict[int, np.ndarray]:
        """Return the content embedding of every video at the settings' dimension."""
        config = ContentEmbeddingConfig(dimension=settings.embedding.dimension, salt=settings.embedding.content_salt)
        return build_content_embeddings(self._video_table, config)

    def publish(self, settings: Settings, events: pd.DataFrame | None = None) -> dict[int, np.ndarray]:
        """Create the topics, publish every embedding and the events (the sample by default) in time order."""
        steps.create_topics(settings)
        vectors = self.embeddings(settings)
        config = ContentEmbeddingConfig(dimension=settings.embedding.dimension, salt=settings.embedding.content_salt)
        bootstrap = settings.kafka.bootstrap_servers
        kafka_io.produce(bootstrap, settings.kafka.embeddings_topic,
                         video_embedding_records(vectors, model_version(config)))
        kafka_io.produce(bootstrap, settings.kafka.events_topic,
                         watch_event_records(self.events if events is None else events))
        return vectors


@pytest.fixture(scope="session")
def sample_inputs() -> SampleInputs:
    return SampleInputs()


class RunChecks:
    """Checks of a job run, shared by the integration tests through the ``checks`` fixture."""

    @staticmethod
    def matches_reference(settings: Settings, summary: RunSummary, events: pd.DataFrame,
                          vectors: dict[int, np.ndarray]) -> None:
        """Assert the emitted users, vectors, weights and counts equal the float64 reference of ``events``."""
        reference = reference_interests(events, vectors, settings.preference.alpha_per_s,
                                        build_threshold_rule(settings.preference),
                                        settings.preference.recency_half_life_ms)
        expected_users = {str(user) for user, ref in reference.items() if ref.vector is not None}
        assert set(summary.users) == expected_users
        for user_id, emitted in summary.users.items():
            ref = reference[int(user_id)]
            assert cosine(emitted.vector, ref.vector) >= 1 - 1e-6, f"user {user_id}"
            assert emitted.total_weight == pytest.approx(ref.total_weight, rel=1e-5), f"user {user_id}"
            assert emitted.event_count == ref.event_count, f"user {user_id}"
            assert emitted.last_event_time_ms == ref.last_event_time_ms, f"user {user_id}"

    @staticmethod
    def accounted(counters: JobCounters, summary: RunSummary) -> None:
        """Assert the job's counters balance and agree with what the topics hold."""
        assert counters.balanced, counters.describe()
        assert counters.get("events_read") == summary.events_read
        assert counters.get("events_dead_lettered") == summary.events_dead_lettered
        assert counters.get("events_deduplicated") == summary.events_deduplicated

    @staticmethod
    def wait_until_balanced(settings: Settings, expected_events: int, timeout_s: float = 120.0,
                            check: Callable[[RunSummary], bool] | None = None, pending: int = 0) -> RunSummary:
        """Poll the topics until ``expected_events`` events were read and all but ``pending`` of them are
        accounted for (and ``check`` holds); return the summary."""
        deadline = time.monotonic() + timeout_s
        summary = summarise_run(settings)
        while time.monotonic() < deadline:
            accounted = summary.events_contributed + summary.events_dead_lettered + summary.events_deduplicated
            if (summary.events_read == expected_events and accounted == expected_events - pending
                    and (check is None or check(summary))):
                return summary
            time.sleep(1.0)
            summary = summarise_run(settings)
        raise AssertionError(f"not all {expected_events} events were accounted for within {timeout_s} s: read "
                             f"{summary.events_read}, contributed {summary.events_contributed}, dead-lettered "
                             f"{summary.events_dead_lettered}, deduplicated {summary.events_deduplicated}")


@pytest.fixture(scope="session")
def checks() -> type[RunChecks]:
    return RunChecks
