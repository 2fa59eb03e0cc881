"""Kafka source and sink tables of the job, declared in Flink SQL.

The job reads raw record bytes through the Table API because it exposes the partition and
offset of each record, which dead-letter records must carry. Decoding happens in Python.
"""

from __future__ import annotations

from dreamumm.config import Settings


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _options(options: dict[str, str]) -> str:
    return ",\n  ".join(f"{_quote(name)} = {_quote(value)}" for name, value in options.items())


def source_table_ddl(table: str, topic: str, group_id: str, startup_mode: str, settings: Settings) -> str:
    """Return the DDL of a table that reads ``topic`` as key, value, topic, partition and offset."""
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
    return f"""CREATE TEMPORARY TABLE `{table}` (
  record_key BYTES,
  record_value BYTES,
  `topic` STRING METADATA VIRTUAL,
  `partition` INT METADATA VIRTUAL,
  `offset` BIGINT METADATA VIRTUAL
) WITH (
  {_options(options)}
)"""


def sink_table_ddl(table: str, topic: str, settings: Settings) -> str:
    """Return the DDL of a table that writes key and value bytes to ``topic``.

    Records are partitioned by Kafka's default partitioner on the key, so that every record of
    one user lands in one partition and compaction keeps the newest.
    """
    options = {
        "connector": "kafka",
        "topic": topic,
        "properties.bootstrap.servers": settings.kafka.bootstrap_servers,
        "key.format": "raw",
        "key.fields": "record_key",
        "value.format": "raw",
        "value.fields-include": "EXCEPT_KEY",
        "sink.partitioner": "default",
        "sink.delivery-guarantee": "at-least-once",
    }
    return f"""CREATE TEMPORARY TABLE `{table}` (
  record_key BYTES,
  record_value BYTES
) WITH (
  {_options(options)}
)"""
