"""The methods that call the long-view model f_seq: f_seq alone and Candidate-DreamUMM.

For each window, f_seq is trained anew on the events before the window's start, with the same
code as ``dreamumm train-long-view``. The shipped model in ``models/`` was trained on the whole
sample and would see the labels it is tested on.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from dreamumm.config import Settings
from evaluation.events import EvaluationEvents
from evaluation.methods import MethodScores
from evaluation.replay import Replay
from evaluation.windows import Window
from ranking.candidate import candidate_dreamumm_vector
from ranking.long_view import LongViewModel, WatchHistory
from ranking.long_view.training import train_long_view_model

__all__ = ["candidate_dreamumm_scores", "long_view_scores", "train_before"]

logger = logging.getLogger(__name__)


def train_before(events: EvaluationEvents, start_ms: int, videos: pd.DataFrame, settings: Settings) -> LongViewModel:
    """Train f_seq on the events before ``start_ms``, refit on all of them after its own time split.

    Raises:
        ValueError: if those events cannot train the model, for example because they lack long views.
    """
    before = events.time_ms < start_ms
    table = pd.DataFrame({
        "user_id": events.user_ids[before],
        "video_id": events.video_ids[before],
        "time_ms": events.time_ms[before],
        "play_time_ms": events.play_time_ms[before].astype(np.int64),
        "duration_ms": events.duration_ms[before].astype(np.int64),
        "long_view": events.labels[before].astype(np.int64),
    })
    model, report = train_long_view_model(table, videos, settings, refit_on_all=True)
    logger.info("trained f_seq on the %s events before %s: AUC %.3f on the last quarter of them, held out",
                int(before.sum()), datetime.fromtimestamp(start_ms / 1000, tz=timezone.utc).isoformat(),
                report.test.auc)
    return model


def long_view_scores(replay: Replay, window: Window, model: LongViewModel, history_limit: int) -> MethodScores:
    """Score with f_seq's long-view probability.

    An event is scored with the user's history just before it; a request's candidates with the
    history before the window's start.
    """
    events = replay.events
    event_scores = np.empty(len(window.event_rows), dtype=np.float64)
    for position, row in enumerate(window.event_rows):
        history = _history(replay, int(events.users[row]), int(events.time_ms[row]), history_limit)
        event_scores[position] = _predict(model, history, events, np.array([row]))[0]

    request_scores = np.empty(len(window.candidate_rows), dtype=np.float64)
    for request, user in enumerate(window.request_users):
        rows = window.request_rows(request)
        history = _history(replay, int(user), window.start_ms, history_limit)
        request_scores[window.request_bounds[request]:window.request_bounds[request + 1]] = _predict(
            model, history, events, rows)
    return MethodScores(event_scores=event_scores, request_scores=request_scores)


def candidate_dreamumm_scores(replay: Replay, window: Window, model: LongViewModel,
                              history_limit: int) -> MethodScores:
    """Score with ``<x_i, mu>``, where ``mu`` is the f_seq-weighted sum of the request's own candidates.

    The method needs a request's candidate set. One event alone has none, and the window's other
    events would include later ones, so it has no per-event scores and only the ranking metrics.
    """
    events = replay.events
    request_scores = np.zeros(len(window.candidate_rows), dtype=np.float64)
    without_vector = 0
    for request, user in enumerate(window.request_users):
        rows = window.request_rows(request)
        history = _history(replay, int(user), window.start_ms, history_limit)
        mu = candidate_dreamumm_vector(_predict(model, history, events, rows), events.vectors[rows])
        if mu is None:
            without_vector += len(rows)
            continue
        request_scores[window.request_bounds[request]:window.request_bounds[request + 1]] = (
            events.vectors[rows] @ mu.astype(np.float64))
    return MethodScores(event_scores=None, request_scores=request_scores, candidates_without_vector=without_vector)


def _history(replay: Replay, user: int, time_ms: int, history_limit: int) -> WatchHistory:
    """Return the user's last ``history_limit`` events before ``time_ms``, oldest first."""
    events = replay.events
    user_rows = replay.rows_of_user(user)
    count = int(np.searchsorted(events.time_ms[user_rows], time_ms, side="left"))
    rows = user_rows[max(0, count - history_limit):count]
    return WatchHistory(
        video_ids=tuple(str(video_id) for video_id in events.video_ids[rows]),
        vectors=events.vectors[rows].astype(np.float32).reshape(len(rows), events.dimension),
        play_time_ms=events.play_time_ms[rows],
        duration_ms=events.duration_ms[rows],
        time_ms=events.time_ms[rows],
    )


def _predict(model: LongViewModel, history: WatchHistory, events: EvaluationEvents,
             rows: NDArray[np.intp]) -> NDArray[np.float64]:
    ids = [str(video_id) for video_id in events.video_ids[rows]]
    return np.asarray(model.predict(history, ids, events.vectors[rows].astype(np.float32)), dtype=np.float64)
