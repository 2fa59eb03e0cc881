"""Tests for training the long-view model: histories, no peeking, train/serve parity, determinism."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dreamumm.config import Settings
from ranking.long_view import LogisticLongViewModel, load_long_view_model
from ranking.long_view.command import train_long_view
from ranking.long_view.features import FEATURE_NAMES
from ranking.long_view.training import (
    PreparedData,
    fit_prepared,
    prepare_training_data,
    split_time_at,
    train_long_view_model,
)

COUNT_COLUMNS = ("popularity_log", "video_long_view_rate")
RATE = FEATURE_NAMES.index("video_long_view_rate")
POPULARITY = FEATURE_NAMES.index("popularity_log")


@pytest.fixture(scope="module")
def prepared(events: pd.DataFrame, videos: pd.DataFrame, small_settings: Settings) -> PreparedData:
    return prepare_training_data(events, videos, small_settings)


def earlier_long_views(features: np.ndarray, prior_rate: float, prior_strength: float) -> np.ndarray:
    """Recover the long-view count of each example's video from its rate and popularity features."""
    exposures = np.expm1(features[:, POPULARITY])
    return features[:, RATE] * (exposures + prior_strength) - prior_strength * prior_rate


def test_split_time_at_fraction() -> None:
    times = np.array([50, 10, 40, 20, 30, 60, 70, 80])
    assert split_time_at(times, 0.75) == 70  # 6 of the 8 events are before 70
    assert split_time_at(times, 0.01) == 20  # at least one event on each side


def test_split_time_at_rejects_bad_fraction() -> None:
    with pytest.raises(ValueError, match=r"split_fraction must be in \(0, 1\), got 1.0"):
        split_time_at(np.arange(10), 1.0)


def test_split_puts_earlier_events_in_train(prepared: PreparedData) -> None:
    times = prepared.table.time_ms
    assert (times[prepared.is_train] < prepared.split_time_ms).all()
    assert (times[~prepared.is_train] >= prepared.split_time_ms).all()
    assert prepared.is_train.sum() == pytest.approx(0.75 * len(times), abs=1)


def test_split_without_both_classes_rejected(events: pd.DataFrame, videos: pd.DataFrame,
                                             small_settings: Settings) -> None:
    last_time = int(events["time_ms"].max())
    with pytest.raises(ValueError, match="events from the split time .* must contain both long views"):
        prepare_training_data(events, videos, small_settings, split_time_ms=last_time)


def test_histories_are_earlier_events_of_user(prepared: PreparedData, events: pd.DataFrame,
                                              small_settings: Settings) -> None:
    limit = small_settings.ranking.history_limit
    table = prepared.table
    for row in range(len(table)):
        user_events = events[(events["user_id"] == table.user_ids[row]) & (events["time_ms"] < table.time_ms[row])]
        expected = user_events.sort_values("time_ms").tail(limit)
        history = prepared.histories[row]
        assert history.video_ids == tuple(str(video) for video in expected["video_id"]), row
        assert history.play_time_ms.tolist() == expected["play_time_ms"].astype(float).tolist(), row
        assert history.time_ms is not None and (history.time_ms < table.time_ms[row]).all()


