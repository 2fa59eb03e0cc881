"""Tests for loading and validating the video feature table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from embeddings.sample_data import VIDEO_FEATURES_PATH
from embeddings.video_table import VIDEO_TABLE_COLUMNS, load_video_table

HEADER = "video_id,video_type,upload_type,video_duration,server_width,server_height,music_type,tag\n"


def write_csv(directory: Path, text: str) -> Path:
    path = directory / "videos.csv"
    path.write_text(text)
    return path


def test_loads_shipped_table() -> None:
    videos = load_video_table(VIDEO_FEATURES_PATH)

    assert len(videos) == 7583
    assert videos["video_id"].dtype == "int64"
    assert videos["video_id"].is_unique
    assert set(VIDEO_TABLE_COLUMNS) <= set(videos.columns)
    assert int(videos["video_duration"].isna().sum()) == 239
    assert int(videos["music_type"].isna().sum()) == 203
    assert int(videos["tag"].isna().sum()) == 96


def test_tags_stay_text(tmp_path: Path) -> None:
    path = write_csv(tmp_path, HEADER + "1,NORMAL,Web,1000,720,1280,9,39\n2,AD,Web,,720,1280,,\n")

    videos = load_video_table(path)

    assert videos.loc[0, "tag"] == "39"
    assert pd.isna(videos.loc[1, "tag"])
    assert pd.isna(videos.loc[1, "video_duration"])


def test_missing_column_named_with_file(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "video_id,video_type\n1,NORMAL\n")

    with pytest.raises(ValueError, match=r"videos\.csv is missing column\(s\) \['upload_type'") as error:
        load_video_table(path)

    assert "'tag'" in str(error.value)


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="table file not found: .*absent.csv"):
        load_video_table(tmp_path / "absent.csv")


def test_duplicate_video_id_raises(tmp_path: Path) -> None:
    path = write_csv(tmp_path, HEADER + "7,NORMAL,Web,1000,720,1280,9,1\n7,AD,Web,1000,720,1280,9,2\n")

    with pytest.raises(ValueError, match="video_id 7 appears more than once"):
        load_video_table(path)


def test_invalid_video_id_raises(tmp_path: Path) -> None:
    path = write_csv(tmp_path, HEADER + "1,NORMAL,Web,1000,720,1280,9,1\n,AD,Web,1000,720,1280,9,2\n")

    with pytest.raises(ValueError, match="video_id must be an integer, got nan in data row 2"):
        load_video_table(path)
