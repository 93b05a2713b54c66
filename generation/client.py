"""GenerationClient: the only generation object the bot uses.

With GENERATION_URL empty it drives a GenerationEngine in this process, the same engine (and so the
same micro-batcher, off the event loop) the service runs; torch loads only when it starts. With a URL it calls
`python -m generation.serve` over HTTP: one budget per call (GENERATION_TIMEOUT_S, retries
included), retries with jittered backoff for failures that are safe to retry (every endpoint is
free of side effects except reload, which is idempotent), and a circuit breaker so that a service
that is down makes calls fail in milliseconds instead of hanging the bot. Either way, errors are
InvalidRequest (a limit, with a plain message) or GeneratorUnavailable (and its subclasses).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import aiohttp
from pydantic import BaseModel, ValidationError

from generation.api import (
    DIGITS_HEADER,
    JOB_ID_HEADER,
    JOB_KIND_HEADER,
    MODEL_KINDS,
    MODEL_VERSION_HEADER,
    PNG,
    SEED_HEADER,
    TIMEOUT_HEADER,
    DeadlineExceeded,
    GenerationError,
    GeneratorUnavailable,
    ImageRequest,
    ImageResult,
    InvalidRequest,
    JobConflict,
    JobInfo,
    JobProgress,
    ModelInfo,
    ModelKind,
    ModelVersion,
    NoSample,
    Overloaded,
    RecipeValue,
    RollbackRequest,
    TextRequest,
    TextResult,
    TrainRequest,
    UnknownJob,
    explain_validation_error,
    recipe_from_args,
)
from generation.service.engine import GenerationEngine
from generation.service.jobs import Trainer, TrainingJobs, generation_trainers
from generation.settings import GenerationSettings

logger = logging.getLogger(__name__)

JSON = "application/json"
EVENT_STREAM = "text/event-stream"
JOB_CALL_TIMEOUT_S = 180.0  # cancel waits for the trainer to stop and clean up; a sample loads a model
EVENTS_READ_TIMEOUT_S = 60.0  # the service sends a keep-alive far more often than this
_MODEL_INFO_TTL_S = 30.0  # how long "the service has no model" is believed without asking again
RequestT = TypeVar("RequestT", bound=BaseModel)


class CircuitBreaker:
    """Closed -> open after `failure_threshold` failed calls in a row -> half-open after `reset_after_s`.

    Half-open lets one probe call through: success closes the circuit, failure opens it again.
    """

    def __init__(
        self,
        failure_threshold: int = 3,
        reset_after_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        """`closed`, `open` or `half-open`."""
        if self._opened_at is None:
            return "closed"
        if self._probing or self._clock() - self._opened_at >= self.reset_after_s:
            return "half-open"
        return "open"

    def allows_call(self) -> bool:
        """Whether a call would be let through now (changes nothing)."""
        state = self.state
        return state == "closed" or (state == "half-open" and not self._probing)

    def retry_in(self) -> float:
        """Seconds until a probe will be let through (0 when closed)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self.reset_after_s - self._clock())

    def before_call(self) -> None:
        """Raise GeneratorUnavailable at once while open; in half-open, let exactly one probe through."""
        state = self.state
        if state == "closed":
            return
        if state == "half-open" and not self._probing:
            self._probing = True
            return
        raise GeneratorUnavailable(
            f"the generation service is not reachable; trying again in {max(self.retry_in(), 0.1):.0f} s"
        )

    def record_success(self) -> None:
        """The service answered: close the circuit."""
        if self._opened_at is not None:
            logger.info("generation service is reachable again; circuit closed")
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def abandon_call(self) -> None:
        """A call was cancelled before it could tell: let the next call probe instead."""
        self._probing = False

    def record_failure(self) -> None:
        """The service failed a call: count it, open (or re-open) the circuit when over the threshold."""
        self._failures += 1
        if self._probing or self._failures >= self.failure_threshold:
            if self._opened_at is None or self._probing:
                logger.warning("generation service failing; circuit open for %.1f s", self.reset_after_s)
            self._opened_at = self._clock()
            self._probing = False


