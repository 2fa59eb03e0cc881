"""Small synthetic KuaiRand-format tables and settings for the long-view model tests."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dreamumm.config import EmbeddingSettings, RankingSettings, Settings

VIDEO_COUNT = 40
USER_COUNT = 12
EVENTS_PER_USER = 25
START_MS = 1_650_000_000_000


def make_videos(count: int = VIDEO_COUNT, seed: int = 11) -> pd.DataFrame:
    """Return a video table with the columns the content embedding reads. Every 10th video is an image post."""
    generator = np.random.default_rng(seed)
    durations = generator.integers(5_000, 120_000, count).astype(float)
    durations[::10] = math.nan
    return pd.DataFrame({
        "video_id": np.arange(count),
        "video_type": "NORMAL",
        "upload_type": "Web",
        "video_duration": durations,
        "server_width": 720.0,
        "server_height": 1280.0,
        "music_type": 9.0,
        "tag": [str(generator.integers(1, 6)) for _ in range(count)],
    })


def make_events(videos: pd.DataFrame, seed: int = 5) -> pd.DataFrame:
    """Return events of users with different engagement, in KuaiRand order (by user, then time)."""
    generator = np.random.default_rng(seed)
    rows = []
    for user in range(USER_COUNT):
        engagement = generator.uniform(0.1, 1.2)
        times = np.sort(START_MS + generator.integers(0, 10 * 86_400_000, EVENTS_PER_USER))
        for time_ms in times:
            video = int(generator.integers(0, len(videos)))
            duration = videos.loc[video, "video_duration"]
            duration_ms = 0 if math.isnan(duration) else int(duration)
            threshold = 18_000 if duration_ms == 0 else min(duration_ms, 18_000)
            play_time_ms = int(generator.exponential(engagement * 20_000))
            rows.append({
                "user_id": user,
                "video_id": video,
                "time_ms": int(time_ms),
                "play_time_ms": play_time_ms,
                "duration_ms": duration_ms,
                "long_view": int(play_time_ms >= threshold),
            })
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def videos() -> pd.DataFrame:
    return make_videos()


@pytest.fixture(scope="session")
def events(videos: pd.DataFrame) -> pd.DataFrame:
    return make_events(videos)


@pytest.fixture(scope="session")
def small_settings() -> Settings:
    """Default settings with 8-d embeddings and a history limit of 6, so truncation happens."""
    return Settings(embedding=EmbeddingSettings(dimension=8), ranking=RankingSettings(history_limit=6))
