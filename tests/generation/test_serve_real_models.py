"""`python -m generation.serve` on real dry-run checkpoints, driven by the real client.

The checkpoints come from the companion trainer's dry runs, trained once per test session
(tests/generation/conftest.py: trained_models).
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from generation.api import MODEL_KINDS, GeneratorUnavailable, ImageRequest, TextRequest
from generation.client import GenerationClient
from generation.registry import ModelRegistry
from generation.settings import GenerationSettings
from tests.generation.service_fixtures import ServiceThread, free_port

pytestmark = pytest.mark.slow
TOKEN = "real-model-secret"


def train_dry_run(data_dir: Path, kind: str, seed: int = 0) -> None:
    environment = {**os.environ, "DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "generation.train", kind, "--dry-run", "--quiet", "--device", "cpu"]
    command += ["--threads", "1", "--max-steps", "2", "--seed", str(seed)]
    subprocess.run(command, env=environment, check=True, capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def trained_data_dir(trained_models: Path) -> Path:
    """DATA_DIR holding the session's dry-run champions (see conftest.trained_models); read only."""
    return trained_models.parent


@pytest.fixture(scope="module")
def cli_service(trained_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m generation.serve` in its own process; SIGTERM must shut it down gracefully."""
    log_path = tmp_path_factory.mktemp("service-log") / "service.log"
    port = free_port()
    environment = {
        **os.environ,
        "DATA_DIR": str(trained_data_dir),
        "GENERATION_TOKEN": TOKEN,
        "GENERATION_DEVICE": "auto",
        "LOG_LEVEL": "INFO",
    }
    log = log_path.open("wb")
    command = [sys.executable, "-m", "generation.serve", "--host", "127.0.0.1", "--port", str(port)]
    service = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        assert service.poll() is None, log_path.read_text()
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the service did not become ready"
        time.sleep(0.1)
    try:
        yield url
    finally:
        service.send_signal(signal.SIGTERM)
        try:
            # uvicorn shuts down gracefully, then re-raises the signal so the exit status reports it.
            assert service.wait(20) in (0, -signal.SIGTERM)
            assert "Application shutdown complete" in log_path.read_text()
        finally:
            if service.poll() is None:
                service.kill()
            log.close()


async def test_cli_service_serves_the_champions_like_the_in_process_client(
    cli_service: str, trained_data_dir: Path
) -> None:
    registry = ModelRegistry(trained_data_dir / "models")
    champions = {kind: registry.champion(kind).version for kind in MODEL_KINDS}
    remote = GenerationClient.from_settings(
        GenerationSettings(generation_url=cli_service, generation_token=TOKEN)
    )
    local = GenerationClient.from_settings(
        GenerationSettings(data_dir=trained_data_dir, generation_url="", generation_device="cpu")
    )
    await remote.initialize()
    await local.initialize()
    try:
        models = await remote.models()
        alone = await remote.image(ImageRequest(digit=3, count=4, seed=11))
        # The same seed among batch-mates gives the same picture.
        crowd = await asyncio.gather(*(remote.image(ImageRequest(count=8, seed=s)) for s in range(6)))
        in_crowd = await asyncio.gather(
            remote.image(ImageRequest(digit=3, count=4, seed=11)),
            *(remote.image(ImageRequest(count=2, seed=s)) for s in range(6)),
        )
        in_process = await local.image(ImageRequest(digit=3, count=4, seed=11))
        vae = ImageRequest(model="vae", digit=3, count=4, seed=11)
        vae_remote, vae_in_process = await remote.image(vae), await local.image(vae)
        text = await remote.text(TextRequest(model="lstm", prompt="Startups ", length=40, seed=5))
        text_in_process = await local.text(TextRequest(model="lstm", prompt="Startups ", length=40, seed=5))
        words = await remote.text(TextRequest(model="word", prompt="Startups 创业", length=40, seed=5))
        words_in_process = await local.text(
            TextRequest(model="word", prompt="Startups 创业", length=40, seed=5)
        )
    finally:
        await remote.shutdown()
        await local.shutdown()

    assert {m.kind: m.version for m in models} == champions
    assert all(m.metrics for m in models)
    picture = Image.open(io.BytesIO(alone.png))
    assert picture.format == "PNG" and min(picture.size) >= 256
    assert (alone.model_version, alone.seed, alone.digits) == (champions["gan"], 11, [3, 3, 3, 3])
    assert len({result.png for result in crowd}) == 6
    assert in_crowd[0].png == alone.png == in_process.png
    assert vae_remote.model_version == champions["vae"] and vae_remote.png == vae_in_process.png
    assert vae_remote.png != alone.png
    assert text.text.startswith("Startups ") and text.model_version == champions["lstm"]
    assert text.text == text_in_process.text
    assert (words.model, words.model_version) == ("word", champions["word"])
    assert words.text.startswith("Startups 创业") and words.text == words_in_process.text


async def test_cli_service_refuses_bad_tokens_and_over_limit_requests(cli_service: str) -> None:
    async with httpx.AsyncClient(base_url=cli_service) as http:
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.post("/v1/image", json={"count": 1})).status_code == 401
        over = await http.post(
            "/v1/text", json={"length": 5000}, headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert over.status_code == 422 and over.json()["detail"] == "length must be at most 1000"


async def test_reload_swaps_in_a_newly_promoted_champion_under_traffic(
    trained_data_dir: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(trained_data_dir, data_dir)
    registry = ModelRegistry(data_dir / "models")
    old = registry.champion("lstm").version
    settings = GenerationSettings(data_dir=data_dir, generation_token=TOKEN, generation_device="cpu")
    with ServiceThread(settings, engine=None) as service:
        client = GenerationClient.from_settings(
            GenerationSettings(generation_url=service.url, generation_token=TOKEN)
        )
        await client.initialize()
        await asyncio.to_thread(train_dry_run, data_dir, "lstm", 1)
        new = next(v.version for v in registry.versions("lstm") if v.version != old)
        registry.promote("lstm", new)  # as an admin's /rollback or a winning retrain would

        traffic = [
            asyncio.create_task(client.text(TextRequest(model="lstm", length=60, seed=s))) for s in range(12)
        ]
        await asyncio.sleep(0.05)
        reloaded = await client.reload()
        results = await asyncio.gather(*traffic)
        after = await client.text(TextRequest(model="lstm", length=10, seed=1))
        await client.shutdown()

    assert {m.kind: m.version for m in reloaded}["lstm"] == new
    assert len(results) == 12 and {r.model_version for r in results} <= {old, new}
    assert after.model_version == new


async def test_service_without_models_is_up_but_not_ready(tmp_path: Path) -> None:
    settings = GenerationSettings(data_dir=tmp_path, generation_device="cpu")
    with ServiceThread(settings, engine=None) as service:
        async with httpx.AsyncClient(base_url=service.url) as http:
            assert (await http.get("/healthz")).status_code == 200
            ready = await http.get("/readyz")
        client = GenerationClient.from_settings(GenerationSettings(generation_url=service.url))
        await client.initialize()
        assert not client.available
        with pytest.raises(GeneratorUnavailable, match="no image model"):
            await client.image(ImageRequest(count=1))
        await client.shutdown()
    assert ready.status_code == 503 and ready.json()["models"] == {
        "gan": None,
        "lstm": None,
        "vae": None,
        "word": None,
    }
