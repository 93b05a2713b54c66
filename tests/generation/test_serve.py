"""The real service (FastAPI on uvicorn, loopback) driven by the real GenerationClient over HTTP.

Models are stand-ins with the inference interface (see service_fixtures); the same paths run on
real dry-run checkpoints in test_serve_real_models.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from generation.api import (
    PNG,
    DeadlineExceeded,
    GeneratorUnavailable,
    ImageRequest,
    ImageResult,
    InvalidRequest,
    TextRequest,
)
from generation.client import GenerationClient
from generation.settings import GenerationSettings
from tests.generation.service_fixtures import (
    POISON_SEED,
    FakeModelStore,
    ServiceThread,
    fake_engine,
    free_port,
)

TOKEN = "test-shared-secret"


def service_settings(tmp_path: Path, **overrides) -> GenerationSettings:
    return GenerationSettings(data_dir=tmp_path, generation_token=TOKEN, **overrides)


@asynccontextmanager
async def connected(url: str, token: str | None = TOKEN, **overrides) -> AsyncIterator[GenerationClient]:
    """The bot's client, HTTP mode, with quick breaker settings for tests."""
    options = {"generation_timeout_s": 5.0, "generation_breaker_reset_s": 0.5, **overrides}
    settings = GenerationSettings(generation_url=url, generation_token=token, **options)
    client = GenerationClient.from_settings(settings)
    await client.initialize()
    try:
        yield client
    finally:
        await client.shutdown()


@pytest.fixture
def store() -> FakeModelStore:
    return FakeModelStore()


@pytest.fixture
def service(store: FakeModelStore, tmp_path: Path) -> Iterator[ServiceThread]:
    with ServiceThread(service_settings(tmp_path), fake_engine(store, tmp_path)) as running:
        yield running


async def test_image_and_text_round_trip_with_version_and_seed(service: ServiceThread) -> None:
    async with connected(service.url) as client:
        image = await client.image(ImageRequest(digit=7, count=4, seed=42))
        again = await client.image(ImageRequest(digit=7, count=4, seed=42))
        text = await client.text(TextRequest(model="lstm", prompt="Founders ", length=20, seed=3))
        models = await client.models()
    assert image.png.startswith(b"\x89PNG") and image.png == again.png
    assert (image.model_version, image.seed, image.digits) == ("gan-v1", 42, [7, 7, 7, 7])
    assert text.text.startswith("Founders ") and len(text.text) == len("Founders ") + 20
    assert (text.model_version, text.seed) == ("lstm-v1", 3)
    assert {(m.kind, m.version) for m in models} == {
        ("gan", "gan-v1"),
        ("lstm", "lstm-v1"),
        ("vae", None),
        ("word", None),
    }
    assert all(m.metrics == {"quality": 1.0} for m in models if m.version)


