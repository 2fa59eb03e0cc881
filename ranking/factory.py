"""Build a ranker from the configuration."""

from __future__ import annotations

import importlib

from dreamumm.config import Settings
from ranking.long_view import LongViewModel, LongViewModelError, load_long_view_model
from ranking.ranker import Ranker, ScoreWeights, VectorStore, require_model_space
from ranking.rule import VectorRule


def serving_model_version(settings: Settings) -> str:
    """Return the embedding model version the ranker scores in: the configured one, or else the
    version of the content embedding the embedding section describes."""
    if settings.ranking.embedding_model_version is not None:
        return settings.ranking.embedding_model_version
    from embeddings import ContentEmbeddingConfig, model_version

    return model_version(ContentEmbeddingConfig(dimension=settings.embedding.dimension,
                                                salt=settings.embedding.content_salt))


def load_configured_long_view_model(settings: Settings) -> LongViewModel:
    """Return the f_seq that ``settings.ranking`` names: the factory's model, or the model file's.

    Raises:
        LongViewModelError: if the factory cannot be imported, fails, or returns an object without
            ``predict`` and ``embedding_model_version``, or if the model file is missing or unreadable.
    """
    factory_path = settings.ranking.long_view_model_factory
    if factory_path is None:
        return load_long_view_model(settings.ranking.long_view_model_path)
    module_name, function_name = factory_path.split(":")
    try:
        factory = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        raise LongViewModelError(f"ranking.long_view_model_factory {factory_path!r} cannot be imported: {error}; "
                                 "check the module is on PYTHONPATH and defines the function") from error
    try:
        model = factory(settings)
    except Exception as error:
        raise LongViewModelError(f"ranking.long_view_model_factory {factory_path!r} failed: {error!r}") from error
    if not callable(getattr(model, "predict", None)) or not hasattr(model, "embedding_model_version"):
        raise LongViewModelError(f"ranking.long_view_model_factory {factory_path!r} returned {type(model).__name__}, "
                                 "which lacks predict() or embedding_model_version (see ranking.long_view.LongViewModel)")
    return model


def check_model_space(settings: Settings, model: LongViewModel) -> None:
    """Raise LongViewModelError if ``model`` was trained in another embedding space than the ranker scores in."""
    try:
        require_model_space(model, serving_model_version(settings))
    except ValueError as error:
        raise LongViewModelError(str(error)) from error


def build_ranker(settings: Settings, store: VectorStore, long_view_model: LongViewModel | None = None) -> Ranker:
    """Return a ranker over ``store`` with the rule, weights and long-view model of ``settings``.

    Unless a long-view model is passed, it comes from ``load_configured_long_view_model``.

    Raises:
        LongViewModelError: if the configured model cannot be loaded.
        ValueError: if the model was trained in another embedding space than the ranker scores in.
    """
    ranking = settings.ranking
    model = long_view_model if long_view_model is not None else load_configured_long_view_model(settings)
    rule = VectorRule(model_version=serving_model_version(settings), max_vector_age_ms=ranking.max_vector_age_ms,
                      min_event_count=ranking.min_event_count)
    weights = ScoreWeights(interest=ranking.interest_weight, others=dict(ranking.score_weights))
    return Ranker(store, model, rule, weights, history_limit=ranking.history_limit)
