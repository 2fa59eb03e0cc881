"""Training of the logistic long-view model with a time-based split.

Events before the split time train the model and later events test it. Video statistics
(exposures, long views) come from the training window only. Within that window the
features of each example use only the counts from strictly earlier events, so its own label
never enters them. Test examples see the counts of the whole training window, as ``predict`` does
after training. Histories include all earlier events of the user, test events too, because at
serving the history is everything the user watched before the request.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from dreamumm.config import Settings
from embeddings import ContentEmbeddingConfig, build_content_embeddings, model_version
from jobs.weighting import build_threshold_rule
from ranking.long_view.examples import EventTable, example_features, histories_of_events
from ranking.long_view.features import DEFAULT_FEATURES, FEATURE_NAMES, FeatureContext
from ranking.long_view.history import WatchHistory
from ranking.long_view.logistic import LogisticLongViewModel
from ranking.long_view.logistic_fit import Standardiser, fit_logistic
from ranking.long_view.metrics import bootstrap_auc_by_group, grouped_auc, log_loss, roc_auc
from ranking.long_view.report import SplitSummary, TrainingReport
from ranking.long_view.video_stats import VideoStatistics, exposures_before

__all__ = [
    "BASELINE_FEATURES",
    "DEFAULT_L2",
    "DEFAULT_PRIOR_STRENGTH",
    "PreparedData",
    "fit_prepared",
    "prepare_training_data",
    "split_time_at",
    "train_long_view_model",
]

logger = logging.getLogger(__name__)

DEFAULT_L2 = 1.0
"""L2 penalty on the standardised weights, added to the summed (not mean) log loss."""

DEFAULT_PRIOR_STRENGTH = 10.0
"""Pseudo-exposures at the window's long-view rate that smooth each video's rate."""

BASELINE_FEATURES: dict[str, str] = {
    "popularity only": "popularity_log",
    "video long-view rate only": "video_long_view_rate",
    "similarity to DreamUMM vector only": "similarity_interest",
    "similarity to history mean only": "similarity_mean",
    "user long-view share only": "history_long_view_share",
}
"""Single features reported as baselines, by label."""

_BOOTSTRAP_RESAMPLES = 1000
_BOOTSTRAP_SEED = 20240422


@dataclass(frozen=True)
class PreparedData:
    """Everything the fits need, computed once: the events, their histories and both feature sets."""

    table: EventTable
    histories: list[WatchHistory]
    split_time_ms: int
    is_train: NDArray[np.bool_]
    evaluation_statistics: VideoStatistics
    """Counts of the training window, used for test features and by the evaluated model."""
    evaluation_features: NDArray[np.float64]
    """Features of every event for the model fit before the split."""
    full_statistics: VideoStatistics
    """Counts of every event, used by a refit on all events."""
    full_features: NDArray[np.float64]
    """Features of every event for a refit, each with the video counts from strictly earlier events."""
    embedding_model_version: str
    settings: Settings
    """Settings the features were computed with. The fitted models store their preference and history limit."""


def split_time_at(times_ms: NDArray[np.int64], fraction: float) -> int:
    """Return the event time below which ``fraction`` of the events (by time) fall.

    Events at exactly the returned time belong to the later part, so the earlier part may be
    slightly smaller than ``fraction`` when times repeat.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"split_fraction must be in (0, 1), got {fraction!r}")
    ordered = np.sort(np.asarray(times_ms, dtype=np.int64))
    if ordered.size < 2:
        raise ValueError(f"a time split needs at least 2 events, got {ordered.size}")
    position = min(max(int(math.floor(fraction * ordered.size)), 1), ordered.size - 1)
    return int(ordered[position])


