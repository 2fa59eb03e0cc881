"""The DreamUMM feature job: its SQL topology, and a function that runs it.

Data flow (Python steps are vectorised pandas functions; the rest runs in the JVM)::

    events topic ──> decode_event (Python), lateness ──> temporal join on video id, as of event time
                                                          ^                         │
    embeddings topic ──> decode_embedding (Java) ──> versions by valid_from_ms            v
    deletions topic ──> decode_deletion ─────────────────────────────> GROUP BY user: weighted_vector_sum (Java)
                                                                     ──> encode_user_interest (Java)
                                                                     ──> features topic (upsert, keyed by user)
    invalid records, late events and events with no embedding ──> encode_dead_letter ──> dead-letter topic

Event time is the event's ``event_time_ms``. An event joins the version of its video's
embedding with the largest ``valid_from_ms`` at or before the event's time, once the watermark
of both inputs has passed that time. An event with no such version is dead-lettered as
``missing_embedding``. An event behind the watermark joins at the next watermark with the
versions the join still keeps (the newest one at or before the watermark, and later ones).
An event whose Kafka record timestamp is more than ``job.allowed_lateness_ms`` after its time
is dead-lettered as ``too_late``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from py4j.protocol import Py4JJavaError
from pyflink.java_gateway import get_gateway
from pyflink.table import EnvironmentSettings, TableEnvironment, TableResult

from dreamumm.config import Settings
from infra import RuntimeJars
from jobs import dead_letters, restored_bounded
from jobs.counters import JobCounters, wait_for_final_counters
from jobs.environment import apply_configuration, counters_dir, prepare_process_environment
from jobs.kafka_tables import (
    dead_letter_sink_ddl,
    deletions_source_ddl,
    embeddings_source_ddl,
    events_source_ddl,
    features_sink_ddl,
    sql_interval,
)
from jobs.preflight import check_before_start
from jobs.udfs import register_functions
from schemas import USER_INTEREST, VIDEO_EMBEDDING, AvroCodec

logger = logging.getLogger(__name__)

_SAVEPOINT_ATTEMPTS = 5
"""Attempts of a stop-with-savepoint that a finishing task declines."""

_SOURCE_COLUMNS = "record_key, record_value, `topic`, `partition`, `offset`"


def _literal(text: str) -> str:
    """Return ``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def decoded_events_view(settings: Settings) -> str:
    """Return the view of decoded events, with the lateness and clock rules applied to valid ones.

    Lateness is the time from the event to its Kafka record timestamp, a property of the record
    alone, so the rule gives the same verdicts live and in a replay that keeps the timestamps,
    whatever the order of arrival. ``watch_event_time`` gives time 0 to an event from a clock too
    far ahead, so a valid event with another time whose time attribute is 0 is one of those.
    """
    job = settings.job
    lateness = sql_interval(job.allowed_lateness_ms)
    ahead_detail = (f"event_time_ms is more than {job.max_event_time_ahead_ms} ms after the record's Kafka timestamp "
                    "(job.max_event_time_ahead_ms), where it would move the watermark ahead of every later event; "
                    "or its bytes are malformed in a way that only the JVM's event-time reader rejects")
    late_detail = (f"the record reached Kafka more than {job.allowed_lateness_ms} ms after the event "
                   "(job.allowed_lateness_ms): event time ")
    too_late = f"TO_TIMESTAMP_LTZ(decoded.event_time_ms, 3) < append_time - {lateness}"
    is_ahead = "event_time = TO_TIMESTAMP_LTZ(0, 3) AND decoded.event_time_ms <> 0"
    return f"""CREATE TEMPORARY VIEW decoded_events AS
SELECT decoded.user_id, decoded.video_id, decoded.weight, decoded.event_time_ms, decoded.event_id,
       CASE
         WHEN decoded.reason IS NOT NULL THEN decoded.reason
         WHEN {is_ahead} THEN '{dead_letters.INVALID_FIELD}'
         WHEN {too_late} THEN '{dead_letters.TOO_LATE}'
       END AS reason,
       CASE
         WHEN decoded.reason IS NOT NULL THEN decoded.detail
         WHEN {is_ahead} THEN {_literal(ahead_detail)}
         WHEN {too_late}
           THEN CONCAT({_literal(late_detail)}, CAST(TO_TIMESTAMP_LTZ(decoded.event_time_ms, 3) AS STRING),
                       ', record timestamp ', CAST(append_time AS STRING))
       END AS detail,
       {_SOURCE_COLUMNS}, event_time
FROM (SELECT decode_event(record_value) AS decoded, * FROM events_source)"""


