"""Tests for the shipped model file models/long_view.json."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from dreamumm.config import DEFAULT_CONFIG_PATH, REPO_ROOT, Settings, load_settings
from embeddings import (
    SAMPLE_EVENTS_PATH,
    VIDEO_FEATURES_PATH,
    ContentEmbeddingConfig,
    build_content_embeddings,
    load_events,
    load_video_table,
    model_version,
)
from ranking.long_view import LogisticLongViewModel, WatchHistory, load_long_view_model

SHIPPED_PATH = REPO_ROOT / "models" / "long_view.json"


@pytest.fixture(scope="module")
def default_settings() -> Settings:
    # An empty environment, so that DREAMUMM__ overrides of the test run do not change the defaults.
    return load_settings(DEFAULT_CONFIG_PATH, environ={})


@pytest.fixture(scope="module")
def shipped() -> LogisticLongViewModel:
    model = load_long_view_model(SHIPPED_PATH)
    assert isinstance(model, LogisticLongViewModel)
    return model


def test_shipped_model_matches_default_embedding(shipped: LogisticLongViewModel, default_settings: Settings) -> None:
    config = ContentEmbeddingConfig(dimension=default_settings.embedding.dimension,
                                    salt=default_settings.embedding.content_salt)
    assert shipped.embedding_model_version == model_version(config)
    assert shipped.embedding_dimension == default_settings.embedding.dimension


def test_shipped_model_matches_default_settings(shipped: LogisticLongViewModel, default_settings: Settings) -> None:
    data = shipped.to_dict()
    assert data["history_limit"] == default_settings.ranking.history_limit
    assert data["preference"]["alpha_per_s"] == default_settings.preference.alpha_per_s
    assert data["preference"]["threshold"] == default_settings.preference.threshold.model_dump(mode="json")
    assert default_settings.ranking.long_view_model_path == SHIPPED_PATH


def test_shipped_model_records_its_data(shipped: LogisticLongViewModel) -> None:
    record = shipped.training
    assert record["fit_on"] == "all events"
    assert record["events_file"] == SAMPLE_EVENTS_PATH.name
    assert record["events_sha256"] == hashlib.sha256(SAMPLE_EVENTS_PATH.read_bytes()).hexdigest()
    assert record["fit_events"] == 4405
    assert 0.5 < record["held_out"]["auc"] < 1.0
    assert record["held_out_auc_interval"]["low"] < record["held_out"]["auc"] < record["held_out_auc_interval"]["high"]


def test_shipped_model_file_is_small() -> None:
    assert SHIPPED_PATH.stat().st_size < 1_000_000


def test_shipped_model_predicts_on_sample(shipped: LogisticLongViewModel, default_settings: Settings) -> None:
    config = ContentEmbeddingConfig(dimension=default_settings.embedding.dimension,
                                    salt=default_settings.embedding.content_salt)
    embeddings = build_content_embeddings(load_video_table(VIDEO_FEATURES_PATH), config)
    events = load_events(SAMPLE_EVENTS_PATH)
    user = events[events["user_id"] == events["user_id"].iloc[0]].sort_values("time_ms")
    watched, candidates = user.iloc[:-5], user.iloc[-5:]
    history = WatchHistory(
        video_ids=tuple(str(video) for video in watched["video_id"]),
        vectors=np.stack([embeddings[int(video)] for video in watched["video_id"]]),
        play_time_ms=watched["play_time_ms"].to_numpy(dtype=np.float64),
        duration_ms=watched["duration_ms"].to_numpy(dtype=np.float64),
        time_ms=watched["time_ms"].to_numpy(dtype=np.int64),
    )
    ids = [str(video) for video in candidates["video_id"]]
    vectors = np.stack([embeddings[int(video)] for video in candidates["video_id"]])

    probabilities = shipped.predict(history, ids, vectors)

    assert probabilities.shape == (5,)
    assert ((probabilities > 0.0) & (probabilities < 1.0)).all()
