"""GenerationClient: backend choice, in-process mode, retries, circuit breaker, request checks."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from generation.api import (
    GeneratorUnavailable,
    ImageRequest,
    InvalidRequest,
    TextRequest,
)
from generation.client import CircuitBreaker, GenerationClient, HttpBackend, InProcessBackend
from generation.settings import GenerationSettings
from tests.generation.service_fixtures import FakeModelStore, fake_engine


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_from_settings_picks_http_with_a_url_and_in_process_without() -> None:
    remote = GenerationClient.from_settings(GenerationSettings(generation_url="http://gen:8080/"))
    local = GenerationClient.from_settings(GenerationSettings(generation_url=""))
    assert isinstance(remote.backend, HttpBackend) and remote.backend.base_url == "http://gen:8080"
    assert isinstance(local.backend, InProcessBackend)
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


class ScriptedService:
    """An httpx transport that answers from a script and records what it was sent (no network)."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def ok_text(seed: int = 1) -> httpx.Response:
    return httpx.Response(200, json={"text": "hi", "model_version": "lstm-v1", "seed": seed})


def error(status: int, code: str, detail: str = "", headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": code, "detail": detail}, headers=headers)


async def scripted_client(script: ScriptedService, **options) -> GenerationClient:
    options = {"token": "s3cret", "timeout_s": 2.0, "retries": 2, "backoff_s": 0.01, **options}
    backend = HttpBackend("http://generation.test", transport=httpx.MockTransport(script), **options)
    client = GenerationClient(backend)
    await client.initialize()
    return client


async def test_bearer_token_and_deadline_header_are_sent() -> None:
    models = [{"kind": "gan", "version": "g1"}, {"kind": "lstm", "version": None}]
    script = ScriptedService(httpx.Response(200, json=models))
    client = await scripted_client(script)
    assert client.available_for("gan") and not client.available_for("lstm")
    await client.shutdown()
    sent = script.requests[0]
    assert sent.headers["authorization"] == "Bearer s3cret"
    assert 0 < float(sent.headers["x-request-timeout"]) < 2.0


async def test_connection_failures_and_overload_are_retried() -> None:
    script = ScriptedService(
        httpx.Response(200, json=[]),
        httpx.ConnectError("refused"),
        error(503, "overloaded", "busy", {"Retry-After": "0.01"}),
        ok_text(7),
    )
    client = await scripted_client(script)
    result = await client.text(TextRequest(length=2, seed=7))
    await client.shutdown()
    assert result.seed == 7
    assert [r.url.path for r in script.requests] == ["/v1/models", "/v1/text", "/v1/text", "/v1/text"]
    assert json.loads(script.requests[-1].content)["seed"] == 7


async def test_answers_that_another_try_would_not_change_are_not_retried() -> None:
    for answer, expected, still_available in [
        (error(500, "generation_failed", "boom"), GeneratorUnavailable, True),
        (error(503, "unavailable", "no text model is loaded yet"), GeneratorUnavailable, False),
        (error(422, "invalid_request", "length must be at most 1000"), InvalidRequest, True),
        (error(401, "unauthorized", "the token is not valid"), GeneratorUnavailable, True),
    ]:
        script = ScriptedService(httpx.Response(200, json=[]), answer)
        client = await scripted_client(script)
        with pytest.raises(expected):
            await client.text(TextRequest(length=2))
        # Only "no such model" makes the kind unavailable; one failed request does not.
        assert client.available_for("lstm") is still_available
        assert client.backend.breaker.state == "closed"
        await client.shutdown()
        assert len(script.requests) == 2  # the initial /v1/models, then exactly one try


async def test_no_model_on_the_service_makes_that_kind_unavailable() -> None:
    script = ScriptedService(
        httpx.Response(200, json=[]), error(503, "unavailable", "no text model is loaded yet")
    )
    client = await scripted_client(script)
    with pytest.raises(GeneratorUnavailable, match="no text model"):
        await client.text(TextRequest(length=2))
    assert not client.available_for("lstm")
    assert client.backend.breaker.state == "closed"  # the service itself is fine
    await client.shutdown()


async def test_exhausted_retries_count_once_against_the_circuit() -> None:
    script = ScriptedService(httpx.ConnectError("refused"))
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
    assert calls_before == 3 + 3  # two calls, each 1 try + 2 retries
    assert len(script.requests) == calls_before  # the open circuit made no network call


async def test_invalid_requests_are_refused_before_the_network() -> None:
    script = ScriptedService(httpx.Response(200, json=[]))
    client = await scripted_client(script)
    with pytest.raises(InvalidRequest, match="prompt must be at most 500 characters"):
        await client.text(
            TextRequest.model_construct(prompt="x" * 600, length=10, temperature=0.8, top_k=0, top_p=0.9)
        )
    await client.shutdown()
    assert len(script.requests) == 1


async def test_in_process_mode_batches_off_the_event_loop(tmp_path: Path) -> None:
    store = FakeModelStore(batch_s=0.2)
    client = GenerationClient(InProcessBackend(engine=fake_engine(store, tmp_path)))
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
    text = await client.text(TextRequest(prompt="AI ", length=5, seed=2))
    models = await client.models()
    store.champions["lstm"] = "lstm-v2"
    reloaded = await client.reload()
    await client.shutdown()

    assert [r.seed for r in results] == list(range(8)) and store.batch_sizes("gan") == [8]
    assert ticks >= 10  # the loop kept running while the model worked in its thread
    assert text.text.startswith("AI ") and text.model_version == "lstm-v1"
    assert {m.kind: m.version for m in models} == {"gan": "gan-v1", "lstm": "lstm-v1"}
    assert {m.kind: m.version for m in reloaded} == {"gan": "gan-v1", "lstm": "lstm-v2"}
    assert not client.available


async def test_in_process_mode_without_models_says_so(tmp_path: Path) -> None:
    store = FakeModelStore(champions={"gan": None, "lstm": "lstm-v1"})
    client = GenerationClient(InProcessBackend(engine=fake_engine(store, tmp_path)))
    await client.initialize()
    assert client.available and not client.available_for("gan")
    with pytest.raises(GeneratorUnavailable, match="no image model"):
        await client.image(ImageRequest(count=1))
    await client.shutdown()
