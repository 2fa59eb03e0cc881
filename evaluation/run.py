"""The whole evaluation: load, replay, sweep, score every method in both windows, bootstrap."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from dreamumm.config import Settings
from embeddings import ContentEmbeddingConfig, build_content_embeddings, load_events, load_video_table, model_version
from evaluation.bootstrap import UserBootstrap
from evaluation.events import EventAccounting, EvaluationEvents, prepare_events
from evaluation.kmeans import Clustering, kmeans
from evaluation.long_view import candidate_dreamumm_scores, long_view_scores, train_before
from evaluation.methods import (
    interest_scores,
    last_watched_scores,
    popularity_scores,
    random_scores,
)
from evaluation.replay import Replay
from evaluation.results import MethodResult, WindowData, evaluate_method
from evaluation.sweep import SweepPoint, best_point, run_sweep
from evaluation.windows import Window, split_windows
from jobs.weighting import build_threshold_rule
from ranking.long_view.training import DEFAULT_PRIOR_STRENGTH

__all__ = ["EvaluationOutcome", "MethodNames", "WindowOutcome", "run_evaluation"]

logger = logging.getLogger(__name__)


class MethodNames:
    """Names of the compared methods, as the report prints them."""

    PLAIN = "DreamUMM, plain sum"
    DECAY = "DreamUMM, recency decay"
    TUNED = "DreamUMM, tuned"
    CANDIDATE = "Candidate-DreamUMM"
    LONG_VIEW = "f_seq alone"
    POPULARITY = "popularity"
    MEAN = "mean of history"
    LAST = "last watched video"
    RANDOM = "random"


@dataclass(frozen=True)
class WindowOutcome:
    """Every method's result in one window, with the shared bootstrap."""

    data: WindowData
    bootstrap: UserBootstrap
    methods: dict[str, MethodResult]
    """Results by method name, in report order."""
    unseen_candidates: int
    """Candidates whose video no user was exposed to before the window, which popularity cannot tell apart."""

    @property
    def window(self) -> Window:
        """The window."""
        return self.data.window


@dataclass(frozen=True)
class EvaluationOutcome:
    """Everything the report shows."""

    settings: Settings
    events_path: Path
    events_sha256: str
    videos_path: Path
    embedding_model_version: str
    accounting: EventAccounting
    has_random_exposure_column: bool
    """False when the log has no ``is_rand`` column, so every event counted as a random exposure."""
    label_agreement: float
    """Share of the used events whose ``long_view`` label equals play time >= the configured threshold."""
    user_count: int
    first_event_ms: int
    last_event_ms: int
    clustering: Clustering
    validation: WindowOutcome
    test: WindowOutcome
    sweep: list[SweepPoint]
    plain: SweepPoint
    decay: SweepPoint
    tuned: SweepPoint
    unavailable: dict[tuple[str, str], str] = field(default_factory=dict)
    """Reasons by (window name, method name) for methods that could not run in a window."""


