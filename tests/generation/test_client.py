"""GenerationClient: backend choice, in-process mode, retries, circuit breaker, request checks."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from generation.api import (
    GeneratorUnavailable,
    ImageRequest,
    InvalidRequest,
    TextRequest,
)
from generation.client import CircuitBreaker, GenerationClient, HttpBackend
from generation.service.engine import GenerationEngine
from generation.settings import GenerationSettings
from tests.generation.service_fixtures import FakeModelStore, fake_engine, free_port


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_from_settings_picks_http_with_a_url_and_in_process_without() -> None:
    remote = GenerationClient.from_settings(GenerationSettings(generation_url="http://gen:8080/"))
    local = GenerationClient.from_settings(GenerationSettings(generation_url=""))
    assert isinstance(remote.backend, HttpBackend) and remote.backend.base_url == "http://gen:8080"
    assert isinstance(local.backend, GenerationEngine)
    assert not remote.available and not local.available  # nothing is usable before initialize()


def test_circuit_breaker_opens_after_repeated_failures_and_probes_once_after_the_reset() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, reset_after_s=5.0, clock=clock)
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state == "closed"
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state == "open" and not breaker.allows_call()
    with pytest.raises(GeneratorUnavailable, match="trying again in 5 s"):
        breaker.before_call()
    clock.now += 5.0
    assert breaker.state == "half-open" and breaker.allows_call()
    breaker.before_call()  # the one probe
    assert not breaker.allows_call()
    with pytest.raises(GeneratorUnavailable):
        breaker.before_call()  # others still fail fast while the probe runs
    breaker.record_failure()  # probe failed: open again for a full period
    assert breaker.state == "open" and breaker.retry_in() == 5.0
    clock.now += 5.0
    breaker.before_call()
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allows_call()


def test_an_abandoned_probe_lets_the_next_call_probe() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=1.0, clock=clock)
    breaker.record_failure()
    clock.now += 1.0
    breaker.before_call()
    breaker.abandon_call()
    assert breaker.allows_call()


DROP = "drop the connection"  # a scripted answer: the connection closes with no response


@dataclass
class Sent:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedService:
    """A real HTTP server on loopback that answers from a script and records what it was sent.

    Each answer is `(status, json_body, headers)` or DROP; the last one repeats.
    """

    def __init__(self, *answers: tuple[int, object, dict[str, str]] | str) -> None:
        self.answers = list(answers)
        self.requests: list[Sent] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> ScriptedService:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(Sent(request.method, request.path, dict(request.headers), await request.read()))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if answer == DROP:
            assert request.transport is not None
            request.transport.close()
            return web.Response()  # never reaches the client
        status, body, headers = answer
        return web.json_response(body, status=status, headers=headers)


def ok(body: object) -> tuple[int, object, dict[str, str]]:
    return 200, body, {}


def ok_text(seed: int = 1) -> tuple[int, object, dict[str, str]]:
    return ok({"text": "hi", "model_version": "lstm-v1", "seed": seed})


def error(
    status: int, code: str, detail: str = "", headers: dict[str, str] | None = None
) -> tuple[int, object, dict[str, str]]:
    return status, {"error": code, "detail": detail}, headers or {}


async def scripted_client(script: ScriptedService, **options) -> GenerationClient:
    options = {"token": "s3cret", "timeout_s": 2.0, "retries": 2, "backoff_s": 0.01, **options}
    client = GenerationClient(HttpBackend(script.url, **options))
    await client.initialize()
    return client


async def test_bearer_token_and_deadline_header_are_sent() -> None:
    models = [{"kind": "gan", "version": "g1"}, {"kind": "lstm", "version": None}]
    async with ScriptedService(ok(models)) as script:
        client = await scripted_client(script)
        assert client.available_for("gan") and not client.available_for("lstm")
        await client.shutdown()
    sent = script.requests[0]
    assert sent.headers["Authorization"] == "Bearer s3cret"
    assert 0 < float(sent.headers["X-Request-Timeout"]) < 2.0


async def test_connection_failures_and_overload_are_retried() -> None:
    async with ScriptedService(
        ok([]), DROP, error(503, "overloaded", "busy", {"Retry-After": "0.01"}), ok_text(7)
    ) as script:
        client = await scripted_client(script)
        result = await client.text(TextRequest(model="lstm", length=2, seed=7))
        await client.shutdown()
    assert result.seed == 7
    assert [r.path for r in script.requests] == ["/v1/models", "/v1/text", "/v1/text", "/v1/text"]
    assert json.loads(script.requests[-1].body)["seed"] == 7


async def test_answers_that_another_try_would_not_change_are_not_retried() -> None:
    for answer, expected, still_available in [
        (error(500, "generation_failed", "boom"), GeneratorUnavailable, True),
        (error(503, "unavailable", "no text model is loaded yet"), GeneratorUnavailable, False),
        (error(422, "invalid_request", "length must be at most 1000"), InvalidRequest, True),
        (error(401, "unauthorized", "the token is not valid"), GeneratorUnavailable, True),
    ]:
        async with ScriptedService(ok([]), answer) as script:
            client = await scripted_client(script)
            with pytest.raises(expected):
                await client.text(TextRequest(model="lstm", length=2))
            # Only "no such model" makes the kind unavailable; one failed request does not.
            assert client.available_for("lstm") is still_available
            assert client.backend.breaker.state == "closed"
            await client.shutdown()
        assert len(script.requests) == 2  # the initial /v1/models, then exactly one try


async def test_no_model_on_the_service_makes_that_kind_unavailable() -> None:
    async with ScriptedService(ok([]), error(503, "unavailable", "no text model is loaded yet")) as script:
        client = await scripted_client(script)
        with pytest.raises(GeneratorUnavailable, match="no text model"):
            await client.text(TextRequest(model="lstm", length=2))
        assert not client.available_for("lstm")
        assert client.backend.breaker.state == "closed"  # the service itself is fine
        await client.shutdown()


async def test_exhausted_retries_count_once_against_the_circuit() -> None:
    async with ScriptedService(DROP) as script:
        # initialize() asks for the models: its failed call is the first of the two.
        client = await scripted_client(script, retries=2, breaker=CircuitBreaker(failure_threshold=2))
        assert client.available
        with pytest.raises(GeneratorUnavailable, match="not reachable"):
            await client.image(ImageRequest(count=1))
        assert not client.available
        calls_before = len(script.requests)
        with pytest.raises(GeneratorUnavailable, match="trying again"):
            await client.image(ImageRequest(count=1))
        await client.shutdown()
    # 1 try + 2 retries (aiohttp itself also resends a GET once on a dropped keep-alive connection,
    # so only the POSTs are counted exactly).
    assert [sent.path for sent in script.requests].count("/v1/image") == 3
    assert len(script.requests) == calls_before  # the open circuit made no network call


async def test_a_refused_connection_is_reported_quickly_as_unreachable() -> None:
    closed_port = free_port()  # nothing listens there
    client = GenerationClient(HttpBackend(f"http://127.0.0.1:{closed_port}", timeout_s=5.0, backoff_s=0.01))
    await client.initialize()
    started = time.monotonic()
    with pytest.raises(GeneratorUnavailable, match="not reachable"):
        await client.text(TextRequest(model="lstm", length=2))
    assert time.monotonic() - started < 2.0  # refused at once, not after the 5 s budget
    await client.shutdown()


async def test_invalid_requests_are_refused_before_the_network() -> None:
    async with ScriptedService(ok([])) as script:
        client = await scripted_client(script)
        with pytest.raises(InvalidRequest, match="prompt must be at most 500 characters"):
            await client.text(
                TextRequest.model_construct(prompt="x" * 600, length=10, temperature=0.8, top_k=0, top_p=0.9)
            )
        await client.shutdown()
    assert len(script.requests) == 1


async def test_in_process_mode_batches_off_the_event_loop(tmp_path: Path) -> None:
    store = FakeModelStore(batch_s=0.2)
    client = GenerationClient(fake_engine(store, tmp_path))
    assert not client.available
    await client.initialize()
    assert client.available and client.available_for("gan")

    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    beating = asyncio.create_task(heartbeat())
    results = await asyncio.gather(*(client.image(ImageRequest(count=1, seed=s)) for s in range(8)))
    beating.cancel()
    text = await client.text(TextRequest(model="lstm", prompt="AI ", length=5, seed=2))
    models = await client.models()
    store.champions["lstm"] = "lstm-v2"
    reloaded = await client.reload()
    await client.shutdown()

    assert [r.seed for r in results] == list(range(8)) and store.batch_sizes("gan") == [8]
    assert ticks >= 10  # the loop kept running while the model worked in its thread
    assert text.text.startswith("AI ") and text.model_version == "lstm-v1"
    assert {m.kind: m.version for m in models} == {
        "gan": "gan-v1",
        "lstm": "lstm-v1",
        "vae": None,
        "word": None,
    }
    assert {m.kind: m.version for m in reloaded} == {
        "gan": "gan-v1",
        "lstm": "lstm-v2",
        "vae": None,
        "word": None,
    }
    assert not client.available


async def test_in_process_mode_without_models_says_so(tmp_path: Path) -> None:
    store = FakeModelStore(champions={"gan": None, "lstm": "lstm-v1"})
    client = GenerationClient(fake_engine(store, tmp_path))
    await client.initialize()
    assert client.available and not client.available_for("gan")
    with pytest.raises(GeneratorUnavailable, match="no image model"):
        await client.image(ImageRequest(count=1))
    await client.shutdown()
