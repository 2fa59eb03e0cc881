"""Algorithm 1's online step: score a request's candidates against a user vector and return the top k.

A candidate's final score is ``interest_weight * <x_i, mu> + sum_name weight_name * score_name``,
where ``mu`` is the stored DreamUMM vector or Candidate-DreamUMM, as the ``VectorRule`` decides,
and the named scores are other models' scores the caller sends per candidate.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from ranking.candidate import candidate_dreamumm_vector
from ranking.long_view import LongViewModel, WatchHistory
from ranking.rule import VectorChoice, VectorRequest, VectorRule, VectorSource
from store import StoredVector, VideoVectors

logger = logging.getLogger(__name__)


class VectorStore(Protocol):
    """The reads a ranker needs from the feature store (``store.FeatureStoreReader`` has them)."""

    def get(self, user_id: str) -> StoredVector | None: ...

    def video_vectors(self, model_version: str, video_ids: Sequence[str]) -> VideoVectors: ...


def require_model_space(model: LongViewModel, serving_version: str) -> None:
    """Raise ValueError if ``model`` was trained in another embedding space than ``serving_version``."""
    model_space = model.embedding_model_version
    if model_space is not None and model_space != serving_version:
        raise ValueError(f"the long-view model was trained on embedding model {model_space!r}, but the ranker "
                         f"scores candidates of {serving_version!r}; retrain it with `dreamumm train-long-view` "
                         "on the serving embedding")


class RankRequestError(ValueError):
    """Raised when a rank request is invalid; ``field`` names the bad part, such as ``candidates[3].scores``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class HistoryItem:
    """One video the user watched, oldest first in a request."""

    video_id: str
    play_time_ms: float
    """Watch time in ms."""
    duration_ms: float | None = None
    """Video length in ms (0 for image posts); None when the caller does not know it."""
    time_ms: int | None = None
    """Event time in epoch ms, if known."""


@dataclass(frozen=True)
class Candidate:
    """One video to rank, with the other scores the caller combines with the interest score."""

    video_id: str
    scores: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoreWeights:
    """The stated weighting of a candidate's final score."""

    interest: float = 1.0
    """Weight of the interest score <x_i, mu>."""
    others: Mapping[str, float] = field(default_factory=dict)
    """Weight of each other score, by the name requests use for it."""

    def __post_init__(self) -> None:
        for name, weight in {"interest": self.interest, **self.others}.items():
            if not math.isfinite(weight):
                raise ValueError(f"score weight {name!r} must be finite, got {weight!r}")


@dataclass(frozen=True)
class RankedItem:
    """A returned candidate with its final score and the parts of it."""

    video_id: str
    score: float
    interest_score: float
    long_view_probability: float | None
    """f_seq's probability when Candidate-DreamUMM scored the request, else None."""


@dataclass(frozen=True)
class UnscoredCandidate:
    """A candidate the ranker could not score, with the reason."""

    video_id: str
    reason: str


@dataclass(frozen=True)
class RankResult:
    """The top k candidates of a request and how they were scored."""

    user_id: str
    items: list[RankedItem]
    choice: VectorChoice
    model_version: str
    stored_vector: StoredVector | None
    """The user's store entry, whether or not the rule used it."""
    unscored: list[UnscoredCandidate]
    history_used: int
    """History items f_seq looked at (Candidate-DreamUMM only)."""
    history_without_embedding: int
    """History items skipped because the store has no embedding of theirs in the model version."""
    now_ms: int
    weights: ScoreWeights


