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
POST /v1/rollback (all /v1 calls need
`Authorization: Bearer <GENERATION_TOKEN>` when it is set), GET /healthz (process alive), GET /readyz (a model is loaded and warm).
Errors are JSON `{"error": code, "detail": plain sentence}`.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from generation.api import (
    DIGITS_HEADER,
    MODEL_VERSION_HEADER,
    PNG,
    SEED_HEADER,
    TIMEOUT_HEADER,
    DeadlineExceeded,
    GenerationError,
    GeneratorUnavailable,
    ImageRequest,
    InvalidRequest,
    ModelInfo,
    ModelKind,
    ModelVersion,
    Overloaded,
    RollbackRequest,
    TextRequest,
    explain_validation_error,
)
from generation.service.engine import GenerationEngine
from generation.settings import GenerationSettings

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024  # the largest valid request (a 500-character prompt) is far smaller


class ServiceError(Exception):
    """An error answered as `{"error": code, "detail": ...}` with an HTTP status."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers


def service_error_for(exc: GenerationError) -> ServiceError:
    """Map the engine's errors to HTTP; the client maps them back (see generation.client)."""
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


def create_app(settings: GenerationSettings, engine: GenerationEngine | None = None) -> FastAPI:
    """The service app; `engine` defaults to one built from settings (tests pass their own)."""
    engine = engine or GenerationEngine.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await engine.start()
        try:
            yield
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

    app.include_router(v1)
    return app
