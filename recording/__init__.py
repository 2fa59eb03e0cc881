"""Recording a Kafka topic into Avro files, and replaying a recording into a topic.

``record_topic`` reads a topic's committed records into one Avro object container file per
partition plus a ``manifest.json``. ``replay_recording`` produces them back with their keys,
values, headers, timestamps and per-partition order, and returns a ``ReplayResult`` whose
``end_offsets()`` tell a bounded job where the replayed records end.
"""

from recording.errors import ManifestError, RecordingError, ReplayError
from recording.manifest import MANIFEST_FILE, Manifest, PartitionRecording
from recording.pacing import parse_speed
from recording.positions import StartPosition, StopPosition, parse_start, parse_stop
from recording.record_file import RECORD_SCHEMA, RecordedRecord, read_record_file
from recording.recorder import record_topic
from recording.replay_manifest import REPLAY_MANIFEST_FILE, ReplayedPartition, ReplayResult
from recording.replayer import PARTITIONING_CHOICES, replay_recording
from recording.value_schemas import ValueSchemaCount

__all__ = [
    "MANIFEST_FILE",
    "PARTITIONING_CHOICES",
    "RECORD_SCHEMA",
    "REPLAY_MANIFEST_FILE",
    "Manifest",
    "ManifestError",
    "PartitionRecording",
    "RecordedRecord",
    "RecordingError",
    "ReplayError",
    "ReplayResult",
    "ReplayedPartition",
    "StartPosition",
    "StopPosition",
    "ValueSchemaCount",
    "parse_speed",
    "parse_start",
    "parse_stop",
    "read_record_file",
    "record_topic",
    "replay_recording",
]