def decoded_embeddings_view(settings: Settings) -> str:
    """Return the view of decoded embeddings; ``decode_embedding`` (Java) also checks and normalises each vector."""
    header = AvroCodec.for_schema(VIDEO_EMBEDDING).header.hex()
    return f"""CREATE TEMPORARY VIEW decoded_embeddings AS
SELECT decoded.video_id, decoded.vector, decoded.model_version, decoded.reason, decoded.detail,
       {_SOURCE_COLUMNS}, valid_from
FROM (SELECT decode_embedding(record_value, X'{header}', {settings.embedding.dimension}) AS decoded, *
      FROM embeddings_source)"""

DECODED_DELETIONS_VIEW = f"""CREATE TEMPORARY VIEW decoded_deletions AS
SELECT decoded.user_id, decoded.requested_time_ms, decoded.reason, decoded.detail, {_SOURCE_COLUMNS}
FROM (SELECT decode_deletion(record_value) AS decoded, * FROM deletions_source)"""

# A deduplication that keeps the last row per key by event time is a versioned view, which
# an event-time temporal join can read "as of" a time; the join keeps the earlier versions it
# has seen. Of two versions with the same start, the one read later replaces the other, and a
# version that starts before the newest one seen for its video is ignored.
EMBEDDING_VERSIONS_VIEW = """CREATE TEMPORARY VIEW embedding_versions AS
SELECT video_id, vector, model_version, valid_from
FROM (
  SELECT video_id, vector, model_version, valid_from,
         ROW_NUMBER() OVER (PARTITION BY video_id ORDER BY valid_from DESC) AS version_rank
  FROM decoded_embeddings
  WHERE reason IS NULL
)
WHERE version_rank = 1"""

# One join for every event, valid or not, so that both sinks read one decoded and joined
# stream: invalid events have no video id, find no embedding, and keep their reason.
JOINED_EVENTS_QUERY = """SELECT event.user_id, event.video_id, event.weight, event.event_time_ms, event.event_id,
       event.reason, event.detail, embedding.vector, embedding.model_version,
       event.record_key, event.record_value, event.`topic`, event.`partition`, event.`offset`
FROM decoded_events AS event
LEFT JOIN embedding_versions FOR SYSTEM_TIME AS OF event.event_time AS embedding
ON event.video_id = embedding.video_id"""

# Grouping by user alone makes the user id the update key of the result, which matches the
# sink's primary key, so Flink sends only the new value of each update. A filter on any other
# column after the aggregation would bring back retractions, which the upsert sink writes as
# tombstones, so a user without a direction (encoded as null) is written as a tombstone: an
# erased user, for one. Deletions join the events as rows with erase = TRUE.
# The UserInterest schema's single-object header goes in as a literal, so the Java encoder
# takes the fingerprint from the schema file rather than a copy of its own.
FEATURES_INSERT = f"""INSERT INTO features_sink
SELECT user_id,
       encode_user_interest(X'{AvroCodec.for_schema(USER_INTEREST).header.hex()}', user_id, total.vector_sum,
                            total.total_weight, total.event_count, total.last_event_time_ms, total.model_version,
                            total.superseded_event_count, total.deduplicated_event_count)
FROM (
  SELECT user_id,
         weighted_vector_sum(weight, vector, event_time_ms, model_version, event_id, video_id, erase) AS total
  FROM (
    SELECT user_id, weight, vector, event_time_ms, model_version, event_id, video_id, FALSE AS erase
    FROM joined_events
    WHERE reason IS NULL AND vector IS NOT NULL
    UNION ALL
    SELECT user_id, CAST(NULL AS DOUBLE), CAST(NULL AS BYTES), requested_time_ms, CAST(NULL AS STRING),
           CAST(NULL AS STRING), CAST(NULL AS STRING), TRUE
    FROM decoded_deletions
    WHERE reason IS NULL
  )
  GROUP BY user_id
)"""


