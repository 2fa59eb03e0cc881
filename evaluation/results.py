"""Metrics of one method in one window, kept per user so that they can be bootstrapped by user.

A window's users are those with a scored event or a ranking request. Per-user values are NaN
where a metric is undefined for the user. The AUC is undefined when the user's scored events are
all of one class, hit rate and NDCG when no candidate was long-viewed, and the ranking and
diversity metrics when the user has no request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from evaluation.methods import MethodScores
from evaluation.metrics import exposed_clusters, hit_rate_at_k, ndcg_at_k, ranked_expectation, surprise_share
from evaluation.replay import Replay
from evaluation.windows import Window
from ranking.long_view.metrics import roc_auc

__all__ = ["METRICS", "MethodResult", "WindowData", "evaluate_method", "metric_value"]

METRICS = ("auc", "user_auc", "hit_rate", "ndcg", "exposed_clusters", "surprise_share")
"""Metric names, in report order."""

_PER_USER_METRICS = ("user_auc", "hit_rate", "ndcg", "exposed_clusters", "surprise_share")


@dataclass(frozen=True)
class WindowData:
    """Labels, users and clusters of one window, shared by every method's metrics."""

    window: Window
    k: int
    users: NDArray[np.intp]
    """The window's users, ascending; per-user arrays follow this order."""
    event_labels: NDArray[np.int8]
    event_user_positions: NDArray[np.intp]
    """Position in ``users`` of each scored event's user."""
    events_of_user: tuple[NDArray[np.intp], ...]
    """Positions in the scored events of each user's events."""
    candidate_relevance: NDArray[np.bool_]
    candidate_clusters: NDArray[np.intp]
    request_user_positions: NDArray[np.intp]
    """Position in ``users`` of each request's user."""
    history_clusters: tuple[NDArray[np.intp], ...]
    """Clusters of the videos each request's user watched before the window's start."""
    candidate_surprising: NDArray[np.bool_]
    """Candidates that were long-viewed and whose cluster is not among their user's history clusters."""

    @classmethod
    def build(cls, replay: Replay, window: Window, clusters_of_rows: NDArray[np.intp], k: int) -> WindowData:
        """Collect the window's shared data; ``clusters_of_rows`` has each event's video cluster."""
        events = replay.events
        event_users = events.users[window.event_rows]
        users = np.union1d(event_users, window.request_users).astype(np.intp)
        event_user_positions = np.searchsorted(users, event_users)
        order = np.argsort(event_user_positions, kind="stable")
        bounds = np.searchsorted(event_user_positions[order], np.arange(len(users) + 1))
        events_of_user = tuple(order[bounds[i]:bounds[i + 1]] for i in range(len(users)))

        candidate_relevance = events.labels[window.candidate_rows] == 1
        candidate_clusters = clusters_of_rows[window.candidate_rows]
        history_clusters = []
        candidate_surprising = np.zeros(len(window.candidate_rows), dtype=bool)
        for request, user in enumerate(window.request_users):
            user_rows = replay.rows_of_user(int(user))
            earlier = user_rows[events.time_ms[user_rows] < window.start_ms]
            history_clusters.append(np.unique(clusters_of_rows[earlier]))
            span = slice(window.request_bounds[request], window.request_bounds[request + 1])
            far = ~np.isin(candidate_clusters[span], history_clusters[-1])
            candidate_surprising[span] = candidate_relevance[span] & far
        return cls(
            window=window,
            k=k,
            users=users,
            event_labels=events.labels[window.event_rows],
            event_user_positions=event_user_positions.astype(np.intp),
            events_of_user=events_of_user,
            candidate_relevance=candidate_relevance,
            candidate_clusters=candidate_clusters,
            request_user_positions=np.searchsorted(users, window.request_users).astype(np.intp),
            history_clusters=tuple(history_clusters),
            candidate_surprising=candidate_surprising,
        )


@dataclass(frozen=True)
class MethodResult:
    """One method's scores and per-user metrics in one window."""

    name: str
    event_scores: NDArray[np.float64] | None
    """None for a method without per-event scores, whose AUCs are then NaN."""
    per_user: Mapping[str, NDArray[np.float64]]
    """Per-user values of each metric but the pooled AUC, NaN where undefined."""
    user_weights: NDArray[np.float64]
    """Scored events of each user, which weigh the per-user AUCs."""
    events_without_vector: int
    candidates_without_vector: int


def evaluate_method(data: WindowData, name: str, scores: MethodScores) -> MethodResult:
    """Compute the per-user metrics of one method's scores, each its expectation over orders of tied candidates."""
    user_count = len(data.users)
    per_user = {metric: np.full(user_count, np.nan) for metric in _PER_USER_METRICS}
    weights = np.zeros(user_count, dtype=np.float64)

    for position, rows in enumerate(data.events_of_user):
        labels = data.event_labels[rows]
        weights[position] = len(rows)
        if scores.event_scores is not None and len(rows) and labels.min() != labels.max():
            per_user["user_auc"][position] = roc_auc(labels, scores.event_scores[rows])

    window = data.window
    for request, position in enumerate(data.request_user_positions):
        span = slice(window.request_bounds[request], window.request_bounds[request + 1])
        request_scores = scores.request_scores[span]
        relevant = data.candidate_relevance[span]
        # One sort of the scores gives the expected relevance and surprise at every rank.
        expected = ranked_expectation(request_scores, np.column_stack((relevant, data.candidate_surprising[span])))
        per_user["exposed_clusters"][position] = exposed_clusters(request_scores, data.candidate_clusters[span],
                                                                  data.k)
        per_user["surprise_share"][position] = surprise_share(expected[:, 1], data.k)
        if relevant.any():
            per_user["hit_rate"][position] = hit_rate_at_k(expected[:, 0], data.k)
            per_user["ndcg"][position] = ndcg_at_k(expected[:, 0], data.k)

    return MethodResult(name=name, event_scores=scores.event_scores, per_user=per_user, user_weights=weights,
                        events_without_vector=scores.events_without_vector,
                        candidates_without_vector=scores.candidates_without_vector)


def metric_value(data: WindowData, result: MethodResult, metric: str,
                 chosen_users: NDArray[np.intp] | None = None) -> float:
    """Return one metric over the chosen user positions (with repeats, as a bootstrap draws them).

    The pooled AUC pools the chosen users' events. ``user_auc`` is the event-weighted mean of the
    per-user AUCs, and the other metrics are plain means over the users where they are defined.
    The value is NaN when no chosen user defines the metric.
    """
    chosen = np.arange(len(data.users)) if chosen_users is None else chosen_users
    if metric == "auc":
        if len(chosen) == 0 or result.event_scores is None:
            return float("nan")
        rows = np.concatenate([data.events_of_user[position] for position in chosen])
        labels = data.event_labels[rows]
        if labels.size == 0 or labels.min() == labels.max():
            return float("nan")
        return roc_auc(labels, result.event_scores[rows])
    if metric not in _PER_USER_METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {list(METRICS)}")
    values = result.per_user[metric][chosen]
    defined = ~np.isnan(values)
    if not defined.any():
        return float("nan")
    if metric == "user_auc":
        weights = result.user_weights[chosen][defined]
        return float((values[defined] * weights).sum() / weights.sum())
    return float(values[defined].mean())
