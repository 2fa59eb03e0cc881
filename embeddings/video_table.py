"""Loading and column checks for the KuaiRand video feature table.

The table is ``video_features_basic_pure.csv`` from KuaiRand-Pure: one row per
video with type, upload type, duration (ms), frame size, music type and a
comma-separated list of tag ids. ``embeddings.content`` builds vectors from it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

__all__ = [
    "VIDEO_TABLE_COLUMNS",
    "check_columns",
    "load_video_table",
    "python_scalar",
    "read_csv_table",
]

logger = logging.getLogger(__name__)

VIDEO_TABLE_COLUMNS = (
    "video_id",
    "video_type",
    "upload_type",
    "video_duration",
    "server_width",
    "server_height",
    "music_type",
    "tag",
)
"""Columns that the content embedding reads. Other columns are kept but not required."""

# Text columns are read as strings, so that a tag list such as "39" stays "39" and
# is not parsed as a number. Missing values stay NaN.
_VIDEO_TABLE_DTYPES: Mapping[str, str] = {
    "video_type": "str",
    "upload_type": "str",
    "tag": "str",
}


def python_scalar(value: object) -> object:
    """Convert a numpy scalar to the Python scalar, so messages show ``nan`` and not ``np.float64(nan)``."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def check_columns(table: pd.DataFrame, required: Iterable[str], source: str) -> None:
    """Raise ValueError naming every required column that ``table`` lacks.

    ``source`` names the table in the message, usually its file path.
    """
    missing = [column for column in required if column not in table.columns]
    if missing:
        raise ValueError(
            f"{source} is missing column(s) {missing}; found columns {list(table.columns)}"
        )


def read_csv_table(
    path: str | Path, required: Iterable[str], dtype: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Read a CSV file and check that it has the ``required`` columns.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if a required column is missing.
    """
    file_path = Path(path)
    if not file_path.is_file():
        raise FileNotFoundError(f"table file not found: {file_path}")
    table = pd.read_csv(file_path, dtype=dict(dtype) if dtype else None)
    check_columns(table, required, str(file_path))
    logger.debug("read %s rows from %s", len(table), file_path)
    return table


def load_video_table(path: str | Path) -> pd.DataFrame:
    """Load the KuaiRand video feature table and validate it.

    Returns the table with ``video_id`` as int64 and the text columns as strings
    (NaN where missing).

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if a column in ``VIDEO_TABLE_COLUMNS`` is missing, or a
            ``video_id`` is missing, not an integer or repeated.
    """
    table = read_csv_table(path, VIDEO_TABLE_COLUMNS, _VIDEO_TABLE_DTYPES)

    video_ids = pd.to_numeric(table["video_id"], errors="coerce")
    invalid = video_ids.isna() | (video_ids != video_ids.round())
    if invalid.any():
        row = int(invalid.to_numpy().nonzero()[0][0])
        raise ValueError(
            f"{path}: video_id must be an integer, got {python_scalar(table['video_id'].iloc[row])!r} "
            f"in data row {row + 1}"
        )
    table["video_id"] = video_ids.astype("int64")

    duplicated = table["video_id"].duplicated()
    if duplicated.any():
        repeated = int(table.loc[duplicated, "video_id"].iloc[0])
        raise ValueError(
            f"{path}: video_id {repeated} appears more than once; "
            "the table must have one row per video"
        )
    return table
