"""The run specification that the benchmark harness hands to each baseline as a JSON file."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dreamumm.config import PreferenceSettings


class SpecError(ValueError):
    """Raised when the spec file is missing, is not JSON or has an invalid field."""


class BaselineSpec(BaseModel):
    """Where a baseline reads and writes, the job's parameters, and when it stops."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True, allow_inf_nan=False)

    bootstrap_servers: str = Field(min_length=1)
    """Comma-separated host:port list of the Kafka brokers."""
    events_topic: str = Field(min_length=1)
    """Topic of WatchEvent records, keyed by user id, read from the earliest offset."""
    embeddings_topic: str = Field(min_length=1)
    """Topic of VideoEmbedding records, read completely before the first event."""
    features_topic: str = Field(min_length=1)
    """Topic the baseline writes UserInterest records to, keyed by the UTF-8 user id."""
    dead_letter_topic: str = Field(min_length=1)
    """Topic of DeadLetter records for unusable events and embeddings."""
    dimension: int = Field(ge=2, le=4096)
    """Length of every embedding vector. An embedding of another length is dead-lettered."""
    preference: PreferenceSettings
    """Preference weight parameters, the ``preference`` section of config/dreamumm.yaml."""
    expected_events: int = Field(ge=1)
    """Records of the events topic to read before the baseline stops."""
    state_dir: Path
    """Absolute path of an absent or empty folder for the baseline's RocksDB state."""
    consumer_group: str = Field(min_length=1)
    """Consumer group id, new for every run: Quix Streams resumes from the group's committed offsets."""
    idle_timeout_s: float = Field(default=60.0, gt=0)
    """The run fails when no event arrives for this many seconds before ``expected_events`` are read."""

    @field_validator("state_dir")
    @classmethod
    def _fresh_absolute_dir(cls, state_dir: Path) -> Path:
        if not state_dir.is_absolute():
            raise ValueError(f"state_dir must be an absolute path, got {str(state_dir)!r}")
        if state_dir.exists() and (not state_dir.is_dir() or any(state_dir.iterdir())):
            raise ValueError(
                f"state_dir {state_dir} exists and is not an empty folder; pass a fresh folder, "
                "because state left by an earlier run would be added to this run's sums"
            )
        return state_dir

    @model_validator(mode="after")
    def _distinct_topics(self) -> BaselineSpec:
        topics = [self.events_topic, self.embeddings_topic, self.features_topic, self.dead_letter_topic]
        if len(set(topics)) != len(topics):
            raise ValueError(f"the four topics must be distinct, got {topics}")
        return self


def load_spec(path: Path | str) -> BaselineSpec:
    """Read and validate the spec file at ``path``, raising ``SpecError`` that names each invalid field."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise SpecError(f"spec file {path} not found") from error
    except json.JSONDecodeError as error:
        raise SpecError(f"spec file {path} is not valid JSON: {error}") from error
    if not isinstance(raw, dict):
        raise SpecError(f"spec file {path} must contain a JSON object, got {type(raw).__name__}")
    try:
        return BaselineSpec.model_validate(raw)
    except ValidationError as error:
        lines = [f"invalid spec file {path}:"]
        for item in error.errors():
            if item["loc"]:
                field = ".".join(str(part) for part in item["loc"])
                lines.append(f"  {field} = {item.get('input')!r}: {item['msg']}")
            else:
                lines.append(f"  {item['msg']}")
        raise SpecError("\n".join(lines)) from error
