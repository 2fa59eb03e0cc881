"""The DreamUMM feature job: its SQL topology, and a function that runs it.

Data flow (Python steps are vectorised pandas functions; the rest runs in the JVM)::

    events topic ──> decode_event (Python) ──> temporal join on video id ──> GROUP BY user
                                                 ^                          weighted_vector_sum (Java)
    embeddings topic ──> decode_embedding ──> newest per video              ──> encode_user_interest (Java)
                                                                            ──> features topic (upsert, keyed by user)
    invalid records, and events with no embedding ──> encode_dead_letter ──> dead-letter topic

The join is an event-time temporal join on Kafka append time: an event matches the newest
embedding of its video appended at most ``job.embedding_wait_ms`` after the event itself.
An event without one is dead-lettered as ``missing_embedding`` once the watermark passes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from pyflink.table import EnvironmentSettings, TableEnvironment

from dreamumm.config import Settings
from infra import RuntimeJars
from jobs import dead_letters
from jobs.environment import apply_configuration, prepare_process_environment
from jobs.kafka_tables import dead_letter_sink_ddl, embeddings_source_ddl, events_source_ddl, features_sink_ddl
from jobs.udfs import register_functions
from schemas import USER_INTEREST, AvroCodec

logger = logging.getLogger(__name__)

_SOURCE_COLUMNS = "record_key, record_value, `topic`, `partition`, `offset`"

DECODED_EVENTS_VIEW = f"""CREATE TEMPORARY VIEW decoded_events AS
SELECT decoded.user_id, decoded.video_id, decoded.weight, decoded.event_time_ms, decoded.reason,
       decoded.detail, {_SOURCE_COLUMNS}, join_time
FROM (SELECT decode_event(record_value) AS decoded, * FROM events_source)"""

DECODED_EMBEDDINGS_VIEW = f"""CREATE TEMPORARY VIEW decoded_embeddings AS
SELECT decoded.video_id, decoded.vector, decoded.model_version, decoded.reason, decoded.detail,
       {_SOURCE_COLUMNS}, append_time
FROM (SELECT decode_embedding(record_value) AS decoded, * FROM embeddings_source)"""

# A deduplication that keeps the last row per key by event time is a versioned view, which
# an event-time temporal join can read "as of" a time.
EMBEDDING_VERSIONS_VIEW = """CREATE TEMPORARY VIEW embedding_versions AS
SELECT video_id, vector, model_version, append_time
FROM (
  SELECT video_id, vector, model_version, append_time,
         ROW_NUMBER() OVER (PARTITION BY video_id ORDER BY append_time DESC) AS version_rank
  FROM decoded_embeddings
  WHERE reason IS NULL
)
WHERE version_rank = 1"""

# One join for every event, valid or not, so that both sinks read one decoded and joined
# stream: invalid events have no video id, find no embedding, and keep their reason.
JOINED_EVENTS_QUERY = """SELECT event.user_id, event.video_id, event.weight, event.event_time_ms, event.reason, event.detail,
       embedding.vector, embedding.model_version,
       event.record_key, event.record_value, event.`topic`, event.`partition`, event.`offset`
FROM decoded_events AS event
LEFT JOIN embedding_versions FOR SYSTEM_TIME AS OF event.join_time AS embedding
ON event.video_id = embedding.video_id"""

# Grouping by user alone makes the user id the update key of the result, which matches the
# sink's primary key, so Flink sends only the new value of each update. A filter on any other
# column after the aggregation would bring back retractions, which the upsert sink writes as
# tombstones, so a user without a direction (encoded as null) is written as a tombstone.
# The UserInterest schema's single-object header goes in as a literal, so the Java encoder
# takes the fingerprint from the schema file rather than a copy of its own.
FEATURES_INSERT = f"""INSERT INTO features_sink
SELECT user_id,
       encode_user_interest(X'{AvroCodec.for_schema(USER_INTEREST).header.hex()}', user_id, total.vector_sum,
                            total.total_weight, total.event_count, total.last_event_time_ms, total.model_version,
                            total.superseded_event_count)
FROM (
  SELECT user_id, weighted_vector_sum(weight, vector, event_time_ms, model_version) AS total
  FROM joined_events
  WHERE reason IS NULL AND vector IS NOT NULL
  GROUP BY user_id
)"""


def dead_letter_insert(settings: Settings) -> str:
    """Return the INSERT that writes every rejected event and embedding to the dead-letter sink."""
    missing_detail = (f"no embedding of the video was appended within {settings.job.embedding_wait_ms} ms "
                      "after the event (job.embedding_wait_ms)")
    # The dead letters have no Kafka key: the original key is inside the record, and a key of
    # up to 1 MiB next to the record could pass the broker's record size limit.
    return f"""INSERT INTO dead_letter_sink
SELECT CAST(NULL AS BYTES),
       encode_dead_letter(COALESCE(reason, '{dead_letters.MISSING_EMBEDDING}'),
                          COALESCE(detail, CONCAT('video ', video_id, ': {missing_detail}')),
                          `topic`, `partition`, `offset`, record_key, record_value)
FROM joined_events
WHERE reason IS NOT NULL OR vector IS NULL
UNION ALL
SELECT CAST(NULL AS BYTES), encode_dead_letter(reason, detail, `topic`, `partition`, `offset`, record_key, record_value)
FROM decoded_embeddings
WHERE reason IS NOT NULL"""


@dataclass(frozen=True)
class JobRun:
    """Outcome of a job run that finished (bounded mode)."""

    job_id: str
    seconds: float


def build_job(t_env: TableEnvironment, settings: Settings):
    """Declare the job's tables, functions and views in ``t_env`` and return its statement set."""
    register_functions(t_env, settings)
    for ddl in (events_source_ddl(settings), embeddings_source_ddl(settings), features_sink_ddl(settings),
                dead_letter_sink_ddl(settings), DECODED_EVENTS_VIEW, DECODED_EMBEDDINGS_VIEW,
                EMBEDDING_VERSIONS_VIEW):
        t_env.execute_sql(ddl)
    # A view registered from one Table object is one node that both INSERTs read. Declared in
    # SQL, each INSERT would get its own copy of the join with different projections pushed in.
    t_env.create_temporary_view("joined_events", t_env.sql_query(JOINED_EVENTS_QUERY))
    statements = t_env.create_statement_set()
    statements.add_insert_sql(FEATURES_INSERT)
    statements.add_insert_sql(dead_letter_insert(settings))
    return statements


def run_feature_job(settings: Settings, jars: RuntimeJars) -> JobRun:
    """Run the job on a local embedded Flink cluster and wait for it.

    In bounded mode the call returns once both inputs are consumed; otherwise it runs until
    the process is stopped.
    """
    prepare_process_environment(settings)
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    apply_configuration(t_env.get_config(), settings, jars.flink_job_jars)
    statements = build_job(t_env, settings)
    logger.info("starting the feature job (parallelism %s, bounded=%s) on %s",
                settings.job.parallelism, settings.job.bounded,
                settings.kafka.bootstrap_servers)
    started = time.monotonic()
    result = statements.execute()
    job_id = str(result.get_job_client().get_job_id())
    logger.info("feature job %s submitted", job_id)
    result.wait()
    seconds = time.monotonic() - started
    logger.info("feature job %s finished in %.1f s", job_id, seconds)
    return JobRun(job_id=job_id, seconds=seconds)
