"""Kafka source and sink tables of the job, declared in Flink SQL.

Sources read raw record bytes with their topic, partition, offset and Kafka timestamp,
because dead-letter records must carry where a record came from. Decoding happens in
Python (``jobs.udfs``), but each source's time attribute comes from a small Java function
that reads one field of the Avro value: the event's ``event_time_ms`` for watch events, and
``valid_from_ms`` for embedding versions. The watermarks trail those times by
``job.event_time_disorder_ms``, and a partition without records for ``job.idle_timeout_ms`` is
marked idle so that it does not hold them back.

With ``kafka.delivery_guarantee`` exactly-once the sinks write in Kafka transactions that
commit when a checkpoint completes.
"""

from __future__ import annotations

from dreamumm.config import Settings
from schemas import VIDEO_EMBEDDING, AvroCodec


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _options(options: dict[str, str]) -> str:
    return ",\n  ".join(f"{_quote(name)} = {_quote(value)}" for name, value in options.items())


_MAX_INTERVAL_LITERAL_MS = 100 * 86_400_000 - 1  # 99 days 23:59:59.999, the largest DAY(2) TO SECOND(3)


def sql_interval(milliseconds: int) -> str:
    """Return a SQL interval literal of ``milliseconds``, in day-to-second form.

    A day field has at most two digits (99 days), so a longer interval is a sum of literals.
    """
    parts = []
    remaining = milliseconds
    while True:
        chunk = min(remaining, _MAX_INTERVAL_LITERAL_MS)
        days, rest = divmod(chunk, 86_400_000)
        hours, rest = divmod(rest, 3_600_000)
        minutes, rest = divmod(rest, 60_000)
        seconds, millis = divmod(rest, 1_000)
        parts.append(f"INTERVAL '{days} {hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}' DAY TO SECOND(3)")
        remaining -= chunk
        if remaining <= 0:
            break
    return parts[0] if len(parts) == 1 else "(" + " + ".join(parts) + ")"


# Columns of both source tables: the raw record and where it came from, with its append time.
_SOURCE_COLUMNS = """  record_key BYTES,
  record_value BYTES,
  `topic` STRING METADATA VIRTUAL,
  `partition` INT METADATA VIRTUAL,
  `offset` BIGINT METADATA VIRTUAL,
  append_time TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,"""


def _offsets(offsets: dict[int, int]) -> str:
    return ";".join(f"partition:{partition},offset:{offset}" for partition, offset in sorted(offsets.items()))


def _source_options(topic: str, group_id: str, startup_mode: str, settings: Settings) -> dict[str, str]:
    options = {
        "connector": "kafka",
        "topic": topic,
        "properties.bootstrap.servers": settings.kafka.bootstrap_servers,
        "properties.group.id": group_id,
        "properties.isolation.level": "read_committed",
        "properties.auto.offset.reset": "earliest",
        "scan.startup.mode": startup_mode,
        "key.format": "raw",
        "key.fields": "record_key",
        "value.format": "raw",
        "value.fields-include": "EXCEPT_KEY",
    }
    if settings.job.bounded:
        options["scan.bounded.mode"] = "latest-offset"
    return options


def events_source_ddl(settings: Settings) -> str:
    """Return the DDL of ``events_source``, whose time attribute is the event's own time.

    ``watch_event_time`` returns time 0 for a record it cannot read, and for an event time
    more than ``job.max_event_time_ahead_ms`` after the record's Kafka timestamp, so that such a
    record never moves the watermark. The decoder and ``jobs.feature_job.decoded_events_view``
    dead-letter them.
    """
    kafka, job = settings.kafka, settings.job
    options = _source_options(kafka.events_topic, f"{kafka.consumer_group}-events", job.events_startup_mode,
                              settings)
    if job.events_startup_mode == "timestamp":
        options["scan.startup.timestamp-millis"] = str(job.events_start_timestamp_ms)
    elif job.events_startup_mode == "specific-offsets":
        options["scan.startup.specific-offsets"] = _offsets(job.events_start_offsets or {})
    if job.bounded and job.events_stop_offsets is not None:
        options["scan.bounded.mode"] = "specific-offsets"
        options["scan.bounded.specific-offsets"] = _offsets(job.events_stop_offsets)
    return f"""CREATE TEMPORARY TABLE events_source (
{_SOURCE_COLUMNS}
  event_time AS watch_event_time(record_value, append_time, CAST({job.max_event_time_ahead_ms} AS BIGINT)),
  WATERMARK FOR event_time AS event_time - {sql_interval(job.event_time_disorder_ms)}
) WITH (
  {_options(options)}
)"""