def test_features_ignore_later_events(events: pd.DataFrame, videos: pd.DataFrame, small_settings: Settings,
                                      prepared: PreparedData) -> None:
    # Change a training event in the middle: its label, play time and video.
    ordered = events.sort_values("time_ms")
    changed_index = ordered.index[len(ordered) // 2]
    changed_time = int(events.loc[changed_index, "time_ms"])
    perturbed = events.copy()
    perturbed.loc[changed_index, "long_view"] = 1 - perturbed.loc[changed_index, "long_view"]
    perturbed.loc[changed_index, "play_time_ms"] = perturbed.loc[changed_index, "play_time_ms"] + 30_000
    perturbed.loc[changed_index, "video_id"] = (perturbed.loc[changed_index, "video_id"] + 1) % len(videos)
    split_time = prepared.split_time_ms
    after = prepare_training_data(perturbed, videos, small_settings, split_time_ms=split_time)

    earlier = prepared.table.time_ms < changed_time
    assert earlier.sum() > 50
    assert np.array_equal(after.table.time_ms, prepared.table.time_ms)
    # Every column but the video long-view rate must be identical. That rate's prior is the base
    # rate of the whole training window, so only the count behind it is compared.
    for features_before, features_after, before_stats, after_stats in (
        (prepared.evaluation_features, after.evaluation_features, prepared.evaluation_statistics,
         after.evaluation_statistics),
        (prepared.full_features, after.full_features, prepared.full_statistics, after.full_statistics),
    ):
        other_columns = [column for column in range(len(FEATURE_NAMES)) if column != RATE]
        np.testing.assert_array_equal(features_after[earlier][:, other_columns],
                                      features_before[earlier][:, other_columns])
        np.testing.assert_allclose(
            earlier_long_views(features_after[earlier], after_stats.prior_long_view_rate, after_stats.prior_strength),
            earlier_long_views(features_before[earlier], before_stats.prior_long_view_rate,
                               before_stats.prior_strength),
            atol=1e-9,
        )


def test_training_example_never_sees_own_label(prepared: PreparedData) -> None:
    # At a video's first exposure the long-view count behind its features must be 0, whatever its label.
    is_train = prepared.is_train
    for features, statistics in (
        (prepared.evaluation_features[is_train], prepared.evaluation_statistics),
        (prepared.full_features, prepared.full_statistics),
    ):
        long_views = earlier_long_views(features, statistics.prior_long_view_rate, statistics.prior_strength)
        first_exposure = np.round(np.expm1(features[:, POPULARITY])) == 0
        assert first_exposure.sum() > 10
        np.testing.assert_allclose(long_views[first_exposure], 0.0, atol=1e-9)


def test_test_examples_see_training_window_counts(prepared: PreparedData) -> None:
    is_test = ~prepared.is_train
    table = prepared.table
    window = prepared.evaluation_statistics.lookup(table.video_ids)
    np.testing.assert_allclose(np.expm1(prepared.evaluation_features[is_test, POPULARITY]),
                               window.exposures[is_test], atol=1e-9)


def test_train_serve_parity_on_test_events(prepared: PreparedData) -> None:
    model, _ = fit_prepared(prepared, refit_on_all=False)
    table = prepared.table
    for row in np.flatnonzero(~prepared.is_train):
        served = model.feature_matrix(prepared.histories[row], [table.video_ids[row]], table.vectors[row:row + 1])
        np.testing.assert_array_equal(served[0], prepared.evaluation_features[row], err_msg=f"event {row}")
        probability = model.predict(prepared.histories[row], [table.video_ids[row]], table.vectors[row:row + 1])
        assert probability[0] == model.probabilities(prepared.evaluation_features[row:row + 1])[0]


def test_train_serve_parity_of_history_features(prepared: PreparedData) -> None:
    model, _ = fit_prepared(prepared)
    table = prepared.table
    history_columns = [FEATURE_NAMES.index(name) for name in FEATURE_NAMES if name not in COUNT_COLUMNS]
    for row in range(len(table)):
        served = model.feature_matrix(prepared.histories[row], [table.video_ids[row]], table.vectors[row:row + 1])
        np.testing.assert_array_equal(served[0, history_columns], prepared.full_features[row, history_columns],
                                      err_msg=f"event {row}")


def test_batched_predict_matches_single(prepared: PreparedData) -> None:
    model, _ = fit_prepared(prepared)
    table = prepared.table
    history = prepared.histories[-1]
    batch = model.predict(history, list(table.video_ids), table.vectors)
    singles = [model.predict(history, [table.video_ids[row]], table.vectors[row:row + 1])[0]
               for row in range(len(table))]
    # A matrix product of many rows may round differently in the last bit than one row at a time.
    np.testing.assert_allclose(batch, singles, rtol=1e-12)


def test_training_is_deterministic(events: pd.DataFrame, videos: pd.DataFrame, small_settings: Settings) -> None:
    first, first_report = train_long_view_model(events, videos, small_settings)
    second, second_report = train_long_view_model(events, videos, small_settings)

    first_data, second_data = first.to_dict(), second.to_dict()
    first_data["training"].pop("created_at")
    second_data["training"].pop("created_at")
    assert first_data == second_data
    assert first_report.test_auc_interval == second_report.test_auc_interval


def test_training_report_and_record(events: pd.DataFrame, videos: pd.DataFrame, small_settings: Settings) -> None:
    model, report = train_long_view_model(events, videos, small_settings, events_file="sample.csv",
                                          events_sha256="ab" * 32)

    assert report.train.events + report.test.events == len(events)
    assert report.shipped.events == len(events)
    assert 0.0 <= report.test.auc <= 1.0
    assert report.test_auc_interval.resamples + report.test_auc_interval.skipped == 1000
    assert set(report.baseline_test_aucs) == set(report.baseline_test_user_aucs)
    text = report.to_text()
    assert "test (from split on)" in text
    assert "refit on all 300 events" in text
    record = model.training
    assert record["fit_on"] == "all events"
    assert record["events_file"] == "sample.csv"
    assert record["held_out"]["auc"] == report.test.auc
    assert record["split_time_ms"] == report.split_time_ms
    json.dumps(record, allow_nan=False)


def test_training_without_refit_returns_evaluated_model(events: pd.DataFrame, videos: pd.DataFrame,
                                                        small_settings: Settings) -> None:
    model, report = train_long_view_model(events, videos, small_settings, refit_on_all=False)

    assert model.training["fit_on"] == "events before split_time_ms"
    assert report.shipped == report.train
    assert model.video_statistics.prior_long_view_rate == pytest.approx(report.train.base_rate)


def test_training_rejects_unknown_feature(events: pd.DataFrame, videos: pd.DataFrame,
                                          small_settings: Settings) -> None:
    with pytest.raises(ValueError, match="feature_names must be a non-empty subset"):
        train_long_view_model(events, videos, small_settings, feature_names=["watch_hour"])


def test_training_rejects_missing_column(events: pd.DataFrame, videos: pd.DataFrame,
                                         small_settings: Settings) -> None:
    with pytest.raises(ValueError, match="missing column.*long_view"):
        train_long_view_model(events.drop(columns=["long_view"]), videos, small_settings)


def test_train_long_view_writes_model(tmp_path: Path, events: pd.DataFrame, videos: pd.DataFrame,
                                      small_settings: Settings) -> None:
    events_path = tmp_path / "events.csv"
    videos_path = tmp_path / "videos.csv"
    out_path = tmp_path / "models" / "long_view.json"
    events.to_csv(events_path, index=False)
    videos.to_csv(videos_path, index=False)

    report = train_long_view(small_settings, events_path, videos_path, out_path)

    model = load_long_view_model(out_path)
    assert isinstance(model, LogisticLongViewModel)
    assert model.training["events_file"] == "events.csv"
    assert model.training["events_sha256"] == hashlib.sha256(events_path.read_bytes()).hexdigest()
    assert model.training["held_out"]["auc"] == report.test.auc
    assert model.embedding_model_version == report.embedding_model_version
