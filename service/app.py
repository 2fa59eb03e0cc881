"""The HTTP service for rankers in other languages: rank, vector look-up, health and readiness.

``create_app(settings)`` returns the FastAPI application. ``/openapi.json`` serves its OpenAPI
document and ``/docs`` a browsable form of it. Every error response has the ``ErrorBody`` shape.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import FastAPI, Path, Request
from pydantic import AfterValidator
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from dreamumm.config import Settings, load_settings
from ranking import Candidate, HistoryItem, Ranker, RankRequestError, RankResult
from ranking.long_view import LongViewModel
from service.models import (
    ErrorBody,
    HistoryUseBody,
    ProblemBody,
    RankedItemBody,
    RankRequestBody,
    RankResponseBody,
    ReadinessBody,
    StoredVectorSummary,
    UnscoredBody,
    UserVectorBody,
    VectorChoiceBody,
    VectorsRequestBody,
    VectorsResponseBody,
    WeightsBody,
    utf8_encodable,
)
from service.limits import BodySizeLimit
from service.state import ServiceState
from store import FeatureStoreReader, StoredVector

logger = logging.getLogger(__name__)

API_VERSION = "1"
_ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    413: {"model": ErrorBody, "description": "The body is larger than serving.max_request_bytes."},
    422: {"model": ErrorBody, "description": "The request is invalid; problems name each bad field."},
    500: {"model": ErrorBody, "description": "The service failed; the server log has the traceback."},
    503: {"model": ErrorBody, "description": "The feature store is not open yet."},
}
_HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}


class _NotReady(Exception):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _error(status: int, code: str, problems: list[ProblemBody]) -> JSONResponse:
    return JSONResponse(status_code=status, content=ErrorBody(error=code, problems=problems).model_dump())


def _field_path(location: tuple[object, ...]) -> str:
    """Return a location such as ("body", "candidates", 2, "video_id") as candidates[2].video_id."""
    parts = location[1:] if location and location[0] in ("body", "path", "query") else location
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif path:
            path += f".{part}"
        else:
            path = str(part)
    return path or "body"


def _problem(item: Mapping[str, Any]) -> ProblemBody:
    """Return a validation error as a problem; a JSON syntax error names the body and its position."""
    if item.get("type") == "json_invalid":
        position = item["loc"][-1] if item["loc"] else "?"
        detail = item.get("ctx", {}).get("error", "")
        return ProblemBody(field="body", message=f"invalid JSON at character {position}: {detail}".rstrip(": "))
    return ProblemBody(field=_field_path(tuple(item["loc"])), message=item["msg"])


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _vector_body(stored: StoredVector, now_ms: int) -> UserVectorBody:
    return UserVectorBody(user_id=stored.user_id, vector=stored.vector.tolist(),
                          embedding_model_version=stored.embedding_model_version, event_count=stored.event_count,
                          total_weight=stored.total_weight, last_event_time_ms=stored.last_event_time_ms,
                          emit_time_ms=stored.emit_time_ms, age_ms=stored.age_ms(now_ms))


def _rank_body(result: RankResult) -> RankResponseBody:
    stored = result.stored_vector
    summary = None if stored is None else StoredVectorSummary(
        embedding_model_version=stored.embedding_model_version, event_count=stored.event_count,
        last_event_time_ms=stored.last_event_time_ms, age_ms=stored.age_ms(result.now_ms))
    return RankResponseBody(
        user_id=result.user_id,
        model_version=result.model_version,
        items=[RankedItemBody(video_id=item.video_id, score=item.score, interest_score=item.interest_score,
                              long_view_probability=item.long_view_probability) for item in result.items],
        vector=VectorChoiceBody(source=result.choice.source.value, reason=result.choice.reason.value,
                                detail=result.choice.detail, stored=summary),
        unscored=[UnscoredBody(video_id=item.video_id, reason=item.reason) for item in result.unscored],
        weights=WeightsBody(interest=result.weights.interest, others=dict(result.weights.others)),
        history=HistoryUseBody(used=result.history_used, without_embedding=result.history_without_embedding),
    )


def create_app(settings: Settings, long_view_model: LongViewModel | None = None) -> FastAPI:
    """Return the service's application over the store and model that ``settings`` name.

    The long-view model loads here, so a missing model file fails at once. The store opens when
    the application starts, or later once the materialiser has created it.
    """
    state = ServiceState(settings, long_view_model)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state.start()
        try:
            yield
        finally:
            state.close()

    app = FastAPI(title="DreamUMM ranking service", version=API_VERSION, lifespan=lifespan,
                  description="Ranks candidate videos for a user with their DreamUMM interest vector, or with "
                              "Candidate-DreamUMM when the rule says so, and serves the stored vectors.")
    app.state.service = state
    app.add_middleware(BodySizeLimit, max_bytes=settings.serving.max_request_bytes)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        logger.info("returned %s to %s %s: %s", error.status_code, request.method, request.url.path, error.detail)
        field = "body" if error.status_code == 413 else "path"
        response = _error(error.status_code, _HTTP_ERROR_CODES.get(error.status_code, "http_error"),
                          [ProblemBody(field=field, message=str(error.detail))])
        if error.headers:
            response.headers.update(error.headers)
        return response

    @app.exception_handler(Exception)
    async def failure(request: Request, error: Exception) -> JSONResponse:
        logger.exception("%s %s failed", request.method, request.url.path)
        return _error(500, "internal_error", [ProblemBody(field="", message=(
            f"the service failed with {type(error).__name__}; the server log has the traceback"))])

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [_problem(item) for item in error.errors()]
        if not request.headers.get("content-type", "").startswith("application/json") and request.method == "POST":
            problems.append(ProblemBody(field="content-type", message=(
                f"send the body as JSON with content-type: application/json, "
                f"got {request.headers.get('content-type', 'no content type')!r}")))
        logger.info("rejected %s %s: %s", request.method, request.url.path,
                    "; ".join(f"{problem.field}: {problem.message}" for problem in problems))
        return _error(422, "invalid_request", problems)

    @app.exception_handler(RankRequestError)
    async def invalid_rank_request(request: Request, error: RankRequestError) -> JSONResponse:
        logger.info("rejected %s %s: %s: %s", request.method, request.url.path, error.field, error)
        return _error(422, "invalid_request", [ProblemBody(field=error.field, message=str(error))])

    @app.exception_handler(_NotReady)
    async def not_ready(request: Request, error: _NotReady) -> JSONResponse:
        logger.warning("returned 503 to %s %s: %s", request.method, request.url.path, error.problem)
        return _error(503, "not_ready", [ProblemBody(field="store", message=error.problem)])

    def open_ranker() -> Ranker:
        ranker = state.ranker
        if ranker is None:
            raise _NotReady(state.store_problem)
        return ranker

    def open_reader() -> FeatureStoreReader:
        reader = state.reader
        if reader is None:
            raise _NotReady(state.store_problem)
        return reader

    @app.post("/v1/rank", response_model=RankResponseBody, responses=_ERROR_RESPONSES, tags=["ranking"])
    def rank(body: RankRequestBody) -> RankResponseBody:
        """Rank the candidates for the user and return the top k, best first."""
        ranking = settings.ranking
        if len(body.candidates) > ranking.max_candidates:
            raise RankRequestError("candidates", f"at most {ranking.max_candidates} candidates are allowed "
                                                 f"(ranking.max_candidates), got {len(body.candidates)}")
        if len(body.history) > ranking.max_history:
            raise RankRequestError("history", f"at most {ranking.max_history} history items are allowed "
                                              f"(ranking.max_history), got {len(body.history)}")
        k = ranking.default_k if body.k is None else body.k
        if k > ranking.max_k:
            raise RankRequestError("k", f"k must be at most {ranking.max_k} (ranking.max_k), got {k}")
        ranker = open_ranker()
        result = ranker.rank(
            body.user_id,
            [HistoryItem(item.video_id, item.play_time_ms, item.duration_ms, item.time_ms) for item in body.history],
            [Candidate(item.video_id, item.scores) for item in body.candidates],
            k, vector_request=body.vector, now_ms=body.now_ms)
        return _rank_body(result)

    # The path converter lets user ids contain slashes, sent as they are or as %2F.
    @app.get("/v1/users/{user_id:path}/vector", response_model=UserVectorBody,
             responses={404: {"model": ErrorBody, "description": "The store has no vector for this user."},
                        **_ERROR_RESPONSES}, tags=["vectors"])
    def user_vector(user_id: Annotated[str, Path(min_length=1, max_length=256), AfterValidator(utf8_encodable)]
                    ) -> UserVectorBody | JSONResponse:
        """Return the user's stored DreamUMM vector with its age and embedding model version."""
        reader = open_reader()
        stored = reader.get(user_id)
        if stored is None:
            return _error(404, "not_found", [ProblemBody(field="user_id", message=(
                f"the feature store has no vector for user {user_id!r}: the user has no contributing "
                "events yet, or was deleted"))])
        return _vector_body(stored, _now_ms())

    @app.post("/v1/users/vectors", response_model=VectorsResponseBody, responses=_ERROR_RESPONSES,
              tags=["vectors"])
    def user_vectors(body: VectorsRequestBody) -> VectorsResponseBody:
        """Return the stored vectors of up to 1,000 users, in request order, null where there is none."""
        reader = open_reader()
        now_ms = _now_ms()
        return VectorsResponseBody(vectors=[None if stored is None else _vector_body(stored, now_ms)
                                            for stored in reader.multi_get(body.user_ids)])

    @app.get("/health/live", tags=["health"])
    def live() -> dict[str, str]:
        """Liveness: the process handles requests."""
        return {"status": "ok"}

    @app.get("/health/ready", response_model=ReadinessBody,
             responses={503: {"model": ReadinessBody, "description": "A check failed; checks says which."}},
             tags=["health"])
    def ready() -> ReadinessBody | JSONResponse:
        """Readiness: the model is loaded, the store is open, and the materialiser is alive and has
        caught up with its topics once."""
        checks = state.readiness()
        body = ReadinessBody(ready=all(value == "ok" for value in checks.values()), checks=checks)
        return body if body.ready else JSONResponse(status_code=503, content=body.model_dump())

    return app


def create_app_from_environment() -> FastAPI:
    """Return the application configured by ``DREAMUMM_CONFIG`` and ``DREAMUMM__`` overrides.

    Uvicorn calls this in each worker process (``--factory``).
    """
    return create_app(load_settings())
