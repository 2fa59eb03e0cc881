"""Finding the retained checkpoints of earlier runs, to restore a job from the newest one."""

from __future__ import annotations

from pathlib import Path

from dreamumm.config import Settings

METADATA_FILE = "_metadata"


def checkpoints_root(settings: Settings) -> Path:
    """Return the folder under which Flink writes ``<job id>/chk-<n>/`` checkpoint folders."""
    return settings.job.work_dir.resolve() / "checkpoints"


def latest_checkpoint(root: Path) -> Path | None:
    """Return the most recently completed checkpoint folder under ``root``, or None.

    A checkpoint is complete once Flink has written its ``_metadata`` file, which it does last,
    so a folder of a checkpoint that a crash interrupted is skipped.
    """
    completed = [metadata.parent for metadata in root.glob(f"*/chk-*/{METADATA_FILE}")]
    if not completed:
        return None
    return max(completed, key=lambda folder: (folder / METADATA_FILE).stat().st_mtime_ns)
