"""Online ranking with DreamUMM user vectors (the method's Algorithm 1).

- ``rule``: picks the stored vector or Candidate-DreamUMM per request, with the reason.
- ``candidate``: the Candidate-DreamUMM vector from candidates and long-view probabilities.
- ``ranker``: scores candidates by ``<x_i, mu>`` and other weighted scores, returns the top k.
- ``long_view``: the pluggable long-view model f_seq(history, candidate) and its default.
- ``factory``: builds a ranker from the configuration.
"""

from ranking.candidate import candidate_dreamumm_vector
from ranking.factory import (
    build_ranker,
    check_model_space,
    load_configured_long_view_model,
    serving_model_version,
)
from ranking.ranker import (
    Candidate,
    HistoryItem,
    Ranker,
    RankedItem,
    RankRequestError,
    RankResult,
    ScoreWeights,
    UnscoredCandidate,
    VectorStore,
)
from ranking.rule import ChoiceReason, VectorChoice, VectorRequest, VectorRule, VectorSource

__all__ = [
    "Candidate",
    "ChoiceReason",
    "HistoryItem",
    "RankRequestError",
    "RankResult",
    "RankedItem",
    "Ranker",
    "ScoreWeights",
    "UnscoredCandidate",
    "VectorChoice",
    "VectorRequest",
    "VectorRule",
    "VectorSource",
    "VectorStore",
    "build_ranker",
    "candidate_dreamumm_vector",
    "check_model_space",
    "load_configured_long_view_model",
    "serving_model_version",
]