class Ranker:
    """Ranks candidates for a user with the stored DreamUMM vector or Candidate-DreamUMM.

    Thread-safe when the store and the long-view model are: the ranker keeps no per-request state.
    """

    def __init__(self, store: VectorStore, long_view_model: LongViewModel, rule: VectorRule,
                 weights: ScoreWeights = ScoreWeights(), history_limit: int = 50,
                 clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000) -> None:
        require_model_space(long_view_model, rule.model_version)
        if history_limit < 1:
            raise ValueError(f"history_limit must be >= 1, got {history_limit}")
        self._store = store
        self._model = long_view_model
        self._rule = rule
        self._weights = weights
        self._history_limit = history_limit
        self._clock_ms = clock_ms

    @property
    def weights(self) -> ScoreWeights:
        """The weighting of final scores."""
        return self._weights

    @property
    def model_version(self) -> str:
        """Embedding model version of the vectors this ranker scores with."""
        return self._rule.model_version

    def rank(self, user_id: str, history: Sequence[HistoryItem], candidates: Sequence[Candidate], k: int,
             vector_request: VectorRequest = "auto", now_ms: int | None = None) -> RankResult:
        """Return the ``k`` best of ``candidates`` for ``user_id``, best first; ties keep request order.

        ``history`` is the user's recent watches, oldest first. Only Candidate-DreamUMM reads it.
        ``now_ms`` is the request time for the age rule (default: the clock).

        Raises:
            RankRequestError: if k < 1, a candidate repeats, or a candidate's other scores do not
                match the configured names or are not finite.
        """
        self._check_request(history, candidates, k)
        now = self._clock_ms() if now_ms is None else now_ms
        stored = self._store.get(user_id)
        choice = self._rule.choose(stored, now, vector_request)

        candidate_ids = [candidate.video_id for candidate in candidates]
        videos = self._store.video_vectors(self.model_version, candidate_ids)
        found = np.flatnonzero(videos.found)
        unscored = [UnscoredCandidate(candidates[i].video_id, "no_embedding_in_model_version")
                    for i in np.flatnonzero(~videos.found)]
        matrix = videos.matrix[found]

        probabilities: NDArray[np.float64] | None = None
        history_used = history_missing = 0
        if choice.source is VectorSource.STORED:
            assert stored is not None
            user_vector: NDArray[np.float32] | None = stored.vector
        elif len(found) == 0:
            user_vector = None
        else:
            watch_history, history_missing = self._watch_history(history, matrix.shape[1])
            history_used = len(watch_history.video_ids)
            probabilities = self._model.predict(watch_history, [candidate_ids[i] for i in found], matrix)
            user_vector = candidate_dreamumm_vector(probabilities, matrix)

        if user_vector is None or matrix.shape[0] == 0:
            # No candidate has an embedding, or their weighted sum cancels: every interest score is 0.
            interest = np.zeros(len(found), dtype=np.float64)
        else:
            interest = (matrix @ user_vector).astype(np.float64)
        final = self._weights.interest * interest
        for name, weight in self._weights.others.items():
            final += weight * np.array([candidates[i].scores[name] for i in found], dtype=np.float64)

        if not np.isfinite(final).all():
            index = int(found[np.flatnonzero(~np.isfinite(final))[0]])
            raise RankRequestError(f"candidates[{index}].scores",
                                   f"the weighted final score is {final[~np.isfinite(final)][0]}, not finite; "
                                   "send scores of a smaller magnitude")
        order = np.argsort(-final, kind="stable")[:k]
        items = [RankedItem(candidates[found[j]].video_id, float(final[j]), float(interest[j]),
                            None if probabilities is None else float(probabilities[j]))
                 for j in order]
        logger.debug("ranked %s candidates for user %s with %s (%s)", len(candidates), user_id,
                     choice.source.value, choice.reason.value)
        return RankResult(user_id, items, choice, self.model_version, stored, unscored,
                          history_used, history_missing, now, self._weights)

    def _check_request(self, history: Sequence[HistoryItem], candidates: Sequence[Candidate], k: int) -> None:
        if k < 1:
            raise RankRequestError("k", f"k must be >= 1, got {k}")
        previous: int | None = None
        for index, item in enumerate(history):
            if item.time_ms is not None and previous is not None and item.time_ms < previous:
                raise RankRequestError(f"history[{index}].time_ms",
                                       f"history must be oldest first, but time_ms {item.time_ms} is before the "
                                       f"previous item's {previous}")
            if item.time_ms is not None:
                previous = item.time_ms
        seen: set[str] = set()
        expected = set(self._weights.others)
        for index, candidate in enumerate(candidates):
            if candidate.video_id in seen:
                raise RankRequestError(f"candidates[{index}].video_id",
                                       f"video {candidate.video_id!r} repeats an earlier "
                                       "candidate; send each video once")
            seen.add(candidate.video_id)
            names = set(candidate.scores)
            if names != expected:
                raise RankRequestError(
                    f"candidates[{index}].scores",
                    f"scores must have exactly the configured names {sorted(expected)}, "
                    f"got {sorted(names)} (ranking.score_weights sets the names)")
            for name, value in candidate.scores.items():
                if not math.isfinite(value):
                    raise RankRequestError(f"candidates[{index}].scores.{name}",
                                           f"score {name!r} must be finite, got {value!r}")

    def _watch_history(self, history: Sequence[HistoryItem], dimension: int) -> tuple[WatchHistory, int]:
        """Return the newest ``history_limit`` items that have an embedding, and how many items had none.

        Training builds histories the same way, from events whose video has an embedding.
        """
        if not history or dimension == 0:
            return WatchHistory.empty(dimension), 0
        videos = self._store.video_vectors(self.model_version, [item.video_id for item in history])
        with_embedding = np.flatnonzero(videos.found)
        missing = len(history) - len(with_embedding)
        newest = with_embedding[-self._history_limit:]
        if len(newest) == 0:
            return WatchHistory.empty(dimension), missing
        items = [history[i] for i in newest]
        times = [item.time_ms for item in items]
        return WatchHistory(
            video_ids=tuple(item.video_id for item in items),
            vectors=videos.matrix[newest],
            play_time_ms=np.array([item.play_time_ms for item in items], dtype=np.float64),
            duration_ms=np.array([math.nan if item.duration_ms is None else item.duration_ms for item in items],
                                 dtype=np.float64),
            time_ms=None if any(t is None for t in times) else np.array(times, dtype=np.int64),
        ), missing