def prepare_training_data(
    events: pd.DataFrame,
    videos: pd.DataFrame,
    settings: Settings,
    *,
    split_fraction: float = 0.75,
    split_time_ms: int | None = None,
    prior_strength: float = DEFAULT_PRIOR_STRENGTH,
) -> PreparedData:
    """Build the embeddings, the time split, the histories and the features of every event.

    Raises:
        ValueError: if a table lacks a column, the split leaves one side empty or with a single
            class, or no event has an embedding.
    """
    embedding_config = ContentEmbeddingConfig(dimension=settings.embedding.dimension,
                                              salt=settings.embedding.content_salt)
    if settings.preference.recency_half_life_ms is not None:
        logger.warning(
            "preference.recency_half_life_ms is %s, but the long-view model's DreamUMM history vector is the "
            "plain sum without recency decay", settings.preference.recency_half_life_ms)
    embeddings = build_content_embeddings(videos, embedding_config)
    table = EventTable.from_events(events, embeddings)
    if table.dropped_without_embedding:
        logger.warning("left out %s of %s events because their video has no embedding",
                       table.dropped_without_embedding, len(events))

    cut = split_time_at(table.time_ms, split_fraction) if split_time_ms is None else int(split_time_ms)
    is_train = table.time_ms < cut
    _check_split(table.labels, is_train, cut)

    histories = histories_of_events(table, settings.ranking.history_limit)
    labelled = pd.DataFrame({"video_id": table.video_ids, "long_view": table.labels})
    evaluation_statistics = VideoStatistics.from_window(videos, labelled.loc[is_train], prior_strength)
    full_statistics = VideoStatistics.from_window(videos, labelled, prior_strength)

    # Counts from strictly earlier events. For a train event every earlier event is a train event.
    earlier_exposures, earlier_long_views = exposures_before(np.array(table.video_ids), table.time_ms, table.labels)

    # The evaluated model: train examples see the earlier counts, test examples those of the whole window.
    window = evaluation_statistics.lookup(table.video_ids)
    evaluation_candidates = evaluation_statistics.with_counts(
        table.video_ids,
        np.where(is_train, earlier_exposures, window.exposures),
        np.where(is_train, earlier_long_views, window.long_views),
    )
    evaluation_features = example_features(table, histories, evaluation_candidates,
                                           _context(settings, evaluation_statistics))

    full_candidates = full_statistics.with_counts(table.video_ids, earlier_exposures, earlier_long_views)
    full_features = example_features(table, histories, full_candidates, _context(settings, full_statistics))

    return PreparedData(
        table=table,
        histories=histories,
        split_time_ms=cut,
        is_train=is_train,
        evaluation_statistics=evaluation_statistics,
        evaluation_features=evaluation_features,
        full_statistics=full_statistics,
        full_features=full_features,
        embedding_model_version=model_version(embedding_config),
        settings=settings,
    )


def train_long_view_model(
    events: pd.DataFrame,
    videos: pd.DataFrame,
    settings: Settings,
    *,
    split_fraction: float = 0.75,
    split_time_ms: int | None = None,
    l2: float = DEFAULT_L2,
    prior_strength: float = DEFAULT_PRIOR_STRENGTH,
    feature_names: Sequence[str] = DEFAULT_FEATURES,
    refit_on_all: bool = True,
    events_file: str | None = None,
    events_sha256: str | None = None,
) -> tuple[LogisticLongViewModel, TrainingReport]:
    """Fit, evaluate on a time split, and return the model with its report.

    The split time is ``split_time_ms`` when given, else the time at ``split_fraction`` of the
    events. With ``refit_on_all`` (the default) the returned model is refit on every event with
    the same features and l2, and its video statistics cover every event. The report's test
    scores are then an estimate of its quality. ``events_file`` and ``events_sha256`` only label
    the training record in the model file.

    Raises:
        ValueError: if a table lacks a column, the split leaves one side empty or with a single
            class, a feature name is unknown, or no event has an embedding.
    """
    names = _check_feature_names(feature_names)
    data = prepare_training_data(events, videos, settings, split_fraction=split_fraction,
                                 split_time_ms=split_time_ms, prior_strength=prior_strength)
    return fit_prepared(data, l2=l2, feature_names=names, refit_on_all=refit_on_all,
                        events_file=events_file, events_sha256=events_sha256)


def fit_prepared(
    data: PreparedData,
    *,
    l2: float = DEFAULT_L2,
    feature_names: Sequence[str] = DEFAULT_FEATURES,
    refit_on_all: bool = True,
    events_file: str | None = None,
    events_sha256: str | None = None,
) -> tuple[LogisticLongViewModel, TrainingReport]:
    """Fit and evaluate on already prepared data, so that several feature sets or l2 values can share it."""
    names = _check_feature_names(feature_names)
    labels = data.table.labels
    is_train = data.is_train
    is_test = ~is_train

    evaluated = _fit_model(data.evaluation_features[is_train], labels[is_train], names, l2, data,
                           data.evaluation_statistics)
    train_scores = evaluated.probabilities(data.evaluation_features[is_train])
    test_scores = evaluated.probabilities(data.evaluation_features[is_test])
    train_summary = _summary(data, is_train, train_scores)
    test_summary = _summary(data, is_test, test_scores)
    interval = bootstrap_auc_by_group(labels[is_test], test_scores, data.table.user_ids[is_test],
                                      resamples=_BOOTSTRAP_RESAMPLES, seed=_BOOTSTRAP_SEED)
    baselines, user_baselines = _baseline_aucs(data, is_train, is_test)

    if refit_on_all:
        shipped = _fit_model(data.full_features, labels, names, l2, data, data.full_statistics)
        everything = np.ones(len(labels), dtype=bool)
        shipped_summary = _summary(data, everything, shipped.probabilities(data.full_features))
    else:
        shipped = evaluated
        shipped_summary = train_summary

    report = TrainingReport(
        embedding_model_version=data.embedding_model_version,
        events_used=len(data.table),
        dropped_without_embedding=data.table.dropped_without_embedding,
        first_event_time_ms=int(data.table.time_ms[0]),
        last_event_time_ms=int(data.table.time_ms[-1]),
        split_time_ms=data.split_time_ms,
        train=train_summary,
        test=test_summary,
        test_auc_interval=interval,
        baseline_test_aucs=baselines,
        baseline_test_user_aucs=user_baselines,
        feature_names=names,
        weights=tuple(float(weight) for weight in shipped.weights),
        l2=float(l2),
        prior_strength=data.full_statistics.prior_strength,
        refit_on_all=refit_on_all,
        shipped=shipped_summary,
        events_file=events_file,
        events_sha256=events_sha256,
    )
    logger.info("trained long-view model: test AUC %.3f (train %.3f) on %s test events", test_summary.auc,
                train_summary.auc, test_summary.events)
    model = _with_training_record(shipped, report)
    return model, report


