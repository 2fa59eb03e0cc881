"""Tests for the shipped KuaiRand sample files and the event loader."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from embeddings.sample_data import (
    EVENT_COLUMNS,
    SAMPLE_DATA_DIR,
    SAMPLE_EVENTS_PATH,
    VIDEO_FEATURES_PATH,
    load_events,
)
from embeddings.video_table import load_video_table

EVENT_HEADER = "user_id,video_id,time_ms,play_time_ms,duration_ms,long_view\n"


def test_shipped_files_match_checksums() -> None:
    lines = (SAMPLE_DATA_DIR / "SHA256SUMS").read_text().splitlines()
    checked = set()
    for line in lines:
        expected, name = line.split(maxsplit=1)
        digest = hashlib.sha256((SAMPLE_DATA_DIR / name).read_bytes()).hexdigest()
        assert digest == expected, name
        checked.add(name)

    assert checked == {
        "KuaiRand-1K/log_random_4_22_to_5_08_1k.users0-99.csv",
        "KuaiRand-Pure/video_features_basic_pure.csv",
        "LICENSE",
    }


def test_sample_paths_exist() -> None:
    assert SAMPLE_EVENTS_PATH.is_file()
    assert VIDEO_FEATURES_PATH.is_file()
    assert (SAMPLE_DATA_DIR / "README.md").is_file()


def test_loads_shipped_events() -> None:
    events = load_events()

    assert len(events) == 4405
    assert events["user_id"].nunique() == 100
    assert set(EVENT_COLUMNS) <= set(events.columns)
    assert all(events[column].dtype == "int64" for column in EVENT_COLUMNS)
    assert int((events["duration_ms"] == 0).sum()) == 141


def test_every_event_video_in_video_table() -> None:
    events = load_events(SAMPLE_EVENTS_PATH)
    videos = load_video_table(VIDEO_FEATURES_PATH)

    assert set(events["video_id"]) <= set(videos["video_id"])


def test_missing_event_column_named_with_file(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("user_id,video_id,time_ms,play_time_ms,duration_ms\n1,2,3,4,5\n")

    with pytest.raises(ValueError, match=r"events\.csv is missing column\(s\) \['long_view'\]"):
        load_events(path)


def test_missing_event_value_raises(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(EVENT_HEADER + "1,2,3,4,5,0\n1,2,,4,5,0\n")

    with pytest.raises(ValueError, match="column 'time_ms' must contain integers .* data row 2"):
        load_events(path)


def test_whole_float_values_accepted(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(EVENT_HEADER + "1,2,3,4.0,5,0\n")

    events = load_events(path)

    assert events["play_time_ms"].dtype == "int64"
    assert int(events["play_time_ms"].iloc[0]) == 4


def test_negative_play_time_raises(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(EVENT_HEADER + "1,2,3,-4,5,0\n")

    with pytest.raises(ValueError, match="'play_time_ms' must be >= 0, got -4 in data row 1"):
        load_events(path)


def test_missing_events_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="absent.csv"):
        load_events(tmp_path / "absent.csv")