def embeddings_source_ddl(settings: Settings) -> str:
    """Return the DDL of ``embeddings_source``, read from the start of the compacted topic.

    Its time attribute is each version's ``valid_from_ms`` (0 when null), so the temporal join
    finds, for an event at time t, the version of its video with the largest start at or before t.
    """
    kafka, job = settings.kafka, settings.job
    options = _source_options(kafka.embeddings_topic, f"{kafka.consumer_group}-embeddings", "earliest-offset",
                              settings)
    header = AvroCodec.for_schema(VIDEO_EMBEDDING).header.hex()
    return f"""CREATE TEMPORARY TABLE embeddings_source (
{_SOURCE_COLUMNS}
  valid_from AS embedding_valid_from(record_value, X'{header}'),
  WATERMARK FOR valid_from AS valid_from - {sql_interval(job.event_time_disorder_ms)}
) WITH (
  {_options(options)}
)"""


def deletions_source_ddl(settings: Settings) -> str:
    """Return the DDL of ``deletions_source``, the control topic of user deletions, read from the start."""
    kafka = settings.kafka
    options = _source_options(kafka.deletions_topic, f"{kafka.consumer_group}-deletions", "earliest-offset",
                              settings)
    return f"""CREATE TEMPORARY TABLE deletions_source (
{_SOURCE_COLUMNS.rstrip(",")}
) WITH (
  {_options(options)}
)"""


def _sink_options(topic: str, name: str, settings: Settings) -> dict[str, str]:
    job = settings.job
    options = {
        "topic": topic,
        "properties.bootstrap.servers": settings.kafka.bootstrap_servers,
        "sink.delivery-guarantee": job.delivery_guarantee,
    }
    if job.delivery_guarantee == "exactly-once":
        # Transactional ids start with this prefix; after a crash, the restarted job aborts the
        # transactions that the prefix's previous owner left open.
        options["sink.transactional-id-prefix"] = f"{settings.kafka.consumer_group}-{name}"
        options["properties.transaction.timeout.ms"] = str(job.transaction_timeout_ms)
    return options


def features_sink_ddl(settings: Settings) -> str:
    """Return the DDL of ``features_sink``: an upsert table keyed by the UTF-8 user id.

    Updates become records keyed by user id, partitioned by Kafka's default partitioner on the
    key, so every record of one user lands in one partition and compaction keeps the newest.
    """
    options = {
        "connector": "upsert-kafka",
        **_sink_options(settings.kafka.features_topic, "features", settings),
        "key.format": "raw",
        "value.format": "raw",
        "value.fields-include": "EXCEPT_KEY",
    }
    return f"""CREATE TEMPORARY TABLE features_sink (
  user_id STRING,
  record_value BYTES,
  PRIMARY KEY (user_id) NOT ENFORCED
) WITH (
  {_options(options)}
)"""


def dead_letter_sink_ddl(settings: Settings) -> str:
    """Return the DDL of ``dead_letter_sink``, an append-only table of key and value bytes."""
    options = {
        "connector": "kafka",
        **_sink_options(settings.kafka.dead_letter_topic, "dead-letters", settings),
        "key.format": "raw",
        "key.fields": "record_key",
        "value.format": "raw",
        "value.fields-include": "EXCEPT_KEY",
        "sink.partitioner": "default",
    }
    return f"""CREATE TEMPORARY TABLE dead_letter_sink (
  record_key BYTES,
  record_value BYTES
) WITH (
  {_options(options)}
)"""
