"""Errors of the record and replay commands."""

from __future__ import annotations


class RecordingError(RuntimeError):
    """Recording a topic failed: the topic, an offset or the output folder is unusable."""


class ReplayError(RuntimeError):
    """Replaying a recording failed: the target topic is unusable or records were not delivered."""


class ManifestError(ValueError):
    """A manifest file is missing, not valid JSON, or has an invalid field."""