class HttpBackend:
    """Calls the generation service: per-call budget, retries with backoff, circuit breaker, bearer token.

    aiohttp rather than httpx: under concurrent load httpx's connection pool costs many times aiohttp's
    CPU per request (README, "Generation service"), and the bot shares its CPU with everything else.
    Images come back as raw PNG bytes with the
    version, seed and digits in headers, so neither side base64-encodes or parses a large JSON body.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout_s: float = 20.0,
        retries: int = 2,
        breaker: CircuitBreaker | None = None,
        backoff_s: float = 0.1,
        max_connections: int = 128,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self.breaker = breaker or CircuitBreaker()
        self.backoff_s = backoff_s
        self.max_connections = max_connections
        self._token = token
        self._session: aiohttp.ClientSession | None = None
        self._missing_since: dict[str, float] = {}  # kind -> when the service said it has none

    @classmethod
    def from_settings(cls, settings: GenerationSettings) -> HttpBackend:
        """A backend for GENERATION_URL with the configured budget, retries and breaker."""
        breaker = CircuitBreaker(settings.generation_breaker_failures, settings.generation_breaker_reset_s)
        return cls(
            settings.generation_url,
            token=settings.token,
            timeout_s=settings.generation_timeout_s,
            retries=settings.generation_retries,
            breaker=breaker,
        )

    async def start(self) -> None:
        """Open the connection pool and ask which models the service has (a service still down is fine)."""
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        self._session = aiohttp.ClientSession(
            headers=headers,
            connector=aiohttp.TCPConnector(limit=self.max_connections),
            cookie_jar=aiohttp.DummyCookieJar(),  # the service sets none; skip the bookkeeping
        )
        try:
            await self.models()
        except GenerationError as exc:
            logger.warning("generation service at %s not usable yet: %s", self.base_url, exc)

    async def image(self, request: ImageRequest) -> ImageResult:
        answer = await self.call("POST", "/v1/image", request.model_dump(), kind=request.model, accept=PNG)
        if isinstance(answer, _PngAnswer):
            return answer.result()
        return ImageResult.from_json(answer)

    async def text(self, request: TextRequest) -> TextResult:
        data = await self.call("POST", "/v1/text", request.model_dump(), kind=request.model)
        return TextResult.model_validate(data)

    async def models(self) -> list[ModelInfo]:
        infos = [ModelInfo.model_validate(item) for item in await self.call("GET", "/v1/models")]
        self._remember(infos)
        return infos

    async def reload(self) -> list[ModelInfo]:
        infos = [ModelInfo.model_validate(item) for item in await self.call("POST", "/v1/reload")]
        self._remember(infos)
        return infos

    async def versions(self, kind: ModelKind) -> list[ModelVersion]:
        return [ModelVersion.model_validate(item) for item in await self.call("GET", f"/v1/versions/{kind}")]

    async def rollback(self, kind: ModelKind, version: str | None) -> ModelVersion:
        body = RollbackRequest(kind=kind, version=version).model_dump()
        champion = ModelVersion.model_validate(await self.call("POST", "/v1/rollback", body))
        self._mark(kind, loaded=True)
        return champion

    async def stream(self, path: str, last_event_id: int = 0) -> AsyncIterator[tuple[str, str]]:
        """(event name, data) of a server-sent event stream, from after `last_event_id`, without a
        deadline (the service sends keep-alives); GeneratorUnavailable when it cannot be had or breaks."""
        if self._session is None:
            raise GeneratorUnavailable("the generation client is not initialized")
        headers = {"Accept": EVENT_STREAM, "Last-Event-ID": str(last_event_id)}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=2.0, sock_read=EVENTS_READ_TIMEOUT_S)
        try:
            async with self._session.get(self.base_url + path, headers=headers, timeout=timeout) as response:
                if response.status >= 400:
                    error = _error_for_response(response.status, await response.read(), response.headers)
                    raise error.error if isinstance(error, _Retryable | _ServiceFailure) else error
                async for event in _server_sent_events(response.content):
                    yield event
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise GeneratorUnavailable(f"the event stream broke off: {type(exc).__name__}") from None

    def available_for(self, kind: ModelKind | None) -> bool:
        if self._session is None or not self.breaker.allows_call():
            return False
        if kind is None:
            return not all(self._known_missing(each) for each in MODEL_KINDS)
        return not self._known_missing(kind)

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _remember(self, infos: list[ModelInfo]) -> None:
        for info in infos:
            self._mark(info.kind, loaded=info.version is not None)

    def _mark(self, kind: str, loaded: bool) -> None:
        if loaded:
            self._missing_since.pop(kind, None)
        else:
            self._missing_since[kind] = time.monotonic()

    def _known_missing(self, kind: str) -> bool:
        """The service said lately that it has no such model (after a while, let a call ask again)."""
        since = self._missing_since.get(kind)
        return since is not None and time.monotonic() - since < _MODEL_INFO_TTL_S

    async def call(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        kind: str | None = None,
        accept: str = JSON,
        *,
        timeout_s: float | None = None,
        retries: int | None = None,
    ) -> Any:
        """One logical call: retries inside one budget; the breaker sees only the final outcome.
        `timeout_s` and `retries` override the client's (a call with side effects is never retried)."""
        if self._session is None:
            raise GeneratorUnavailable("the generation client is not initialized")
        self.breaker.before_call()
        try:
            return await self._call_with_retries(
                method,
                path,
                body,
                kind,
                accept,
                self.timeout_s if timeout_s is None else timeout_s,
                self.retries if retries is None else retries,
            )
        except asyncio.CancelledError:
            self.breaker.abandon_call()
            raise

    async def _call_with_retries(
        self,
        method: str,
        path: str,
        body: dict | None,
        kind: str | None,
        accept: str,
        budget_s: float,
        retries: int,
    ) -> Any:
        deadline = time.monotonic() + budget_s
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise DeadlineExceeded(f"the generation service did not answer within {budget_s:.0f} s")
                data = await self._attempt(method, path, body, remaining, accept)
            except _Retryable as exc:
                attempt += 1
                pause = self._backoff(attempt, exc.retry_after)
                if attempt > retries or time.monotonic() + pause >= deadline:
                    self.breaker.record_failure()
                    raise exc.error from None
                logger.info(
                    "generation call %s %s failed (%s); retry %d in %.2f s", method, path, exc, attempt, pause
                )
                await asyncio.sleep(pause)
                continue
            except (DeadlineExceeded, _ServiceFailure) as exc:
                self.breaker.record_failure()
                raise (exc.error if isinstance(exc, _ServiceFailure) else exc) from None
            except _NoModel:
                self.breaker.record_success()  # the service answered; it just has no such model
                if kind is not None:
                    self._mark(kind, loaded=False)
                raise
            except GenerationError:
                self.breaker.record_success()
                raise
            self.breaker.record_success()
            if kind is not None:
                self._mark(kind, loaded=True)
            return data

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Full jitter, doubling per attempt; a server's Retry-After is a floor (capped at 2 s)."""
        pause = random.uniform(0, self.backoff_s * 2 ** (attempt - 1))
        if retry_after is not None:
            pause = max(pause, min(retry_after, 2.0))
        return pause

    async def _attempt(self, method: str, path: str, body: dict | None, remaining: float, accept: str) -> Any:
        assert self._session is not None
        # Tell the service how long we will wait, a little less than our budget, so it answers with a
        # clean deadline error before our own read timeout fires.
        headers = {TIMEOUT_HEADER: f"{max(remaining * 0.95 - 0.05, 0.01):.3f}", "Accept": accept}
        timeout = aiohttp.ClientTimeout(total=remaining, sock_connect=min(remaining, 2.0))
        try:
            async with self._session.request(
                method, self.base_url + path, json=body, headers=headers, timeout=timeout
            ) as response:
                content = await response.read()
                status, answer_headers = response.status, response.headers
        except aiohttp.ConnectionTimeoutError as exc:
            raise _Retryable(GeneratorUnavailable("the generation service is not reachable"), exc) from None
        except TimeoutError:  # the budget ran out while waiting for the answer
            raise DeadlineExceeded(
                f"the generation service did not answer within {timeout.total:.0f} s"
            ) from None
        except aiohttp.ClientError as exc:  # refused, reset, dropped keep-alive connection, cut short
            raise _Retryable(GeneratorUnavailable("the generation service is not reachable"), exc) from None
        if status >= 400:
            raise _error_for_response(status, content, answer_headers)
        if answer_headers.get("Content-Type", "").startswith(PNG):
            return _PngAnswer(content, answer_headers)
        try:
            return json.loads(content)
        except ValueError:
            raise _ServiceFailure(
                GeneratorUnavailable("unexpected answer from the generation service (not JSON)")
            ) from None


