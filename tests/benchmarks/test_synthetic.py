"""Tests of the SYNTHETIC event generator against the KuaiRand sample it is fitted to."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.synthetic import EVENT_COLUMNS, EventProfile, describe, fit_profile, generate_events
from embeddings.sample_data import load_events

EVENTS = 200_000
USERS = 20_000
VIDEOS = 10_000
DISORDER_MS = 2000


@pytest.fixture(scope="module")
def real_events() -> pd.DataFrame:
    return load_events()


@pytest.fixture(scope="module")
def profile(real_events: pd.DataFrame) -> EventProfile:
    return fit_profile(real_events)


@pytest.fixture(scope="module")
def synthetic(profile: EventProfile) -> pd.DataFrame:
    return generate_events(profile, EVENTS, USERS, VIDEOS, seed=7, disorder_ms=DISORDER_MS)


@pytest.fixture(scope="module")
def real_stats(real_events: pd.DataFrame) -> dict[str, float]:
    return describe(real_events)


@pytest.fixture(scope="module")
def synthetic_stats(synthetic: pd.DataFrame) -> dict[str, float]:
    return describe(synthetic)


def test_profile_fitted_to_sample(profile: EventProfile) -> None:
    assert profile.source_events == 4405
    assert profile.source_users == 100
    assert profile.source_videos == 3299
    assert 0.02 < profile.zero_duration_share < 0.045
    assert profile.popularity_exponent > 0
    assert max(profile.watch_ratio_quantiles[0]) > 1
    assert profile.window_ms > 0


def test_generate_deterministic_for_seed(profile: EventProfile) -> None:
    first = generate_events(profile, 5000, 500, 300, seed=3)
    second = generate_events(profile, 5000, 500, 300, seed=3)
    other = generate_events(profile, 5000, 500, 300, seed=4)

    pd.testing.assert_frame_equal(first, second)
    assert not first.equals(other)


def test_generate_columns_and_dtypes(synthetic: pd.DataFrame, real_events: pd.DataFrame) -> None:
    assert tuple(synthetic.columns) == EVENT_COLUMNS
    for column in EVENT_COLUMNS:
        assert synthetic[column].dtype == real_events[column].dtype == np.int64, column


def test_generate_values_in_range(synthetic: pd.DataFrame) -> None:
    assert synthetic["user_id"].between(0, USERS - 1).all()
    assert synthetic["video_id"].between(0, VIDEOS - 1).all()
    assert (synthetic["play_time_ms"] >= 0).all()
    assert (synthetic["duration_ms"] >= 0).all()


@pytest.mark.parametrize(("events", "users", "videos"), [(1, 1, 1), (10, 1000, 5), (12_345, 100, 2000)])
def test_generate_row_count(profile: EventProfile, events: int, users: int, videos: int) -> None:
    table = generate_events(profile, events, users, videos, seed=0)

    assert len(table) == events


def test_video_duration_constant(synthetic: pd.DataFrame) -> None:
    assert synthetic.groupby("video_id")["duration_ms"].nunique().max() == 1


def test_zero_duration_share_matches(synthetic_stats: dict[str, float], real_stats: dict[str, float]) -> None:
    assert synthetic_stats["zero_duration_share"] == pytest.approx(real_stats["zero_duration_share"], abs=0.015)


@pytest.mark.parametrize("statistic", ["play_time_median_ms", "duration_median_ms"])
def test_medians_match(synthetic_stats: dict[str, float], real_stats: dict[str, float], statistic: str) -> None:
    assert synthetic_stats[statistic] == pytest.approx(real_stats[statistic], rel=0.25)


def test_play_time_exceeds_duration_sometimes(synthetic: pd.DataFrame) -> None:
    positive = synthetic[synthetic["duration_ms"] > 0]

    assert (positive["play_time_ms"] > positive["duration_ms"]).any()


def test_popularity_long_tailed(synthetic_stats: dict[str, float]) -> None:
    # A uniform draw would give the top 1% of videos about 1% of the events.
    assert synthetic_stats["video_top1pct_share"] > 0.02


def test_user_activity_skewed(synthetic_stats: dict[str, float]) -> None:
    # The sample's most active 10% of users have 35% of the events. Uniform users would have ~10%.
    assert synthetic_stats["user_top10pct_share"] > 0.25


def test_disorder_present_and_bounded(synthetic_stats: dict[str, float]) -> None:
    assert synthetic_stats["out_of_order_share"] > 0
    assert synthetic_stats["max_out_of_order_ms"] <= DISORDER_MS


def test_zero_disorder_ordered(profile: EventProfile) -> None:
    table = generate_events(profile, 20_000, 2000, 1000, seed=1, disorder_ms=0)

    assert table["time_ms"].is_monotonic_increasing


def test_generate_starts_at_start_time(profile: EventProfile) -> None:
    start = 1_700_000_000_000
    table = generate_events(profile, 20_000, 2000, 1000, seed=1, start_time_ms=start)

    assert table["time_ms"].min() >= start


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"events": 0}, "events must be at least 1"),
        ({"users": 0}, "users must be at least 1"),
        ({"videos": -1}, "videos must be at least 1"),
        ({"disorder_ms": -5}, "disorder_ms must be >= 0"),
    ],
)
def test_generate_rejects_invalid_argument(profile: EventProfile, arguments: dict[str, int], message: str) -> None:
    call = {"events": 10, "users": 10, "videos": 10, "seed": 0} | arguments

    with pytest.raises(ValueError, match=message):
        generate_events(profile, **call)


def test_fit_rejects_missing_column(real_events: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="missing columns \\['play_time_ms'\\]"):
        fit_profile(real_events.drop(columns="play_time_ms"))


def test_fit_rejects_users_without_gaps(real_events: pd.DataFrame) -> None:
    one_per_user = real_events.drop_duplicates("user_id")

    with pytest.raises(ValueError, match="none of the 100 users has two or more events"):
        fit_profile(one_per_user)


def test_fit_rejects_no_zero_durations(real_events: pd.DataFrame) -> None:
    videos_only = real_events[real_events["duration_ms"] > 0]

    with pytest.raises(ValueError, match="both zero and positive duration_ms"):
        fit_profile(videos_only)
