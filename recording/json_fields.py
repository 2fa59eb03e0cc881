"""Typed reading of manifest JSON, with errors that name the file and the field."""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

from recording.errors import ManifestError


def load_json_object(path: Path) -> "JsonObject":
    """Read ``path`` as one JSON object, raising ManifestError if it is missing or not valid JSON."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise ManifestError(f"Manifest {path} not found. Pass a recording folder or the manifest file itself.") from error
    except OSError as error:
        raise ManifestError(f"Reading manifest {path} failed: {error}") from error
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ManifestError(f"Manifest {path} is not valid JSON: {error}. Fix or replace the file.") from error
    return JsonObject(data, path, "")


def resolve_file(path: Path, default_name: str) -> Path:
    """Return ``path``, or ``path / default_name`` when ``path`` is a folder."""
    path = Path(path)
    return path / default_name if path.is_dir() else path


def read_format_version(fields: "JsonObject", supported: int) -> int:
    version = fields.integer("format_version")
    if version != supported:
        raise fields.error(
            "format_version", f"is {version}, but this version of dreamumm reads only version {supported}"
        )
    return version


def read_offset_range(fields: "JsonObject") -> tuple[int, int, int]:
    """Return (start_offset, end_offset, record_count), checking that the count fits the range."""
    start_offset = fields.integer("start_offset", minimum=0)
    end_offset = fields.integer("end_offset", minimum=start_offset)
    record_count = fields.integer("record_count", minimum=0)
    if record_count > end_offset - start_offset:
        raise fields.error(
            "record_count",
            f"is {record_count}, more than the {end_offset - start_offset} offsets from {start_offset} to {end_offset}",
        )
    return start_offset, end_offset, record_count


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` through a temporary file, so a reader never sees half a file."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)


class JsonObject:
    """One JSON object of a manifest file, with getters that check each field's type."""

    def __init__(self, data: object, source: Path, field_path: str) -> None:
        self.source = source
        self.field_path = field_path
        if not isinstance(data, dict):
            raise ManifestError(
                f"Invalid manifest {source}: {field_path or 'the top level'} must be a JSON object, "
                f"got {type(data).__name__}"
            )
        self.data: dict[str, Any] = data

    def error(self, key: str, problem: str) -> ManifestError:
        """Build the ManifestError for an invalid ``key``, naming the file and the full field path."""
        return ManifestError(f"Invalid manifest {self.source}: field {self._path(key)} {problem}")

    def integer(self, key: str, minimum: int | None = None) -> int:
        value = self._get(key)
        # JSON true and false load as bool, which is a subclass of int.
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.error(key, f"must be an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {value}")
        return value

    def number(self, key: str, minimum: float) -> float:
        value = self._get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise self.error(key, f"must be a number, got {value!r}")
        if value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {value}")
        return float(value)

    def optional_integer(self, key: str) -> int | None:
        if self._get(key) is None:
            return None
        return self.integer(key)

    def string(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str) or not value:
            raise self.error(key, f"must be a non-empty string, got {value!r}")
        return value

    def iso_datetime(self, key: str) -> str:
        """Return the field's text after checking that it is an ISO 8601 date and time."""
        value = self.string(key)
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise self.error(key, f"must be an ISO 8601 date and time, got {value!r}") from None
        return value

    def optional_string(self, key: str) -> str | None:
        if self._get(key) is None:
            return None
        return self.string(key)

    def raw_object(self, key: str) -> dict[str, Any]:
        value = self._get(key)
        if not isinstance(value, dict):
            raise self.error(key, f"must be a JSON object, got {type(value).__name__}")
        return value

    def objects(self, key: str) -> list["JsonObject"]:
        value = self._get(key)
        if not isinstance(value, list):
            raise self.error(key, f"must be a list, got {type(value).__name__}")
        return [JsonObject(item, self.source, f"{self._path(key)}[{index}]") for index, item in enumerate(value)]

    def _get(self, key: str) -> Any:
        if key not in self.data:
            raise self.error(key, "is missing")
        return self.data[key]

    def _path(self, key: str) -> str:
        return f"{self.field_path}.{key}" if self.field_path else key
