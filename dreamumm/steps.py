"""The steps that the command line runs: set up, start the broker, publish, run the job."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from dreamumm import kafka_io
from dreamumm.config import Settings
from dreamumm.records import video_embedding_records, watch_event_records
from infra import BrokerSettings, LocalBroker, RuntimeJars, TopicError, TopicSpec, delete_topics, ensure_jars, ensure_topics

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    """Jars fetched by Maven, and whether an earlier run's cache was reused."""

    jars: RuntimeJars
    reused_cache: bool


def prepare_runtime() -> Runtime:
    """Fetch the Kafka broker and Flink connector jars, or reuse the cached ones."""
    jars, reused = ensure_jars()
    return Runtime(jars, reused)


def local_broker(settings: Settings, runtime: Runtime) -> LocalBroker:
    """Return the handle of the local broker described by the settings."""
    broker_settings = BrokerSettings(
        port=settings.broker.port,
        controller_port=settings.broker.controller_port,
        root_dir=settings.broker.root_dir,
    )
    return LocalBroker(broker_settings, runtime.jars)


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Return the five topics of the pipeline; embeddings, features and deletions are compacted.

    The input topics keep the producer's record timestamps (CreateTime, Kafka's default), so that
    a replay that writes the recorded timestamps gives the job the same input as the original.
    The features topic stamps records with the broker's append time (LogAppendTime).
    """
    kafka = settings.kafka
    # Record timestamps may be historical (a replay, the KuaiRand sample), and time-based retention
    # would delete such records, so the append-only topics keep theirs until deleted by hand.
    keep = {"retention.ms": "-1"}
    return [
        TopicSpec(kafka.events_topic, kafka.partitions, compacted=False, config=keep),
        TopicSpec(kafka.embeddings_topic, kafka.partitions, compacted=True),
        # A feature record's timestamp is when it was written, which readers use to judge its age.
        # Records stamped with old event times would also make Kafka roll segments early, and
        # compaction would then thin the topic while a run is still being checked.
        TopicSpec(kafka.features_topic, kafka.partitions, compacted=True,
                  config={"message.timestamp.type": "LogAppendTime"}),
        TopicSpec(kafka.dead_letter_topic, kafka.partitions, compacted=False, config=keep),
        # A job that starts from scratch reads every deletion again; compaction keeps the newest per user.
        TopicSpec(kafka.deletions_topic, kafka.partitions, compacted=True),
    ]


def create_topics(settings: Settings, recreate: bool = False) -> list[str]:
    """Create the pipeline's topics; with ``recreate``, delete them first so that they start empty."""
    specs = topic_specs(settings)
    bootstrap = settings.kafka.bootstrap_servers
    if recreate:
        delete_topics(bootstrap, [spec.name for spec in specs])
    return ensure_topics(bootstrap, specs, replication_factor=settings.kafka.replication_factor)


def require_topics(settings: Settings) -> None:
    """Raise TopicError naming the missing topics unless all five pipeline topics exist."""
    names = [spec.name for spec in topic_specs(settings)]
    existing = kafka_io.list_topic_names(settings.kafka.bootstrap_servers)
    missing = [name for name in names if name not in existing]
    if missing:
        raise TopicError(
            f"topics {missing} not found on {settings.kafka.bootstrap_servers}; "
            "create them with `dreamumm create-topics`"
        )


def publish_embeddings(settings: Settings, videos_path: Path) -> tuple[int, str]:
    """Build the content-feature embeddings of the video table and publish them; return count and version."""
    from embeddings import ContentEmbeddingConfig, build_content_embeddings, load_video_table, model_version

    config = ContentEmbeddingConfig(dimension=settings.embedding.dimension, salt=settings.embedding.content_salt)
    vectors = build_content_embeddings(load_video_table(videos_path), config)
    version = model_version(config)
    count = kafka_io.produce(settings.kafka.bootstrap_servers, settings.kafka.embeddings_topic,
                             video_embedding_records(vectors, version))
    return count, version


def publish_events(settings: Settings, events_path: Path) -> int:
    """Publish the watch events of a KuaiRand-format CSV file in event-time order; return the count."""
    from embeddings.sample_data import load_events

    return kafka_io.produce(settings.kafka.bootstrap_servers, settings.kafka.events_topic,
                            watch_event_records(load_events(events_path)))
