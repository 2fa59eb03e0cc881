"""Entry point of `dreamumm train-long-view`: read the files, train, save the model, return the report."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from dreamumm.config import Settings
from embeddings import load_events, load_video_table
from ranking.long_view.report import TrainingReport
from ranking.long_view.training import DEFAULT_L2, train_long_view_model

__all__ = ["train_long_view"]

logger = logging.getLogger(__name__)

_READ_CHUNK_BYTES = 1 << 20


def train_long_view(
    settings: Settings,
    events_path: str | Path,
    videos_path: str | Path,
    out_path: str | Path,
    *,
    split_fraction: float = 0.75,
    l2: float = DEFAULT_L2,
) -> TrainingReport:
    """Train the logistic long-view model on an event log and write it to ``out_path``.

    The model file records the events file's name and SHA-256. Nothing is written when
    training fails.

    Raises:
        FileNotFoundError: if the events or videos file does not exist.
        ValueError: if a file lacks a column or has invalid values, or the time split leaves one
            side without both classes.
    """
    events_file = Path(events_path)
    events = load_events(events_file)
    videos = load_video_table(videos_path)
    logger.info("training the long-view model on %s events from %s and %s videos from %s", len(events), events_file,
                len(videos), videos_path)
    model, report = train_long_view_model(
        events,
        videos,
        settings,
        split_fraction=split_fraction,
        l2=l2,
        events_file=events_file.name,
        events_sha256=_sha256_of(events_file),
    )
    model.save(out_path)
    return report


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_READ_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
