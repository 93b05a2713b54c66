"""The HTTP face of the GenerationEngine (FastAPI on uvicorn).

Why FastAPI + uvicorn: the service is a handful of JSON endpoints whose bodies are exactly the
pydantic models in generation.api, and FastAPI validates those models natively (one definition of
the limits for bot, client and service); it is async, so thousands of waiting requests cost no
threads while the micro-batcher runs the model in its own thread; uvicorn is the standard
production ASGI server with graceful shutdown (in-flight requests finish on SIGTERM). Both are
mature and widely deployed, which matters more here than the last few percent of speed. The
service runs as ONE process on purpose: batching needs every request for a model in one queue,
and the model is loaded once.

Endpoints: POST /v1/image, POST /v1/text, GET /v1/models, POST /v1/reload, GET /v1/versions/{kind},
POST /v1/rollback, and training on this host (generation.service.jobs): POST /v1/train, GET /v1/jobs,
GET /v1/jobs/{id}, GET /v1/jobs/{id}/events (server-sent events), POST /v1/jobs/{id}/cancel,
GET /v1/jobs/{id}/sample. All /v1 calls need `Authorization: Bearer <GENERATION_TOKEN>` when it is set;
GET /healthz (process alive) and GET /readyz (a model is loaded and warm) stay open.
Errors are JSON `{"error": code, "detail": plain sentence}`.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from generation.api import (
    DEFAULT_TEXT_LENGTH,
    DIGITS_HEADER,
    JOB_ID_HEADER,
    JOB_KIND_HEADER,
    MAX_IMAGES,
    MAX_PROMPT_CHARS,
    MAX_TEXT_LENGTH,
    MODEL_KINDS,
    MODEL_VERSION_HEADER,
    PNG,
    SEED_HEADER,
    TIMEOUT_HEADER,
    DeadlineExceeded,
    GenerationError,
    GeneratorUnavailable,
    ImageRequest,
    InvalidRequest,
    JobConflict,
    JobInfo,
    JobProgress,
    ModelInfo,
    ModelKind,
    ModelVersion,
    NoSample,
    Overloaded,
    RollbackRequest,
    TextRequest,
    TrainRequest,
    UnknownJob,
    explain_validation_error,
)
from generation.service.engine import GenerationEngine
from generation.service.jobs import TrainingJobs, generation_trainers
from generation.settings import GenerationSettings

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024  # the largest valid request (a 500-character prompt) is far smaller
SSE_KEEPALIVE_S = 15.0  # a comment line this often keeps proxies from closing a quiet event stream


class ServiceError(Exception):
    """An error answered as `{"error": code, "detail": ...}` with an HTTP status."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers


def service_error_for(exc: GenerationError) -> ServiceError:
    """Map the engine's and the jobs' errors to HTTP; the client maps them back (see generation.client)."""
    if isinstance(exc, UnknownJob):
        return ServiceError(404, "unknown_job", str(exc))
    if isinstance(exc, JobConflict):
        headers = {JOB_ID_HEADER: exc.job_id, JOB_KIND_HEADER: exc.kind}
        return ServiceError(409, "job_running", f"{exc}; cancel it or wait", headers)
    if isinstance(exc, NoSample):
        return ServiceError(409, "no_sample", str(exc))
    if isinstance(exc, InvalidRequest):
        return ServiceError(422, "invalid_request", str(exc))
    if isinstance(exc, DeadlineExceeded):
        return ServiceError(504, "deadline_exceeded", str(exc))
    if isinstance(exc, Overloaded):
        return ServiceError(503, "overloaded", str(exc), {"Retry-After": "1"})
    if isinstance(exc, GeneratorUnavailable):
        return ServiceError(503, "unavailable", str(exc))
    return ServiceError(500, "generation_failed", str(exc) or "the generator failed")