def dead_letter_insert(settings: Settings) -> str:
    """Return the INSERT that writes every rejected event, embedding and deletion to the dead-letter sink."""
    missing_detail = ("no version of its embedding is valid at the event's time (valid_from_ms at or before it) "
                      "and was read before the watermark passed the event")
    # The dead letters have no Kafka key: the original key is inside the record, and a key of
    # up to 1 MiB next to the record could pass the broker's record size limit.
    return f"""INSERT INTO dead_letter_sink
SELECT CAST(NULL AS BYTES),
       encode_dead_letter(COALESCE(reason, '{dead_letters.MISSING_EMBEDDING}'),
                          COALESCE(detail, CONCAT('video ', video_id, {_literal(': ' + missing_detail)})),
                          `topic`, `partition`, `offset`, record_key, record_value)
FROM joined_events
WHERE reason IS NOT NULL OR vector IS NULL
UNION ALL
SELECT CAST(NULL AS BYTES), encode_dead_letter(reason, detail, `topic`, `partition`, `offset`, record_key, record_value)
FROM decoded_embeddings
WHERE reason IS NOT NULL
UNION ALL
SELECT CAST(NULL AS BYTES), encode_dead_letter(reason, detail, `topic`, `partition`, `offset`, record_key, record_value)
FROM decoded_deletions
WHERE reason IS NOT NULL"""


@dataclass(frozen=True)
class JobRun:
    """Outcome of a job run that finished (bounded mode)."""

    job_id: str
    seconds: float
    counters: JobCounters
    """Totals of the job's counters; they include reprocessed records if the job failed over."""


def build_job(t_env: TableEnvironment, settings: Settings):
    """Declare the job's tables, functions and views in ``t_env`` and return its statement set."""
    register_functions(t_env, settings)
    for ddl in (events_source_ddl(settings), embeddings_source_ddl(settings), deletions_source_ddl(settings),
                features_sink_ddl(settings), dead_letter_sink_ddl(settings), decoded_events_view(settings),
                decoded_embeddings_view(settings), DECODED_DELETIONS_VIEW, EMBEDDING_VERSIONS_VIEW):
        t_env.execute_sql(ddl)
    # A view registered from one Table object is one node that both INSERTs read. Declared in
    # SQL, each INSERT would get its own copy of the join with different projections pushed in.
    t_env.create_temporary_view("joined_events", t_env.sql_query(JOINED_EVENTS_QUERY))
    statements = t_env.create_statement_set()
    statements.add_insert_sql(FEATURES_INSERT)
    statements.add_insert_sql(dead_letter_insert(settings))
    return statements