async def test_raw_png_is_offered_with_version_seed_and_digits_headers(service: ServiceThread) -> None:
    async with httpx.AsyncClient(base_url=service.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        body = {"digit": 3, "count": 2, "seed": 9}
        response = await http.post("/v1/image", json=body, headers={"Accept": "image/png"})
        as_json = await http.post("/v1/image", json=body)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.headers["x-model-version"] == "gan-v1" and response.headers["x-seed"] == "9"
    assert response.headers["x-digits"] == "[3,3]"
    from_json = ImageResult.from_json(as_json.json())
    assert from_json.png == response.content and from_json.digits == [3, 3]


async def test_health_checks_are_open_and_everything_else_needs_the_token(service: ServiceThread) -> None:
    async with httpx.AsyncClient(base_url=service.url) as http:
        health = await http.get("/healthz")
        ready = await http.get("/readyz")
        anonymous = await http.get("/v1/models")
        wrong = await http.post("/v1/text", json={}, headers={"Authorization": "Bearer nope"})
    assert health.status_code == 200
    assert ready.status_code == 200
    assert ready.json()["models"] == {"gan": "gan-v1", "lstm": "lstm-v1", "vae": None, "word": None}
    assert anonymous.status_code == 401 and anonymous.json()["detail"] == "a bearer token is required"
    assert wrong.status_code == 401 and wrong.json()["detail"] == "the token is not valid"
    assert TOKEN not in wrong.text


async def test_client_with_an_invalid_token_says_so(service: ServiceThread) -> None:
    async with connected(service.url, token="wrong-secret") as client:
        with pytest.raises(GeneratorUnavailable, match="GENERATION_TOKEN"):
            await client.image(ImageRequest(count=1))
    async with connected(service.url, token=None) as client:
        with pytest.raises(GeneratorUnavailable, match="GENERATION_TOKEN"):
            await client.text(TextRequest(model="lstm", length=5))


async def test_requests_over_the_limits_get_4xx_with_a_clear_message(service: ServiceThread) -> None:
    async with httpx.AsyncClient(base_url=service.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        too_many = await http.post("/v1/image", json={"count": 17})
        too_long = await http.post("/v1/text", json={"prompt": "x" * 501, "length": 5000})
        not_json = await http.post("/v1/text", content=b"{oops", headers={"Content-Type": "application/json"})
        huge = await http.post(
            "/v1/text", content=b"x" * 100_000, headers={"Content-Type": "application/json"}
        )
    assert too_many.status_code == 422
    assert too_many.json() == {"error": "invalid_request", "detail": "count must be at most 16"}
    assert too_long.json()["detail"] == "prompt must be at most 500 characters; length must be at most 1000"
    assert not_json.status_code == 422 and not_json.json()["detail"] == "the request body is not valid JSON"
    assert huge.status_code == 413
    async with connected(service.url) as client:
        # Caught before the network by the client...
        with pytest.raises(InvalidRequest, match="count must be at most 16"):
            await client.image(ImageRequest.model_construct(digit=None, count=100, seed=None))
        # ...and, when a request slips past it, the service's 422 comes back as InvalidRequest too.
        with pytest.raises(InvalidRequest, match="digit must be at most 9"):
            await client.backend.image(ImageRequest.model_construct(digit=12, count=1, seed=None))
        assert client.available  # a refused request is not a service failure


async def test_concurrent_requests_are_micro_batched(service: ServiceThread, store: FakeModelStore) -> None:
    async with connected(service.url) as client:
        results = await asyncio.gather(*(client.image(ImageRequest(count=1, seed=s)) for s in range(24)))
    assert [r.seed for r in results] == list(range(24))
    sizes = store.batch_sizes("gan")
    assert sum(sizes) == 24 + 0 and max(sizes) > 1


async def test_one_bad_request_never_fails_its_batch_mates(service: ServiceThread) -> None:
    seeds = [1, 2, 3, POISON_SEED, 5, 6]
    async with connected(service.url) as client:
        outcomes = await asyncio.gather(
            *(client.image(ImageRequest(count=1, seed=s)) for s in seeds), return_exceptions=True
        )
        assert isinstance(outcomes[3], GeneratorUnavailable) and "failed" in str(outcomes[3])
        assert [o.seed for i, o in enumerate(outcomes) if i != 3] == [1, 2, 3, 5, 6]
        assert (await client.image(ImageRequest(count=1, seed=7))).seed == 7  # still serving


async def test_a_request_past_its_deadline_gets_a_clean_error_and_the_service_stays_up(
    tmp_path: Path,
) -> None:
    slow = FakeModelStore(batch_s=1.0)
    with ServiceThread(service_settings(tmp_path), fake_engine(slow, tmp_path)) as service:
        async with connected(service.url, generation_timeout_s=0.3) as client:
            started = time.monotonic()
            with pytest.raises(DeadlineExceeded):
                await client.text(TextRequest(model="lstm", length=5))
            assert time.monotonic() - started < 0.85  # the deadline, not the model's 1 s
        async with httpx.AsyncClient(base_url=service.url) as http:
            assert (await http.get("/healthz")).status_code == 200
        async with connected(service.url, generation_timeout_s=5.0) as client:
            assert (await client.text(TextRequest(model="lstm", length=5, seed=1))).seed == 1


async def test_reload_while_requests_are_in_flight_drops_none(
    service: ServiceThread, store: FakeModelStore
) -> None:
    store.batch_s = 0.05
    async with connected(service.url) as client:

        async def one(seed: int) -> ImageResult:
            await asyncio.sleep(seed * 0.01)  # spread over the reload
            return await client.image(ImageRequest(count=1, seed=seed))

        traffic = asyncio.gather(*(one(seed) for seed in range(40)))
        await asyncio.sleep(0.15)
        store.champions["gan"] = "gan-v2"
        reloaded = await client.reload()
        results = await traffic
        after = await client.image(ImageRequest(count=1, seed=99))
    assert [r.seed for r in results] == list(range(40))  # every request answered
    assert {r.model_version for r in results} == {"gan-v1", "gan-v2"}  # the swap happened mid-traffic
    assert after.model_version == "gan-v2"
    assert {(m.kind, m.version) for m in reloaded} == {
        ("gan", "gan-v2"),
        ("lstm", "lstm-v1"),
        ("vae", None),
        ("word", None),
    }
    assert [g.version for g in store.loaded] == ["gan-v1", "lstm-v1", "gan-v2"]  # unchanged lstm not reloaded
    assert all(g.warmed_up for g in store.loaded)


async def test_reload_keeps_the_old_model_when_the_new_one_fails_to_load(
    service: ServiceThread, store: FakeModelStore
) -> None:
    store.champions["gan"], store.fail_loading = "gan-v3", True
    async with connected(service.url) as client:
        reloaded = await client.reload()
        image = await client.image(ImageRequest(count=1))
    assert {m.kind: m.version for m in reloaded}["gan"] == "gan-v1"
    assert image.model_version == "gan-v1"


async def test_service_restart_mid_traffic(tmp_path: Path, store: FakeModelStore) -> None:
    settings = service_settings(tmp_path)
    service = ServiceThread(settings, fake_engine(store, tmp_path)).start()
    outcomes: list[tuple[float, float, object]] = []

    async with connected(service.url, generation_timeout_s=2.0) as client:

        async def worker(worker_id: int) -> None:
            for seed in range(worker_id * 1000, worker_id * 1000 + 10_000):
                started = time.monotonic()
                try:
                    outcome: object = await client.image(ImageRequest(count=1, seed=seed))
                except GeneratorUnavailable as exc:
                    outcome = exc
                outcomes.append((started, time.monotonic() - started, outcome))
                if stop.is_set():
                    return
                await asyncio.sleep(0.01)

        stop = asyncio.Event()
        workers = [asyncio.create_task(worker(i)) for i in range(4)]
        await asyncio.sleep(0.4)
        await asyncio.to_thread(service.stop)  # graceful: in-flight requests finish
        down_at = time.monotonic()
        await asyncio.sleep(1.0)
        assert not client.available  # the breaker opened while the service was down
        service = ServiceThread(settings, fake_engine(store, tmp_path), port=service.port).start()
        up_at = time.monotonic()
        await asyncio.sleep(1.5)  # > breaker reset: the probe closes the circuit
        stop.set()
        await asyncio.gather(*workers)
        assert client.available
    service.stop()

    assert all(isinstance(o, ImageResult | GeneratorUnavailable) for _, _, o in outcomes)
    assert any(isinstance(o, ImageResult) for t, _, o in outcomes if t < down_at)
    assert any(isinstance(o, GeneratorUnavailable) for t, _, o in outcomes if down_at < t < up_at)
    assert any(isinstance(o, ImageResult) for t, _, o in outcomes if t > up_at)
    assert max(duration for _, duration, _ in outcomes) < 2.5  # nothing hung past its budget
    # While the circuit was open, calls were answered at once instead of waiting on the network.
    # (A percentile, not the max: a loaded CI machine may deschedule the process at any moment.)
    refused_by_circuit = sorted(d for _, d, o in outcomes if "trying again" in str(o))
    assert len(refused_by_circuit) > 10 and refused_by_circuit[int(0.9 * len(refused_by_circuit))] < 0.05


async def test_service_down_fails_fast_then_recovers_when_it_comes_back(
    tmp_path: Path, store: FakeModelStore
) -> None:
    port = free_port()
    async with connected(f"http://127.0.0.1:{port}", generation_breaker_failures=2) as client:
        assert client.available  # nothing known yet: let the first call find out
        for _ in range(2):
            with pytest.raises(GeneratorUnavailable, match="not reachable"):
                await client.image(ImageRequest(count=1))
        assert not client.available
        started = time.monotonic()
        # The breaker's own refusal ("trying again in N s") is raised before any network I/O.
        with pytest.raises(GeneratorUnavailable, match="trying again"):
            await client.text(TextRequest(model="lstm", length=5))
        assert time.monotonic() - started < 0.5

        with ServiceThread(service_settings(tmp_path), fake_engine(store, tmp_path), port=port):
            await asyncio.sleep(0.6)  # past generation_breaker_reset_s
            assert client.available
            assert (await client.image(ImageRequest(count=1, seed=4))).seed == 4
            assert client.available


async def test_image_requests_go_to_the_image_model_they_name(store: FakeModelStore, tmp_path: Path) -> None:
    store.champions["vae"] = "vae-v1"
    with ServiceThread(service_settings(tmp_path), fake_engine(store, tmp_path)) as service:
        async with connected(service.url) as client:
            gan = await client.image(ImageRequest(digit=1, count=2, seed=5))
            vae = await client.image(ImageRequest(model="vae", digit=1, count=2, seed=5))
            with pytest.raises(InvalidRequest, match="model must be 'gan' or 'vae'"):
                await client.image(ImageRequest.model_construct(model="x", digit=1, count=2, seed=5))
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=service.url, headers=headers) as http:
            raw = await http.post("/v1/image", json={"model": "vae", "count": 1}, headers={"Accept": PNG})
            bad = await http.post("/v1/image", json={"model": "vea", "count": 1})
    assert (gan.model_version, vae.model_version) == ("gan-v1", "vae-v1")
    assert raw.status_code == 200 and raw.headers["x-model-version"] == "vae-v1"
    assert bad.status_code == 422 and bad.json()["detail"] == "model must be 'gan' or 'vae'"
    assert store.batch_sizes("vae") == [1, 1] and store.batch_sizes("gan") == [1]


async def test_an_image_model_without_a_champion_is_unavailable_alone(service: ServiceThread) -> None:
    async with connected(service.url) as client:
        with pytest.raises(GeneratorUnavailable, match="no image model is loaded yet"):
            await client.image(ImageRequest(model="vae", count=1))
        assert not client.available_for("vae") and client.available_for("gan")
        assert (await client.image(ImageRequest(count=1))).model_version == "gan-v1"
