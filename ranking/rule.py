"""The rule that picks, per request, the stored DreamUMM vector or Candidate-DreamUMM."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import numpy as np

from store import StoredVector

VectorRequest = Literal["auto", "candidate"]
"""The caller's request: ``auto`` lets the rule decide, and ``candidate`` forces Candidate-DreamUMM."""


class VectorSource(StrEnum):
    """The user vector that scored a request."""

    STORED = "dreamumm"
    """The user's DreamUMM vector from the feature store, summed over their watch history."""
    CANDIDATE = "candidate_dreamumm"
    """The request's candidates weighted by predicted long-view probability."""


class ChoiceReason(StrEnum):
    """The reason the rule picked its vector."""

    STORED_VECTOR_USABLE = "stored_vector_usable"
    CALLER_REQUESTED_CANDIDATE = "caller_requested_candidate"
    NO_STORED_VECTOR = "no_stored_vector"
    STORED_VECTOR_TOO_OLD = "stored_vector_too_old"
    TOO_FEW_EVENTS = "too_few_events"
    OTHER_MODEL_VERSION = "other_model_version"
    STORED_VECTOR_AFTER_REQUEST = "stored_vector_after_request"
    STORED_VECTOR_WITHOUT_DIRECTION = "stored_vector_without_direction"


@dataclass(frozen=True)
class VectorChoice:
    """The rule's decision for one request, reported in the response."""

    source: VectorSource
    reason: ChoiceReason
    detail: str
    """One sentence with the numbers behind the reason, for logs and callers."""


@dataclass(frozen=True)
class VectorRule:
    """Use the stored vector unless the caller asks for Candidate-DreamUMM, or the vector is
    missing, of another embedding model version, newer than the request, too old, built from too
    few events, or without direction.

    The checks run in that order, and the first that fails is reported.
    """

    model_version: str
    """Embedding model version of the candidates' vectors. A stored vector of another version
    lives in another space, so it is never scored against them."""
    max_vector_age_ms: int | None = None
    """Maximum time between the stored vector's newest event and the request, or None for no limit."""
    min_event_count: int = 1
    """Minimum number of contributing events a stored vector needs."""

    def __post_init__(self) -> None:
        if self.max_vector_age_ms is not None and self.max_vector_age_ms < 0:
            raise ValueError(f"max_vector_age_ms must be >= 0 or None, got {self.max_vector_age_ms}")
        if self.min_event_count < 1:
            raise ValueError(f"min_event_count must be >= 1, got {self.min_event_count}")

    def choose(self, stored: StoredVector | None, now_ms: int, request: VectorRequest = "auto") -> VectorChoice:
        """Pick the vector for a request made at ``now_ms`` (epoch ms) by a user whose store entry is ``stored``."""
        if request == "candidate":
            return _candidate(ChoiceReason.CALLER_REQUESTED_CANDIDATE, "the request asked for Candidate-DreamUMM")
        if request != "auto":
            raise ValueError(f"vector request must be 'auto' or 'candidate', got {request!r}")
        if stored is None:
            return _candidate(ChoiceReason.NO_STORED_VECTOR, "the feature store has no vector for this user")
        if stored.embedding_model_version != self.model_version:
            return _candidate(ChoiceReason.OTHER_MODEL_VERSION,
                              f"the stored vector is of embedding model {stored.embedding_model_version!r}, "
                              f"the candidates of {self.model_version!r}")
        age_ms = stored.age_ms(now_ms)
        if age_ms < 0:
            # A replay of past traffic must not see events from after its request.
            return _candidate(ChoiceReason.STORED_VECTOR_AFTER_REQUEST,
                              f"the stored vector's newest event is {-age_ms} ms after the request time")
        if self.max_vector_age_ms is not None and age_ms > self.max_vector_age_ms:
            return _candidate(ChoiceReason.STORED_VECTOR_TOO_OLD,
                              f"the stored vector's newest event is {age_ms} ms old, "
                              f"more than the limit of {self.max_vector_age_ms} ms")
        if stored.event_count < self.min_event_count:
            return _candidate(ChoiceReason.TOO_FEW_EVENTS,
                              f"the stored vector sums {stored.event_count} events, "
                              f"fewer than the minimum of {self.min_event_count}")
        if not np.any(stored.vector):
            return _candidate(ChoiceReason.STORED_VECTOR_WITHOUT_DIRECTION,
                              "the stored vector is all zeros because the user's preference weights sum to 0")
        return VectorChoice(VectorSource.STORED, ChoiceReason.STORED_VECTOR_USABLE,
                            f"the stored vector sums {stored.event_count} events, the newest {age_ms} ms old")


def _candidate(reason: ChoiceReason, detail: str) -> VectorChoice:
    return VectorChoice(VectorSource.CANDIDATE, reason, detail)