class RunningJob:
    """A submitted feature job: wait for it, cancel it, or stop it with a savepoint."""

    def __init__(self, settings: Settings, result: TableResult, started: float) -> None:
        self._settings = settings
        self._result = result
        self._client = result.get_job_client()
        self._started = started
        self.job_id = str(self._client.get_job_id())

    def status(self) -> str:
        """Return the job's status name, for example RUNNING or FINISHED."""
        return self._client.get_job_status().result().name

    def wait(self) -> JobRun:
        """Wait until the job ends (a bounded job ends by itself) and return its outcome."""
        job = self._settings.job
        if job.bounded and job.restore_from is not None:
            end_offsets = restored_bounded.events_end_offsets(self._settings)
            if restored_bounded.wait_until_consumed(self._settings, end_offsets, self._is_running):
                logger.info("feature job %s consumed the events to %s; draining it", self.job_id, end_offsets)
                self.stop_with_savepoint(job.work_dir / "final-savepoints", drain=True)
        self._result.wait()
        seconds = time.monotonic() - self._started
        counters = wait_for_final_counters(counters_dir(self._settings))
        logger.info("feature job %s finished in %.1f s: %s", self.job_id, seconds, counters.describe())
        return JobRun(job_id=self.job_id, seconds=seconds, counters=counters)

    def _is_running(self) -> bool:
        return self.status() in ("CREATED", "INITIALIZING", "RUNNING", "RESTARTING")

    def stop_with_savepoint(self, directory: Path, drain: bool = False) -> Path:
        """Take a savepoint in ``directory``, stop the job, and return the savepoint's folder.

        With ``drain``, the sources first send the final watermark, so every buffered event is
        processed and committed before the job stops, as at the end of a bounded run.
        """
        # NOTE: JobClient.stop_with_savepoint of apache-flink 2.2.1 calls a Java method that Flink 2
        # no longer has (it now takes a savepoint format), so the Java client is called directly.
        formats = get_gateway().jvm.org.apache.flink.core.execution.SavepointFormatType
        for attempt in range(1, _SAVEPOINT_ATTEMPTS + 1):
            future = self._client._j_job_client.stopWithSavepoint(drain, directory.resolve().as_uri(),
                                                                  formats.CANONICAL)
            try:
                location = str(future.get())
                break
            except Py4JJavaError as error:
                # A bounded source that is finishing declines the savepoint's barrier. The job keeps
                # running, and once the task has finished, a new attempt succeeds.
                if "task is closing" not in str(error) or attempt == _SAVEPOINT_ATTEMPTS:
                    raise
                logger.warning("savepoint of feature job %s declined because a task is closing; attempt %s of "
                               "%s, retrying in 1 s", self.job_id, attempt, _SAVEPOINT_ATTEMPTS)
                time.sleep(1.0)
        logger.info("feature job %s stopped with savepoint %s", self.job_id, location)
        return Path(location.removeprefix("file:"))

    def cancel(self) -> None:
        """Cancel the job; its retained checkpoints stay on disk."""
        self._client.cancel().result()
        logger.info("feature job %s cancelled", self.job_id)


def reset_plan_node_ids(t_env: TableEnvironment) -> None:
    """Number the nodes of the next SQL plan from the start, as in a new process.

    With ``table.exec.uid.generation`` ALWAYS, an operator's uid contains the number of its plan
    node, and the planner numbers nodes with one counter per process. Without a reset, a job
    planned after another one in the same process gets other uids, and its savepoints cannot be
    restored by ``run-job`` in a new process.
    """
    # NOTE: ExecNodeContext.resetIdCounter is public in flink-table-planner 2.2.1 but meant for
    # tests. The planner sits in its own class loader, so the call goes through that loader.
    gateway = get_gateway()
    loader = t_env._j_tenv.getPlanner().getClass().getClassLoader()
    context = loader.loadClass("org.apache.flink.table.planner.plan.nodes.exec.ExecNodeContext")
    reset = context.getMethod("resetIdCounter", gateway.new_array(gateway.jvm.java.lang.Class, 0))
    reset.invoke(None, gateway.new_array(gateway.jvm.java.lang.Object, 0))


def start_feature_job(settings: Settings, jars: RuntimeJars) -> RunningJob:
    """Check the cluster, then submit the job to a local embedded Flink cluster and return its handle.

    The first call in a process starts the JVM, which reads its environment then; see
    ``jobs.environment.prepare_process_environment``.
    """
    check_before_start(settings)
    prepare_process_environment(settings, jars)
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    apply_configuration(t_env.get_config(), settings, jars.flink_job_jars)
    reset_plan_node_ids(t_env)
    statements = build_job(t_env, settings)
    # Totals of an earlier run in the same work folder would add to this run's. The folder stays,
    # because a reporter of a long-running cluster process may already write into it.
    for stale in counters_dir(settings).glob("counters-*.json"):
        stale.unlink(missing_ok=True)
    logger.info("starting the feature job (parallelism %s, bounded=%s, restored from %s) on %s",
                settings.job.parallelism, settings.job.bounded, settings.job.restore_from,
                settings.kafka.bootstrap_servers)
    job = RunningJob(settings, statements.execute(), time.monotonic())
    logger.info("feature job %s submitted", job.job_id)
    return job


def run_feature_job(settings: Settings, jars: RuntimeJars) -> JobRun:
    """Run the job and wait for it.

    In bounded mode the call returns once every input is consumed to its end offsets. Otherwise
    it runs until the job is cancelled or the process is stopped.
    """
    return start_feature_job(settings, jars).wait()