def _fit_model(
    features: NDArray[np.float64],
    labels: NDArray[np.int64],
    names: tuple[str, ...],
    l2: float,
    data: PreparedData,
    statistics: VideoStatistics,
) -> LogisticLongViewModel:
    settings = data.settings
    columns = [FEATURE_NAMES.index(name) for name in names]
    selected = features[:, columns]
    standardiser = Standardiser.fit(selected)
    fit = fit_logistic(standardiser.transform(selected), labels.astype(np.float64), l2)
    return LogisticLongViewModel(
        feature_names=names,
        weights=fit.weights,
        intercept=fit.intercept,
        standardiser=standardiser,
        preference=settings.preference,
        history_limit=settings.ranking.history_limit,
        video_statistics=statistics,
        embedding_model_version=data.embedding_model_version,
        embedding_dimension=settings.embedding.dimension,
        training={"iterations": fit.iterations, "converged": fit.converged},
    )


def _with_training_record(model: LogisticLongViewModel, report: TrainingReport) -> LogisticLongViewModel:
    data = model.to_dict()
    data["training"] = {**report.to_metadata(), **model.training}
    return LogisticLongViewModel.from_dict(data)


def _summary(data: PreparedData, rows: NDArray[np.bool_], scores: NDArray[np.float64]) -> SplitSummary:
    labels = data.table.labels[rows]
    users = data.table.user_ids[rows]
    return SplitSummary(
        events=int(rows.sum()),
        users=int(np.unique(users).size),
        positives=int(labels.sum()),
        auc=roc_auc(labels, scores),
        user_auc=_user_auc(labels, scores, users),
        log_loss=log_loss(labels, scores),
    )


def _user_auc(labels: NDArray[np.int64], scores: NDArray[np.float64], users: NDArray[np.int64]) -> float | None:
    """Per-user AUC, or None when no user has both a long view and another view."""
    try:
        return grouped_auc(labels, scores, users).value
    except ValueError:
        return None


def _baseline_aucs(
    data: PreparedData, is_train: NDArray[np.bool_], is_test: NDArray[np.bool_]
) -> tuple[dict[str, float], dict[str, float | None]]:
    """Pooled and per-user test AUC of single raw features. An undefined value counts as the training mean."""
    aucs: dict[str, float] = {}
    user_aucs: dict[str, float | None] = {}
    labels = data.table.labels[is_test]
    users = data.table.user_ids[is_test]
    for label, name in BASELINE_FEATURES.items():
        column = data.evaluation_features[:, FEATURE_NAMES.index(name)]
        train_values = column[is_train]
        fill = float(np.nanmean(train_values)) if (~np.isnan(train_values)).any() else 0.0
        scores = np.where(np.isnan(column[is_test]), fill, column[is_test])
        aucs[label] = roc_auc(labels, scores)
        user_aucs[label] = _user_auc(labels, scores, users)
    return aucs, user_aucs


def _context(settings: Settings, statistics: VideoStatistics) -> FeatureContext:
    return FeatureContext(
        alpha_per_s=settings.preference.alpha_per_s,
        threshold_rule=build_threshold_rule(settings.preference),
        history_limit=settings.ranking.history_limit,
        prior_long_view_rate=statistics.prior_long_view_rate,
        prior_strength=statistics.prior_strength,
    )


def _check_feature_names(feature_names: Sequence[str]) -> tuple[str, ...]:
    names = tuple(feature_names)
    unknown = [name for name in names if name not in FEATURE_NAMES]
    if unknown or not names:
        raise ValueError(f"feature_names must be a non-empty subset of {list(FEATURE_NAMES)}, got {list(names)}")
    return names


def _check_split(labels: NDArray[np.int64], is_train: NDArray[np.bool_], cut: int) -> None:
    for part, rows in (("before", is_train), ("from", ~is_train)):
        part_labels = labels[rows]
        if part_labels.size == 0 or part_labels.min() == part_labels.max():
            raise ValueError(
                f"the events {part} the split time {cut} ms must contain both long views and other views, "
                f"got {part_labels.size} events with {int(part_labels.sum())} long views; choose another split"
            )
