"""Reading and writing long-view model files (JSON), and the error they raise."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["FORMAT_VERSION", "LongViewModelError", "read_model_file", "write_model_file"]

FORMAT_VERSION = 1
"""Version of the model file layout. A file of another version is rejected."""

TRAIN_COMMAND = "dreamumm train-long-view"
_FILE_MODE = 0o644


class LongViewModelError(Exception):
    """A long-view model file is missing, unreadable, corrupt or of an unsupported version or kind."""


def retrain_hint(path: Path) -> str:
    """Return the sentence that explains how to recreate the model file at ``path``."""
    return f"create it with `{TRAIN_COMMAND} --out {path}`"


def read_model_file(path: str | Path) -> dict[str, Any]:
    """Read a model file, check its format version and return the parsed JSON object.

    Raises:
        LongViewModelError: if the file is missing or unreadable, is not a JSON object, or its
            ``format_version`` is not ``FORMAT_VERSION``.
    """
    file_path = Path(path)
    try:
        text = file_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LongViewModelError(f"long-view model file {file_path} not found; {retrain_hint(file_path)}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise LongViewModelError(
            f"cannot read long-view model file {file_path}: {error}; {retrain_hint(file_path)}"
        ) from error
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise LongViewModelError(
            f"long-view model file {file_path} is not valid JSON ({error}); {retrain_hint(file_path)}"
        ) from error
    if not isinstance(data, dict):
        raise LongViewModelError(
            f"long-view model file {file_path} must contain a JSON object, got {type(data).__name__}; "
            f"{retrain_hint(file_path)}"
        )
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise LongViewModelError(
            f"long-view model file {file_path} has format_version {version!r}, but this code reads version "
            f"{FORMAT_VERSION}; {retrain_hint(file_path)}"
        )
    return data


def write_model_file(path: str | Path, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` as JSON, replacing the file only once the new one is complete.

    Raises:
        ValueError: if the payload contains NaN or infinity, which JSON cannot store.
    """
    file_path = Path(path)
    text = json.dumps(payload, allow_nan=False, separators=(",", ":"))
    file_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{file_path.name}.", dir=file_path.parent)
    try:
        # mkstemp creates the file readable by its owner only, but services of other users read models.
        os.fchmod(descriptor, _FILE_MODE)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.write("\n")
        os.replace(temporary, file_path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