class RequestGuard:
    """Checks the bearer token and the body size of /v1 calls before anything parses them.

    Health checks stay open so orchestrators can probe without the secret. The token is compared
    in constant time and never logged.
    """

    def __init__(self, app: ASGIApp, token: str | None, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode() if token else None
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            refusal = self._refusal(dict(scope["headers"]))
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, headers: dict[bytes, bytes]) -> JSONResponse | None:
        if self.expected is not None:
            given = headers.get(b"authorization", b"").strip()
            if not given:
                return _refuse(
                    401, "unauthorized", "a bearer token is required", {"WWW-Authenticate": "Bearer"}
                )
            if not hmac.compare_digest(given, self.expected):
                return _refuse(401, "unauthorized", "the token is not valid", {"WWW-Authenticate": "Bearer"})
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            return _refuse(
                413, "payload_too_large", f"the request body must be at most {self.max_body_bytes} bytes"
            )
        return None


def _refuse(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def requested_timeout(request: Request) -> float | None:
    """The caller's remaining patience from X-Request-Timeout, if it sent a sane one."""
    raw = request.headers.get(TIMEOUT_HEADER)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if value > 0 else None


def training_jobs(settings: GenerationSettings) -> TrainingJobs:
    """The service's training jobs: the companion trainer on this host's DATA_DIR, recorded under
    DATA_DIR/jobs."""
    return TrainingJobs(
        settings.data_dir, generation_trainers(MODEL_KINDS), records_dir=settings.data_dir / "jobs"
    )


def swap_in_promoted(engine: GenerationEngine) -> Callable[[JobInfo], Awaitable[None]]:
    """The jobs' finish hook: a promoted model is served here before anyone following its job hears
    that the job ended."""

    async def swap_in(job: JobInfo) -> None:
        if job.report is not None and job.report.promoted:
            models = await engine.reload()
            serving = next((model.version for model in models if model.kind == job.kind), None)
            logger.info("job %s: %s now serves %s", job.id, job.kind, serving)

    return swap_in


def create_app(
    settings: GenerationSettings, engine: GenerationEngine | None = None, jobs: TrainingJobs | None = None
) -> FastAPI:
    """The service app; `engine` and `jobs` default to ones built from settings (tests pass their own)."""
    engine = engine or GenerationEngine.from_settings(settings)
    jobs = jobs or training_jobs(settings)
    jobs.on_finished = swap_in_promoted(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await jobs.recover()  # jobs a previous run of the service left running: failed, cleaned up
        await engine.start()
        try:
            yield
        finally:
            try:
                await jobs.shutdown("the generation service stopped")
            finally:
                await engine.stop()

    app = FastAPI(title="startup-guide-bot generation service", version="1", lifespan=lifespan)
    app.add_middleware(RequestGuard, token=settings.token)

    @app.exception_handler(ServiceError)
    async def on_service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse(
            {"error": exc.code, "detail": exc.detail}, status_code=exc.status, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def on_invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = explain_validation_error(list(exc.errors()))
        return JSONResponse({"error": "invalid_request", "detail": detail}, status_code=422)

    @app.exception_handler(GenerationError)
    async def on_generation_error(request: Request, exc: GenerationError) -> JSONResponse:
        return await on_service_error(request, service_error_for(exc))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up and answering."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """Ready when at least one model is loaded and warmed up."""
        body: dict[str, Any] = {
            "ready": engine.ready,
            "device": engine.device,
            "models": {info.kind: info.version for info in await engine.models()},
            "batching": engine.batching_stats(),
        }
        return JSONResponse(body, status_code=200 if engine.ready else 503)

    v1 = APIRouter(prefix="/v1")

    @v1.post("/image", response_model=None)
    async def image(body: ImageRequest, request: Request) -> Response:
        """A PNG grid as base64 JSON (or raw PNG bytes with `Accept: image/png`)."""
        result = await engine.image(body, requested_timeout(request))
        if request.headers.get("accept", "").startswith(PNG):
            headers = {
                MODEL_VERSION_HEADER: result.model_version,
                SEED_HEADER: str(result.seed),
                DIGITS_HEADER: json.dumps(result.digits, separators=(",", ":")),
            }
            return Response(result.png, media_type=PNG, headers=headers)
        return JSONResponse(result.to_json())

    @v1.post("/text")
    async def text(body: TextRequest, request: Request) -> JSONResponse:
        """Generated text, prompt included, with the model version and seed."""
        result = await engine.text(body, requested_timeout(request))
        return JSONResponse(result.model_dump())

    @v1.get("/models")
    async def models() -> list[ModelInfo]:
        """The champion serving each kind, with its metrics."""
        return await engine.models()

    @v1.post("/reload")
    async def reload() -> list[ModelInfo]:
        """Swap in the current champions; in-flight requests finish on the old ones."""
        return await engine.reload()

    @v1.get("/versions/{kind}")
    async def versions(kind: ModelKind) -> list[ModelVersion]:
        """Stored versions of one generator, newest first, with status, metrics and dates."""
        return await engine.versions(kind)

    @v1.post("/rollback")
    async def rollback(body: RollbackRequest) -> ModelVersion:
        """Make an earlier version champion again (default: the previous one) and hot-swap it in."""
        return await engine.rollback(body.kind, body.version)

    @v1.post("/train", status_code=202)
    async def train(body: TrainRequest) -> JobInfo:
        """Start the companion trainer for a kind on this host; 409 while that kind has a job."""
        try:
            return await jobs.start(body.kind, body.recipe, body.dry_run)
        except OSError as exc:
            raise ServiceError(500, "trainer_failed", f"the trainer could not start: {exc}") from None

    @v1.get("/jobs")
    async def list_jobs() -> list[JobInfo]:
        """Running jobs, then the last finished ones, newest first."""
        return jobs.list()

    @v1.get("/jobs/{job_id}")
    async def job(job_id: str) -> JobInfo:
        """A job's state, progress and, once it is over, its report."""
        return jobs.get(job_id)

    @v1.get("/jobs/{job_id}/events")
    async def job_events(job_id: str, request: Request) -> StreamingResponse:
        """Server-sent events: `progress` per trainer line (its id counts them, so a client that
        reconnects with Last-Event-ID misses none), then one `end` with the job as it ended."""
        jobs.get(job_id)  # an unknown id is answered 404 before the stream starts
        after = request.headers.get("last-event-id", "")
        stream = _sse(jobs, job_id, int(after) if after.isdigit() else 0)
        return StreamingResponse(
            stream, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    @v1.post("/jobs/{job_id}/cancel")
    async def cancel(job_id: str) -> JobInfo:
        """Stop a job and answer once it is over (a job already over is answered as it is)."""
        return await jobs.cancel(job_id)

    @v1.get("/jobs/{job_id}/sample", response_model=None)
    async def sample(
        job_id: str,
        seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
        images: Annotated[int, Query(ge=1, le=MAX_IMAGES)] = 8,
        prompt: Annotated[str, Query(max_length=MAX_PROMPT_CHARS)] = "",
        length: Annotated[int, Query(ge=1, le=MAX_TEXT_LENGTH)] = DEFAULT_TEXT_LENGTH,
    ) -> Response:
        """A sample of the job's candidate, served or not: a PNG grid, or `{"text": ...}`."""
        try:
            drawn = await jobs.sample(job_id, seed=seed, images=images, prompt=prompt, length=length)
        except (OSError, RuntimeError, TimeoutError) as exc:
            raise ServiceError(500, "sample_failed", str(exc) or "sampling failed") from None
        if isinstance(drawn, bytes):
            return Response(drawn, media_type=PNG)
        return JSONResponse({"text": drawn})

    app.include_router(v1)
    return app


async def _sse(jobs: TrainingJobs, job_id: str, after: int) -> AsyncIterator[str]:
    """The job's events as server-sent events, with a keep-alive comment while it is quiet."""
    number = after
    async for event in jobs.events(job_id, after, heartbeat_s=SSE_KEEPALIVE_S):
        if event is None:
            yield ": keep-alive\n\n"
        elif isinstance(event, JobProgress):
            number += 1
            yield f"id: {number}\nevent: progress\ndata: {event.model_dump_json()}\n\n"
        else:
            yield f"event: end\ndata: {event.model_dump_json()}\n\n"
