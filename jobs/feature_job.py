"""The DreamUMM feature job: its topology, and a function that runs it.

Topology (every stateful operator has a fixed ``uid``)::

    events topic ──> decode-events ──> key by video ─┐
                                                   embedding-join ──> key by user ──> user-interest ──> features topic
    embeddings topic ──> decode-embeddings ──> key by video ─┘
    dead letters of every step ───────────────────────────────────────────────────────> dead-letter topic
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from pyflink.common import Types
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.table import StreamTableEnvironment

from dreamumm.config import Settings
from jobs.environment import flink_configuration, prepare_process_environment
from jobs.functions import DEAD_LETTERS, DecodeEmbeddings, DecodeEvents, EmbeddingJoin, UserInterestAggregator
from jobs.kafka_tables import sink_table_ddl, source_table_ddl
from jobs.records import CONTRIBUTION, EMBEDDING, KAFKA_OUTPUT, WEIGHTED_EVENT

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobRun:
    """Outcome of a job run that finished (bounded mode)."""

    job_id: str
    seconds: float


def build_pipeline(env: StreamExecutionEnvironment, t_env: StreamTableEnvironment, settings: Settings) -> None:
    """Add the feature job's sources, operators and sinks to ``env``."""
    kafka = settings.kafka
    startup_mode = "earliest-offset" if settings.job.bounded else "group-offsets"
    t_env.execute_sql(source_table_ddl("events_source", kafka.events_topic, f"{kafka.consumer_group}-events",
                                       startup_mode, settings))
    # Embeddings are always read from the start: the job needs every video's newest vector.
    t_env.execute_sql(source_table_ddl("embeddings_source", kafka.embeddings_topic,
                                       f"{kafka.consumer_group}-embeddings", "earliest-offset", settings))
    t_env.execute_sql(sink_table_ddl("features_sink", kafka.features_topic, settings))
    t_env.execute_sql(sink_table_ddl("dead_letter_sink", kafka.dead_letter_topic, settings))

    columns = "record_key, record_value, `topic`, `partition`, `offset`"
    raw_events = t_env.to_data_stream(t_env.sql_query(f"SELECT {columns} FROM events_source"))
    raw_embeddings = t_env.to_data_stream(t_env.sql_query(f"SELECT {columns} FROM embeddings_source"))

    events = raw_events.process(DecodeEvents(settings), output_type=WEIGHTED_EVENT).name("decode-events").uid(
        "decode-events")
    embeddings = raw_embeddings.process(DecodeEmbeddings(settings), output_type=EMBEDDING).name(
        "decode-embeddings").uid("decode-embeddings")

    contributions = (
        events.connect(embeddings)
        .key_by(lambda event: event[1], lambda embedding: embedding[0], key_type=Types.STRING())
        .process(EmbeddingJoin(settings), output_type=CONTRIBUTION)
        .name("embedding-join")
        .uid("embedding-join")
    )
    features = (
        contributions.key_by(lambda contribution: contribution[0], key_type=Types.STRING())
        .process(UserInterestAggregator(settings), output_type=KAFKA_OUTPUT)
        .name("user-interest")
        .uid("user-interest")
    )
    dead_letters = (
        events.get_side_output(DEAD_LETTERS)
        .union(embeddings.get_side_output(DEAD_LETTERS), contributions.get_side_output(DEAD_LETTERS))
    )

    statements = t_env.create_statement_set()
    statements.add_insert("features_sink", t_env.from_data_stream(features))
    statements.add_insert("dead_letter_sink", t_env.from_data_stream(dead_letters))
    statements.attach_as_datastream()


def run_feature_job(settings: Settings, connector_jar: Path) -> JobRun:
    """Run the job on a local embedded Flink cluster and wait for it.

    In bounded mode the call returns once both inputs are consumed; otherwise it runs until
    the process is stopped.
    """
    prepare_process_environment(settings)
    env = StreamExecutionEnvironment.get_execution_environment(flink_configuration(settings, connector_jar))
    t_env = StreamTableEnvironment.create(env)
    build_pipeline(env, t_env, settings)
    logger.info("starting the feature job (parallelism %s, %s mode, bounded=%s) on %s",
                settings.job.parallelism, settings.job.execution_mode, settings.job.bounded,
                settings.kafka.bootstrap_servers)
    started = time.monotonic()
    result = env.execute("dreamumm-feature-job")
    seconds = time.monotonic() - started
    job_id = str(result.get_job_id())
    logger.info("feature job %s finished in %.1f s", job_id, seconds)
    return JobRun(job_id=job_id, seconds=seconds)
