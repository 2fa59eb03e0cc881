"""Kafka source and sink tables of the job, declared in Flink SQL.

Sources read raw record bytes with their topic, partition, offset and append timestamp,
because dead-letter records must carry where a record came from. Decoding happens in
Python (``jobs.udfs``). Both sources use the Kafka record timestamp as their time
attribute: the embedding join matches an event with the newest embedding appended no later
than ``job.embedding_wait_ms`` after the event.
"""

from __future__ import annotations

from dreamumm.config import Settings


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _options(options: dict[str, str]) -> str:
    return ",\n  ".join(f"{_quote(name)} = {_quote(value)}" for name, value in options.items())


def _interval(milliseconds: int) -> str:
    return f"INTERVAL '{milliseconds / 1000:.3f}' SECOND"


# Columns of both source tables: the raw record and where it came from, with its append time.
_SOURCE_COLUMNS = """  record_key BYTES,
  record_value BYTES,
  `topic` STRING METADATA VIRTUAL,
  `partition` INT METADATA VIRTUAL,
  `offset` BIGINT METADATA VIRTUAL,
  append_time TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,"""


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
    """Return the DDL of ``events_source``, whose time attribute is append time plus the embedding wait."""
    kafka, job = settings.kafka, settings.job
    startup_mode = "earliest-offset" if job.bounded else job.events_startup_mode
    options = _source_options(kafka.events_topic, f"{kafka.consumer_group}-events", startup_mode, settings)
    return f"""CREATE TEMPORARY TABLE events_source (
{_SOURCE_COLUMNS}
  join_time AS append_time + {_interval(job.embedding_wait_ms)},
  WATERMARK FOR join_time AS join_time - {_interval(job.append_time_disorder_ms)}
) WITH (
  {_options(options)}
)"""


def embeddings_source_ddl(settings: Settings) -> str:
    """Return the DDL of ``embeddings_source``, always read from the start of the compacted topic."""
    kafka, job = settings.kafka, settings.job
    options = _source_options(kafka.embeddings_topic, f"{kafka.consumer_group}-embeddings", "earliest-offset",
                              settings)
    return f"""CREATE TEMPORARY TABLE embeddings_source (
{_SOURCE_COLUMNS}
  WATERMARK FOR append_time AS append_time - {_interval(job.append_time_disorder_ms)}
) WITH (
  {_options(options)}
)"""


def features_sink_ddl(settings: Settings) -> str:
    """Return the DDL of ``features_sink``: an upsert table keyed by the UTF-8 user id.

    Updates become records keyed by user id, partitioned by Kafka's default partitioner on the
    key, so every record of one user lands in one partition and compaction keeps the newest.
    """
    options = {
        "connector": "upsert-kafka",
        "topic": settings.kafka.features_topic,
        "properties.bootstrap.servers": settings.kafka.bootstrap_servers,
        "key.format": "raw",
        "value.format": "raw",
        "value.fields-include": "EXCEPT_KEY",
        "sink.delivery-guarantee": "at-least-once",
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
        "topic": settings.kafka.dead_letter_topic,
        "properties.bootstrap.servers": settings.kafka.bootstrap_servers,
        "key.format": "raw",
        "key.fields": "record_key",
        "value.format": "raw",
        "value.fields-include": "EXCEPT_KEY",
        "sink.partitioner": "default",
        "sink.delivery-guarantee": "at-least-once",
    }
    return f"""CREATE TEMPORARY TABLE dead_letter_sink (
  record_key BYTES,
  record_value BYTES
) WITH (
  {_options(options)}
)"""
