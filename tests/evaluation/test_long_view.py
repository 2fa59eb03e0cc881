"""The methods that call f_seq, on the shipped sample: no future events reach them."""

from __future__ import annotations

import numpy as np
import pytest

from dreamumm.config import Settings
from embeddings import (
    SAMPLE_EVENTS_PATH,
    VIDEO_FEATURES_PATH,
    ContentEmbeddingConfig,
    build_content_embeddings,
    load_events,
    load_video_table,
)
from evaluation.events import EvaluationEvents, prepare_events
from evaluation.long_view import _history, candidate_dreamumm_scores, long_view_scores, train_before
from evaluation.replay import Replay
from evaluation.windows import Window, split_windows
from ranking.candidate import candidate_dreamumm_vector

SETTINGS = Settings()
HISTORY_LIMIT = SETTINGS.ranking.history_limit


@pytest.fixture(scope="module")
def videos():
    return load_video_table(VIDEO_FEATURES_PATH)


def sample_events(videos, change_from_ms: int | None = None) -> EvaluationEvents:
    """Return the sample's events; from ``change_from_ms`` on, labels and watch times are inverted."""
    table = load_events(SAMPLE_EVENTS_PATH)
    if change_from_ms is not None:
        later = table["time_ms"] >= change_from_ms
        table.loc[later, "long_view"] = 1 - table.loc[later, "long_view"]
        table.loc[later, "play_time_ms"] = 60_000 - table.loc[later, "play_time_ms"].clip(upper=60_000)
    config = ContentEmbeddingConfig(dimension=SETTINGS.embedding.dimension, salt=SETTINGS.embedding.content_salt)
    return prepare_events(table, build_content_embeddings(videos, config), SETTINGS.preference.max_watch_time_ms)


@pytest.fixture(scope="module")
def sample(videos) -> tuple[Replay, Window]:
    replay = Replay(sample_events(videos))
    _, test = split_windows(replay, 0.4, 0.7)
    return replay, test


@pytest.fixture(scope="module")
def model(sample, videos):
    replay, test = sample
    return train_before(replay.events, test.start_ms, videos, SETTINGS)


def test_candidate_has_no_event_scores(sample, model) -> None:
    replay, test = sample
    scores = candidate_dreamumm_scores(replay, test, model, HISTORY_LIMIT)

    assert scores.event_scores is None
    assert scores.request_scores.shape == (len(test.candidate_rows),)


def test_candidate_scores_follow_formula(sample, model) -> None:
    replay, test = sample
    events = replay.events
    scores = candidate_dreamumm_scores(replay, test, model, HISTORY_LIMIT)

    rows = test.request_rows(0)
    user = int(test.request_users[0])
    user_rows = replay.rows_of_user(user)
    history_rows = user_rows[events.time_ms[user_rows] < test.start_ms][-HISTORY_LIMIT:]
    history = _history(replay, user, test.start_ms, HISTORY_LIMIT)
    assert list(history.video_ids) == [str(video) for video in events.video_ids[history_rows]]
    probabilities = model.predict(history, [str(video) for video in events.video_ids[rows]],
                                  events.vectors[rows].astype(np.float32))
    mu = candidate_dreamumm_vector(probabilities, events.vectors[rows])
    expected = events.vectors[rows] @ mu.astype(np.float64)
    np.testing.assert_allclose(scores.request_scores[:len(rows)], expected, rtol=1e-6)


def test_training_ignores_later_events(sample, videos) -> None:
    # Inverting every label and watch time from the test window's start must not change the model.
    replay, test = sample
    changed = Replay(sample_events(videos, change_from_ms=test.start_ms))
    original = train_before(replay.events, test.start_ms, videos, SETTINGS)
    perturbed = train_before(changed.events, test.start_ms, videos, SETTINGS)

    np.testing.assert_array_equal(original.weights, perturbed.weights)


def test_scores_ignore_later_events(sample, videos, model) -> None:
    # With the model fixed, the request scores and the scores of events before the change stay the same.
    replay, test = sample
    events = replay.events
    middle_ms = int(np.median(events.time_ms[test.event_rows]))
    changed = Replay(sample_events(videos, change_from_ms=middle_ms))

    before = long_view_scores(replay, test, model, HISTORY_LIMIT)
    after = long_view_scores(changed, test, model, HISTORY_LIMIT)
    earlier = events.time_ms[test.event_rows] <= middle_ms
    np.testing.assert_array_equal(before.request_scores, after.request_scores)
    np.testing.assert_array_equal(before.event_scores[earlier], after.event_scores[earlier])
    assert not np.array_equal(before.event_scores[~earlier], after.event_scores[~earlier])

    candidate_before = candidate_dreamumm_scores(replay, test, model, HISTORY_LIMIT)
    candidate_after = candidate_dreamumm_scores(changed, test, model, HISTORY_LIMIT)
    np.testing.assert_array_equal(candidate_before.request_scores, candidate_after.request_scores)
