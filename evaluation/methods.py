"""Scores of the compared methods for one window: per event, and per candidate of a request.

Every method gives two arrays. ``event_scores`` scores each of ``window.event_rows`` with what
was known just before that event, or is None for a method that needs a request's candidate set.
``request_scores`` scores each of ``window.candidate_rows`` with what was known at the window's
start. A method without a user vector for a query scores it 0, and the count of such queries is
reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from evaluation.replay import Replay, UserStates
from evaluation.windows import Window
from ranking.long_view.video_stats import exposures_before

__all__ = [
    "MethodScores",
    "interest_scores",
    "interest_scores_of_sums",
    "last_watched_scores",
    "popularity_scores",
    "random_scores",
]


@dataclass(frozen=True)
class MethodScores:
    """Scores of one method in one window."""

    event_scores: NDArray[np.float64] | None
    """None when the method cannot score one event alone, so its per-event metrics are undefined."""
    request_scores: NDArray[np.float64]
    events_without_vector: int = 0
    """Events scored 0 because the method had no user vector for them."""
    candidates_without_vector: int = 0
    """Candidates scored 0 because the method had no user vector for their request."""


def interest_scores(replay: Replay, window: Window, weights: NDArray[np.float64],
                    half_life_ms: float | None) -> MethodScores:
    """Score with ``<x_i, mu>``, where ``mu`` is the user's normalised weighted sum of watched videos.

    DreamUMM passes the preference weights; the unweighted mean of the history passes ones.
    """
    return interest_scores_of_sums(replay, window, replay.running_sums(weights, half_life_ms))


def interest_scores_of_sums(replay: Replay, window: Window, sums: NDArray[np.float64]) -> MethodScores:
    """Score like ``interest_scores``, from running sums already computed by ``Replay.running_sums``."""
    events = replay.events
    before = replay.states_before_events(sums, window.event_rows)
    at_start = replay.states_at(sums, window.start_ms)
    return MethodScores(
        event_scores=_dot_rows(events.vectors[window.event_rows], before.vectors),
        request_scores=_request_dot(events.vectors, window, at_start),
        events_without_vector=int((~before.defined).sum()),
        candidates_without_vector=int((~at_start.defined[window.candidate_users]).sum()),
    )


def last_watched_scores(replay: Replay, window: Window) -> MethodScores:
    """Score with the cosine between the candidate and the user's most recently watched video."""
    events = replay.events
    previous = replay.previous_rows(window.event_rows)
    last_at_start = replay.last_rows_before(window.start_ms)
    # Windows contain only users with an earlier event, so every index below is a real row.
    last_of_candidate = last_at_start[window.candidate_users]
    return MethodScores(
        event_scores=_dot_rows(events.vectors[window.event_rows], events.vectors[previous]),
        request_scores=_dot_rows(events.vectors[window.candidate_rows], events.vectors[last_of_candidate]),
    )


def popularity_scores(replay: Replay, window: Window, prior_strength: float) -> MethodScores:
    """Score with the video's smoothed long-view rate over all users' earlier events.

    The rate is ``(long views + m * p) / (exposures + m)``, with ``m = prior_strength`` and ``p``
    the long-view rate of all events before the window, so an unseen video scores ``p``. The
    log's exposures are random, so the rate is not biased by an earlier recommender.
    """
    events = replay.events
    exposures, long_views = exposures_before(events.video_ids, events.time_ms, events.labels)
    before_start = events.time_ms < window.start_ms
    prior = float(events.labels[before_start].mean()) if before_start.any() else 0.0

    def rate(views: NDArray[np.float64], exposed: NDArray[np.float64]) -> NDArray[np.float64]:
        return (views + prior_strength * prior) / (exposed + prior_strength)

    candidate_videos = events.video_ids[window.candidate_rows]
    exposures_at_start = _count_per_video(events.video_ids[before_start], candidate_videos)
    viewed_at_start = _count_per_video(events.video_ids[before_start & (events.labels == 1)], candidate_videos)
    return MethodScores(
        event_scores=rate(long_views[window.event_rows], exposures[window.event_rows]),
        request_scores=rate(viewed_at_start, exposures_at_start),
    )


def random_scores(window: Window) -> MethodScores:
    """Score every event and candidate 0, which the metrics turn into the expectation of a random order.

    Every metric treats tied candidates as shown in a uniformly random order, so equal scores give
    exactly the expected metrics of random ranking, with no noise from one random draw: AUC 0.5,
    HitRate@K ``min(K, n) / n`` for n candidates, and so on.
    """
    return MethodScores(
        event_scores=np.zeros(len(window.event_rows)),
        request_scores=np.zeros(len(window.candidate_rows)),
    )


def _dot_rows(left: NDArray[np.float64], right: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.einsum("ij,ij->i", left, right)


def _request_dot(vectors: NDArray[np.float64], window: Window, states: UserStates) -> NDArray[np.float64]:
    users = window.candidate_users
    return _dot_rows(vectors[window.candidate_rows], states.vectors[users])


def _count_per_video(seen: NDArray[np.int64], videos: NDArray[np.int64]) -> NDArray[np.float64]:
    counts = pd.Series(seen).value_counts()
    return counts.reindex(videos, fill_value=0).to_numpy(dtype=np.float64)