def run_evaluation(settings: Settings, events_path: Path, videos_path: Path) -> EvaluationOutcome:
    """Run the evaluation of ``settings.evaluation`` on an event log and a video table.

    Raises:
        FileNotFoundError: if a file does not exist.
        ValueError: if a file lacks a column or has invalid values, or the windows are empty.
    """
    config = settings.evaluation
    events_table = load_events(events_path)
    videos = load_video_table(videos_path)
    embedding_config = ContentEmbeddingConfig(dimension=settings.embedding.dimension,
                                              salt=settings.embedding.content_salt)
    embeddings = build_content_embeddings(videos, embedding_config)
    events = prepare_events(events_table, embeddings, settings.preference.max_watch_time_ms)
    _log_accounting(events)
    replay = Replay(events)
    validation_window, test_window = split_windows(replay, config.validation_start, config.test_start)

    clustering = _cluster_videos(embeddings, config.clusters, config.seed, config.kmeans_iterations)
    clusters_of_rows = _clusters_of_rows(events, embeddings, clustering)
    validation = WindowData.build(replay, validation_window, clusters_of_rows, config.k)
    test = WindowData.build(replay, test_window, clusters_of_rows, config.k)

    logger.info("sweeping %s combinations of alpha, threshold rule and half-life",
                len(config.sweep_alpha_per_s) * len(config.sweep_thresholds) * len(config.sweep_half_life_ms))
    sweep = run_sweep(replay, validation, test, config.sweep_alpha_per_s, config.sweep_thresholds,
                      config.sweep_half_life_ms)
    tuned = best_point(sweep, validation, config.select_by)
    plain = _configured_point(replay, validation, test, settings, sweep, None)
    decay = _decay_point(replay, validation, test, settings, sweep)

    unavailable: dict[tuple[str, str], str] = {}
    outcomes = []
    for data in (validation, test):
        methods = _score_methods(replay, data, settings, videos, plain, decay, tuned, unavailable)
        bootstrap = UserBootstrap(data, config.bootstrap_resamples, config.confidence_level, config.seed)
        outcomes.append(WindowOutcome(data=data, bootstrap=bootstrap, methods=methods,
                                      unseen_candidates=_unseen_candidates(events, data.window)))

    return EvaluationOutcome(
        settings=settings,
        events_path=Path(events_path),
        events_sha256=hashlib.sha256(Path(events_path).read_bytes()).hexdigest(),
        videos_path=Path(videos_path),
        embedding_model_version=model_version(embedding_config),
        accounting=events.accounting,
        has_random_exposure_column=events.has_random_exposure_column,
        label_agreement=_label_agreement(events, settings),
        user_count=events.user_count,
        first_event_ms=int(events.time_ms[0]),
        last_event_ms=int(events.time_ms[-1]),
        clustering=clustering,
        validation=outcomes[0],
        test=outcomes[1],
        sweep=sweep,
        plain=plain,
        decay=decay,
        tuned=tuned,
        unavailable=unavailable,
    )


def _log_accounting(events: EvaluationEvents) -> None:
    accounting = events.accounting
    logger.info("read %s events: %s used, %s duplicates, %s with an implausible watch time, %s without an embedding",
                accounting.read, accounting.used, accounting.duplicates, accounting.implausible_watch_time,
                accounting.without_embedding)
    if not events.has_random_exposure_column:
        logger.warning("the events have no is_rand column, so every event counts as a random exposure")


def _label_agreement(events: EvaluationEvents, settings: Settings) -> float:
    thresholds = build_threshold_rule(settings.preference).thresholds_ms(events.duration_ms)
    return float(np.mean(events.labels == (events.play_time_ms >= thresholds)))


def _unseen_candidates(events: EvaluationEvents, window: Window) -> int:
    seen_before = np.unique(events.video_ids[events.time_ms < window.start_ms])
    return int((~np.isin(events.video_ids[window.candidate_rows], seen_before)).sum())


def _cluster_videos(embeddings: dict[int, NDArray[np.float32]], clusters: int, seed: int,
                    iterations: int) -> Clustering:
    video_ids = sorted(embeddings)
    matrix = np.vstack([np.asarray(embeddings[video_id], dtype=np.float64) for video_id in video_ids])
    return kmeans(matrix, clusters, seed=seed, max_iterations=iterations)


def _clusters_of_rows(events: EvaluationEvents, embeddings: dict[int, NDArray[np.float32]],
                      clustering: Clustering) -> NDArray[np.intp]:
    cluster_of_video = dict(zip(sorted(embeddings), clustering.labels.tolist()))
    return np.array([cluster_of_video[int(video_id)] for video_id in events.video_ids], dtype=np.intp)