class _PngAnswer:
    """A raw PNG answer; what made it travels in headers (see generation.service.app)."""

    def __init__(self, png: bytes, headers: Mapping[str, str]) -> None:
        self.png, self.headers = png, headers

    def result(self) -> ImageResult:
        try:
            return ImageResult(
                png=self.png,
                model_version=self.headers[MODEL_VERSION_HEADER],
                seed=int(self.headers[SEED_HEADER]),
                digits=json.loads(self.headers[DIGITS_HEADER]),
            )
        except (KeyError, ValueError, ValidationError):
            raise GeneratorUnavailable(
                "unexpected answer from the generation service (PNG headers)"
            ) from None


class _Retryable(Exception):
    """Internal: a failure worth another try (the request never reached the model, or was shed)."""

    def __init__(self, error: GenerationError, cause: object, retry_after: float | None = None) -> None:
        super().__init__(str(cause) or type(cause).__name__)
        self.error, self.retry_after = error, retry_after


class _NoModel(GeneratorUnavailable):
    """Internal: the service is fine but has no model of the requested kind."""


class _ServiceFailure(Exception):
    """Internal: the service is up but broken in a way that counts against the circuit."""

    def __init__(self, error: GenerationError) -> None:
        super().__init__(str(error))
        self.error = error


def _error_for_response(status: int, content: bytes, headers: Mapping[str, str]) -> Exception:
    """Map the service's error JSON (see generation.service.app) back to generation.api errors."""
    try:
        payload = json.loads(content)
        code, detail = str(payload.get("error", "")), str(payload.get("detail", ""))
    except (ValueError, AttributeError):
        code, detail = "", ""
    if status in (400, 413, 422) or code == "invalid_request":
        return InvalidRequest(detail or "the request breaks a limit")
    if status in (401, 403):
        return GeneratorUnavailable("the generation service refused our token (check GENERATION_TOKEN)")
    if code == "job_running":
        return JobConflict(headers.get(JOB_KIND_HEADER, "?"), headers.get(JOB_ID_HEADER, "?"))
    if code == "unknown_job":
        return UnknownJob(detail)
    if code == "no_sample":
        return NoSample(detail)
    if code == "overloaded" or status == 429:
        retry_after = _parse_retry_after(headers.get("Retry-After"))
        return _Retryable(
            Overloaded(detail or "the generation service is busy"), f"HTTP {status}", retry_after
        )
    if code == "deadline_exceeded":
        return DeadlineExceeded(detail or "the generation service ran out of time")
    if code == "unavailable":
        return _NoModel(detail or "the generation service has no model for this")
    if code == "generation_failed":
        return GeneratorUnavailable("the generator failed on this request")
    if status >= 500:  # a proxy's 502/503/504 or an unexpected crash: worth another try
        return _Retryable(
            GeneratorUnavailable(f"the generation service failed (HTTP {status})"), f"HTTP {status}"
        )
    return _ServiceFailure(
        GeneratorUnavailable(f"unexpected answer from the generation service (HTTP {status})")
    )


