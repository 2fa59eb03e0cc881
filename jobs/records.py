"""Flink type information of the records passed between the job's operators."""

from __future__ import annotations

from pyflink.common import Types

BYTES = Types.PRIMITIVE_ARRAY(Types.BYTE())

KAFKA_INPUT = Types.ROW_NAMED(
    ["key", "value", "topic", "partition", "offset"],
    [BYTES, BYTES, Types.STRING(), Types.INT(), Types.LONG()],
)
"""A Kafka record as the source table reads it."""

WEIGHTED_EVENT = Types.ROW_NAMED(
    ["user_id", "video_id", "weight", "event_time_ms", "topic", "partition", "offset", "key", "value"],
    [Types.STRING(), Types.STRING(), Types.DOUBLE(), Types.LONG(), Types.STRING(), Types.INT(), Types.LONG(),
     BYTES, BYTES],
)
"""A valid watch event with its preference weight, and where it came from for dead-lettering."""

EMBEDDING = Types.ROW_NAMED(["video_id", "vector", "model_version"], [Types.STRING(), BYTES, Types.STRING()])
"""A valid video embedding; ``vector`` is little-endian float32."""

CONTRIBUTION = Types.ROW_NAMED(
    ["user_id", "weight", "vector", "event_time_ms", "model_version"],
    [Types.STRING(), Types.DOUBLE(), BYTES, Types.LONG(), Types.STRING()],
)
"""One event's contribution a_j * x_j to a user's vector, before the multiplication."""

KAFKA_OUTPUT = Types.ROW_NAMED(["key", "value"], [BYTES, BYTES])
"""A record for a sink table: key and value bytes."""