def _configured_point(replay: Replay, validation: WindowData, test: WindowData, settings: Settings,
                      sweep: list[SweepPoint], half_life_ms: float | None) -> SweepPoint:
    """Return DreamUMM with the configured alpha and threshold rule and the given half-life.

    The sweep's point is reused when the grid contains the combination; otherwise it is scored here.
    """
    preference = settings.preference
    for point in sweep:
        if (point.alpha_per_s, point.threshold, point.half_life_ms) == (
                preference.alpha_per_s, preference.threshold, half_life_ms):
            return point
    # Each combination scored here needs its own name, because the bootstrap identifies results by name.
    name = f"configured, half-life {half_life_ms}"
    return run_sweep(replay, validation, test, [preference.alpha_per_s], [preference.threshold], [half_life_ms],
                     name_prefix=name)[0]


def _decay_point(replay: Replay, validation: WindowData, test: WindowData, settings: Settings,
                 sweep: list[SweepPoint]) -> SweepPoint:
    """Return DreamUMM with recency decay: the configured half-life, or the best of the sweep's on validation."""
    configured = settings.preference.recency_half_life_ms
    if configured is not None:
        return _configured_point(replay, validation, test, settings, sweep, configured)
    half_lives = [value for value in settings.evaluation.sweep_half_life_ms if value is not None]
    if not half_lives:
        raise ValueError("evaluation.sweep_half_life_ms lists no half-life, and preference.recency_half_life_ms "
                         "is not set, so recency decay has no half-life to evaluate; add one")
    points = [_configured_point(replay, validation, test, settings, sweep, half_life) for half_life in half_lives]
    return best_point(points, validation, settings.evaluation.select_by)


def _score_methods(replay: Replay, data: WindowData, settings: Settings, videos: pd.DataFrame, plain: SweepPoint,
                   decay: SweepPoint, tuned: SweepPoint, unavailable: dict[tuple[str, str], str]
                   ) -> dict[str, MethodResult]:
    window = data.window
    is_validation = window.name == "validation"

    results: dict[str, MethodResult] = {}
    for name, point in ((MethodNames.PLAIN, plain), (MethodNames.DECAY, decay), (MethodNames.TUNED, tuned)):
        source = point.validation if is_validation else point.test
        results[name] = _renamed(source, name)

    history_limit = settings.ranking.history_limit
    try:
        model = train_before(replay.events, window.start_ms, videos, settings)
    except ValueError as error:
        reason = (f"f_seq could not be trained on the events before the {window.name} window, because its own "
                  f"time split of them needs long views and other views on both sides: {error}")
        logger.warning("%s", reason)
        unavailable[(window.name, MethodNames.CANDIDATE)] = unavailable[(window.name, MethodNames.LONG_VIEW)] = reason
    else:
        results[MethodNames.CANDIDATE] = evaluate_method(
            data, MethodNames.CANDIDATE, candidate_dreamumm_scores(replay, window, model, history_limit))
        results[MethodNames.LONG_VIEW] = evaluate_method(
            data, MethodNames.LONG_VIEW, long_view_scores(replay, window, model, history_limit))

    ones = np.ones(len(replay.events), dtype=np.float64)
    results[MethodNames.POPULARITY] = evaluate_method(
        data, MethodNames.POPULARITY, popularity_scores(replay, window, DEFAULT_PRIOR_STRENGTH))
    results[MethodNames.MEAN] = evaluate_method(data, MethodNames.MEAN, interest_scores(replay, window, ones, None))
    results[MethodNames.LAST] = evaluate_method(data, MethodNames.LAST, last_watched_scores(replay, window))
    results[MethodNames.RANDOM] = evaluate_method(data, MethodNames.RANDOM, random_scores(window))
    return results


def _renamed(result: MethodResult, name: str) -> MethodResult:
    return MethodResult(name=name, event_scores=result.event_scores, per_user=result.per_user,
                        user_weights=result.user_weights, events_without_vector=result.events_without_vector,
                        candidates_without_vector=result.candidates_without_vector)