def _parse_retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class HttpJobs:
    """Training jobs on the generation service, with the methods of the in-process runner
    (generation.service.jobs.TrainingJobs) that the bot uses: one job interface, two places to train."""

    def __init__(self, http: HttpBackend, timeout_s: float = JOB_CALL_TIMEOUT_S) -> None:
        self.http = http
        self.timeout_s = timeout_s

    async def start(
        self,
        kind: str,
        recipe: Mapping[str, RecipeValue] | None = None,
        dry_run: bool = False,
        extra_args: Sequence[str] = (),
    ) -> JobInfo:
        """POST /v1/train; JobConflict while the service trains this kind. `extra_args` are trainer
        options, sent as recipe settings (ValueError for one a recipe cannot say)."""
        extra_recipe, extra_dry_run = recipe_from_args(extra_args)
        try:
            body = TrainRequest.model_validate(
                {
                    "kind": kind,
                    "recipe": {**extra_recipe, **(recipe or {})},
                    "dry_run": dry_run or extra_dry_run,
                }
            )
        except ValidationError as exc:
            raise InvalidRequest(explain_validation_error(exc)) from None
        data = await self.http.call(
            "POST", "/v1/train", body.model_dump(), timeout_s=self.timeout_s, retries=0
        )
        return JobInfo.model_validate(data)

    async def get(self, job_id: str) -> JobInfo:
        return JobInfo.model_validate(await self.http.call("GET", f"/v1/jobs/{quote(job_id)}"))

    async def list(self) -> list[JobInfo]:
        return [JobInfo.model_validate(item) for item in await self.http.call("GET", "/v1/jobs")]

    async def cancel(self, job_id: str) -> JobInfo:
        """Stop the job; answered once it is over (or as it is, when it was over already)."""
        path = f"/v1/jobs/{quote(job_id)}/cancel"
        return JobInfo.model_validate(await self.http.call("POST", path, timeout_s=self.timeout_s, retries=0))

    async def sample(self, job_id: str, *, seed: int, images: int, prompt: str, length: int) -> bytes | str:
        """A sample of the job's candidate: PNG bytes for an image model, the text for a text model."""
        query = urlencode({"seed": seed, "images": images, "prompt": prompt, "length": length})
        answer = await self.http.call(
            "GET",
            f"/v1/jobs/{quote(job_id)}/sample?{query}",
            accept=f"{PNG}, {JSON}",
            timeout_s=self.timeout_s,
        )
        if isinstance(answer, _PngAnswer):
            return answer.png
        if isinstance(answer, dict) and isinstance(answer.get("text"), str):
            return answer["text"]
        raise GeneratorUnavailable("unexpected answer from the generation service (sample)")

    async def events(self, job_id: str, after: int = 0) -> AsyncIterator[JobProgress | JobInfo]:
        """The job's progress lines after the `after`-th, as the service sends them, then the job as it
        ended. A dropped stream raises GeneratorUnavailable: ask again with `after` set to the lines
        already seen, and none is missed or repeated."""
        try:
            async for name, data in self.http.stream(f"/v1/jobs/{quote(job_id)}/events", after):
                if name == "progress":
                    yield JobProgress.model_validate_json(data)
                elif name == "end":
                    yield JobInfo.model_validate_json(data)
                    return
        except ValidationError:
            raise GeneratorUnavailable("unexpected event from the generation service") from None
        raise GeneratorUnavailable("the job's event stream ended before the job did")


