"""JSON bodies of the HTTP service, as pydantic models; they also make its OpenAPI document."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

_EPOCH_MS_MAX = 2**63 - 1


def utf8_encodable(text: str) -> str:
    """Return ``text`` if UTF-8 can encode it, else raise ValueError naming the bad character."""
    # JSON can carry lone surrogates such as "\ud800", which no UTF-8 key can hold.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"must be valid Unicode text, but contains {text[error.start:error.end]!r} "
                         f"at character {error.start}") from error
    return text


Identifier = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(utf8_encodable)]
"""A user id, video id or score name: 1 to 256 characters of valid Unicode."""


class _Body(BaseModel):
    # Strict: "3" is not a number and 2.0 not an integer, so a client's type bug gets a 422.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True, strict=True)


class HistoryItemBody(_Body):
    """One watched video of the user, in a rank request's history (oldest first)."""

    video_id: Identifier
    play_time_ms: float = Field(ge=0)
    """Watch time in ms."""
    duration_ms: float | None = Field(default=None, ge=0)
    """Video length in ms, 0 for image posts; omit when unknown."""
    time_ms: int | None = Field(default=None, ge=0, le=_EPOCH_MS_MAX)
    """Event time in epoch ms; omit when unknown. Items with times must be oldest first."""


class CandidateBody(_Body):
    """One video to rank."""

    video_id: Identifier
    scores: dict[Identifier, float] = {}
    """Other models' scores of this video, one per name in the service's ranking.score_weights."""


class RankRequestBody(_Body):
    """A ranking request: the user, their recent history and the candidates."""

    user_id: Identifier
    """User to rank for, as keyed in the feature topic."""
    candidates: list[CandidateBody] = Field(min_length=1)
    """Videos to rank, each once. The service's ranking.max_candidates limits the count."""
    history: list[HistoryItemBody] = []
    """The user's recent watches, oldest first. Only Candidate-DreamUMM reads them."""
    k: int | None = Field(default=None, ge=1)
    """Number of candidates to return; the service's ranking.default_k when omitted."""
    vector: Literal["auto", "candidate"] = "auto"
    """auto: the service's rule picks the stored vector or Candidate-DreamUMM. candidate: use
    Candidate-DreamUMM whatever the store holds."""
    now_ms: int | None = Field(default=None, ge=0, le=_EPOCH_MS_MAX)
    """Request time in epoch ms for the vector-age rule, for replays of past traffic; the server's
    clock when omitted."""


class RankedItemBody(_Body):
    """One returned candidate."""

    video_id: str
    score: float
    """Final score: interest_weight * interest_score + the weighted other scores."""
    interest_score: float
    """Inner product of the video's embedding with the user vector."""
    long_view_probability: float | None
    """f_seq's long-view probability, when Candidate-DreamUMM scored the request."""


class UnscoredBody(_Body):
    """A candidate the service could not score."""

    video_id: str
    reason: str


class StoredVectorSummary(_Body):
    """The feature store's entry for the user, whether or not the rule used it."""

    embedding_model_version: str
    event_count: int
    last_event_time_ms: int
    age_ms: int
    """Request time minus last_event_time_ms."""


class VectorChoiceBody(_Body):
    """The user vector that scored the request, and the reason for it."""

    source: Literal["dreamumm", "candidate_dreamumm"]
    reason: str
    detail: str
    stored: StoredVectorSummary | None


class WeightsBody(_Body):
    """The weighting of final scores."""

    interest: float
    others: dict[str, float]


class HistoryUseBody(_Body):
    """How much of the request's history f_seq used."""

    used: int
    without_embedding: int


class RankResponseBody(_Body):
    """The top k candidates, best first, and how they were scored."""

    user_id: str
    model_version: str
    """Embedding model version of every vector this response used."""
    items: list[RankedItemBody]
    vector: VectorChoiceBody
    unscored: list[UnscoredBody]
    weights: WeightsBody
    history: HistoryUseBody


class UserVectorBody(_Body):
    """A user's DreamUMM vector from the feature store."""

    user_id: str
    vector: list[float]
    embedding_model_version: str
    """Score only against videos of this embedding model version."""
    event_count: int
    total_weight: float
    last_event_time_ms: int
    emit_time_ms: int
    age_ms: int
    """Time since the newest contributing event, by the server's clock."""


class VectorsRequestBody(_Body):
    """A batch look-up of user vectors."""

    user_ids: list[Identifier] = Field(min_length=1, max_length=1_000)


class VectorsResponseBody(_Body):
    """The vectors of a batch look-up, in request order; null where the store has none."""

    vectors: list[UserVectorBody | None]


class ProblemBody(_Body):
    """One problem with a request."""

    field: str
    message: str


class ErrorBody(_Body):
    """Body of every 4xx and 5xx response."""

    error: str
    """Short code: invalid_request, not_found, method_not_allowed, request_too_large, not_ready or
    internal_error."""
    problems: list[ProblemBody]


class ReadinessBody(_Body):
    """Readiness of the service and the checks behind it."""

    ready: bool
    checks: dict[str, str]
    """Each check's state in words: "ok" or what is wrong."""
