"""Paths to the KuaiRand sample shipped in ``data/kuairand/`` and the event loader.

The paths are resolved from this file's location, so they point into the source
tree of a clone or an editable install (``pip install -e .``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from embeddings.video_table import python_scalar, read_csv_table

__all__ = [
    "EVENT_COLUMNS",
    "REPO_ROOT",
    "SAMPLE_DATA_DIR",
    "SAMPLE_EVENTS_PATH",
    "VIDEO_FEATURES_PATH",
    "load_events",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DATA_DIR = REPO_ROOT / "data" / "kuairand"
# NOTE: a wheel built from pyproject.toml does not include data/, so in a
# non-editable install these paths do not exist and load_events raises
# FileNotFoundError. Pass an explicit path there.
SAMPLE_EVENTS_PATH = SAMPLE_DATA_DIR / "KuaiRand-1K" / "log_random_4_22_to_5_08_1k.users0-99.csv"
"""Watch events of KuaiRand-1K users 0-99 (4,405 rows)."""
VIDEO_FEATURES_PATH = SAMPLE_DATA_DIR / "KuaiRand-Pure" / "video_features_basic_pure.csv"
"""KuaiRand-Pure video feature table (7,583 videos)."""

EVENT_COLUMNS = ("user_id", "video_id", "time_ms", "play_time_ms", "duration_ms", "long_view")
"""Event columns that must be present, each as non-missing integers."""

_NON_NEGATIVE_COLUMNS = ("play_time_ms", "duration_ms")


def load_events(path: str | Path = SAMPLE_EVENTS_PATH) -> pd.DataFrame:
    """Load a KuaiRand event log and validate the columns the pipeline reads.

    ``time_ms`` is the event time in epoch ms, ``play_time_ms`` the watch time and
    ``duration_ms`` the video length (0 for image posts). Other columns such as
    ``is_click`` are kept as read. Row order is kept, which in KuaiRand is by user
    and then by time, not by time across users.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if a column in ``EVENT_COLUMNS`` is missing, has a missing or
            non-integer value, or ``play_time_ms`` or ``duration_ms`` is negative.
            The message names the file, the column and the first bad data row.
    """
    events = read_csv_table(path, EVENT_COLUMNS)

    for column in EVENT_COLUMNS:
        if pd.api.types.is_integer_dtype(events[column]):
            continue
        # A float column is accepted when every value is a whole number.
        values = pd.to_numeric(events[column], errors="coerce")
        bad = (values.isna() | (values != values.round())).to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{path}: column {column!r} must contain integers with no missing values, "
                f"got {python_scalar(events[column].iloc[row])!r} in data row {row + 1}"
            )
        events[column] = values.astype("int64")

    for column in _NON_NEGATIVE_COLUMNS:
        negative = events[column].to_numpy() < 0
        if negative.any():
            row = int(np.flatnonzero(negative)[0])
            raise ValueError(
                f"{path}: column {column!r} must be >= 0, got {int(events[column].iloc[row])} "
                f"in data row {row + 1}"
            )
    return events