async def _server_sent_events(stream: aiohttp.StreamReader) -> AsyncIterator[tuple[str, str]]:
    """(event name, data) of each server-sent event; comments (keep-alives) are skipped."""
    name, data = "message", []
    async for raw in stream:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield name, "\n".join(data)
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))


def local_jobs(
    data_dir: Path, trainers: Mapping[str, Trainer] | None = None, *, cancel_grace_s: float = 10.0
) -> TrainingJobs:
    """Training jobs this process runs: the generators' companion trainer (when no generation service
    trains them), plus `trainers`, kinds of the caller's own or stand-ins."""
    every = {**generation_trainers(MODEL_KINDS), **(trainers or {})}
    return TrainingJobs(data_dir, every, cancel_grace_s=cancel_grace_s)


class GenerationClient:
    """Images and texts for the bot: checks each call, then hands it to whichever runs the models, the
    in-process engine or the generation service (both offer the same async methods)."""

    def __init__(self, backend: GenerationEngine | HttpBackend) -> None:
        self._backend = backend

    @classmethod
    def from_settings(cls, settings: GenerationSettings) -> GenerationClient:
        """HTTP when GENERATION_URL is set, in-process otherwise."""
        if settings.generation_url:
            return cls(HttpBackend.from_settings(settings))
        return cls(GenerationEngine.from_settings(settings))

    @property
    def remote(self) -> bool:
        """True when a generation service runs the models (it then trains and swaps its own)."""
        return isinstance(self._backend, HttpBackend)

    @property
    def jobs(self) -> HttpJobs | None:
        """The service's training jobs when a service runs the models (None in-process: trainers then run
        on this host, see local_jobs)."""
        return HttpJobs(self._backend) if isinstance(self._backend, HttpBackend) else None

    @property
    def backend(self) -> GenerationEngine | HttpBackend:
        """The in-process engine or the HTTP backend (for diagnostics and tests)."""
        return self._backend

    async def initialize(self) -> None:
        """In-process: load and warm up the champions off the event loop. HTTP: open the connection pool."""
        await self._backend.start()

    async def image(self, request: ImageRequest) -> ImageResult:
        """A PNG grid; raises InvalidRequest or GeneratorUnavailable."""
        return await self._backend.image(_checked(request))

    async def text(self, request: TextRequest) -> TextResult:
        """Generated text, prompt included; raises InvalidRequest or GeneratorUnavailable."""
        return await self._backend.text(_checked(request))

    async def models(self) -> list[ModelInfo]:
        """The champion serving each kind."""
        return await self._backend.models()

    async def reload(self) -> list[ModelInfo]:
        """Swap in the current champions; requests in flight finish on the old ones."""
        return await self._backend.reload()

    async def versions(self, kind: ModelKind) -> list[ModelVersion]:
        """Stored versions of `kind`, newest first: the champion, previous champions, rejected candidates."""
        return await self._backend.versions(_checked_kind(kind))

    async def rollback(self, kind: ModelKind, version: str | None = None) -> ModelVersion:
        """Make `version` (default: the previous champion) champion again and hot-swap it in, as reload
        does; InvalidRequest when there is no such version (nothing changes then)."""
        return await self._backend.rollback(_checked_kind(kind), version)

    @property
    def available(self) -> bool:
        """Quick check: False while the circuit is open or no model is loaded."""
        return self._backend.available_for(None)

    def available_for(self, kind: ModelKind) -> bool:
        """Like `available`, for one kind (`gan` or `vae` for images, `lstm` for text)."""
        return self._backend.available_for(kind)

    async def shutdown(self) -> None:
        """Finish or refuse what is queued, then release threads and connections."""
        await self._backend.stop()


def _checked_kind(kind: str) -> ModelKind:
    if kind not in MODEL_KINDS:
        raise InvalidRequest(f"unknown model kind {kind!r}; expected one of {', '.join(MODEL_KINDS)}")
    return kind  # type: ignore[return-value]


def _checked(request: RequestT) -> RequestT:
    """Validate again (a request may have been built with model_construct); InvalidRequest on a broken limit."""
    try:
        return type(request).model_validate(request.model_dump())
    except ValidationError as exc:
        raise InvalidRequest(explain_validation_error(exc)) from None
