"""Build a ranker from the configuration."""

from __future__ import annotations

from dreamumm.config import Settings
from ranking.long_view import LongViewModel, load_long_view_model
from ranking.ranker import Ranker, ScoreWeights, VectorStore
from ranking.rule import VectorRule


def serving_model_version(settings: Settings) -> str:
    """Return the embedding model version the ranker scores in: the configured one, or else the
    version of the content embedding the embedding section describes."""
    if settings.ranking.embedding_model_version is not None:
        return settings.ranking.embedding_model_version
    from embeddings import ContentEmbeddingConfig, model_version

    return model_version(ContentEmbeddingConfig(dimension=settings.embedding.dimension,
                                                salt=settings.embedding.content_salt))


def build_ranker(settings: Settings, store: VectorStore, long_view_model: LongViewModel | None = None) -> Ranker:
    """Return a ranker over ``store`` with the rule, weights and long-view model of ``settings``.

    The long-view model is loaded from ``ranking.long_view_model_path`` unless one is passed.

    Raises:
        LongViewModelError: if the model file is missing or unreadable.
        ValueError: if the model was trained in another embedding space than the ranker scores in.
    """
    ranking = settings.ranking
    model = long_view_model if long_view_model is not None else load_long_view_model(ranking.long_view_model_path)
    rule = VectorRule(model_version=serving_model_version(settings), max_vector_age_ms=ranking.max_vector_age_ms,
                      min_event_count=ranking.min_event_count)
    weights = ScoreWeights(interest=ranking.interest_weight, others=dict(ranking.score_weights))
    return Ranker(store, model, rule, weights, history_limit=ranking.history_limit)
