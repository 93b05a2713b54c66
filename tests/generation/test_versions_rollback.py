"""GenerationClient.versions() and rollback(): in-process through the registry, and over HTTP through
the service's /v1/versions and /v1/rollback; rollback hot-swaps the served model."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from generation.api import ImageRequest, InvalidRequest
from generation.client import GenerationClient, HttpBackend
from generation.registry import ModelRegistry
from generation.service.batching import BatchLimits
from generation.service.engine import GenerationEngine, champion_version_in_registry
from generation.settings import GenerationSettings
from tests.generation.service_fixtures import FakeGenerator, ServiceThread


def add_version(registry: ModelRegistry, kind: str, score: float, promote: bool) -> str:
    """A committed version with metadata only (the stand-in loader needs no weights)."""
    version, partial = registry.new_candidate(kind)
    meta = {"kind": kind, "created_at": f"2026-11-2{int(score)}T00:00:00Z", "metrics": {"score": score}}
    (partial / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    registry.commit_candidate(kind, version)
    if promote:
        registry.promote(kind, version)
    return version


def registry_engine(models_dir: Path) -> GenerationEngine:
    """An engine serving stand-in generators named after the registry's champions."""

    def load(directory: Path, kind: str, device: str) -> FakeGenerator | None:
        champion = ModelRegistry(directory).champion(kind)
        return FakeGenerator(kind, champion.version, batch_s=0.0) if champion else None

    return GenerationEngine(
        models_dir,
        device="cpu",
        limits=BatchLimits(max_batch_size=4, max_wait_s=0.0),
        loader=load,
        champion_version=champion_version_in_registry,
    )


@pytest.fixture(params=["in-process", "http"])
async def client_and_versions(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[GenerationClient, list[str]]]:
    registry = ModelRegistry(tmp_path)
    versions = [add_version(registry, "gan", 1.0, True), add_version(registry, "gan", 2.0, True)]
    versions.append(add_version(registry, "gan", 0.5, False))
    registry.reject("gan", versions[2], "candidate does not beat the champion")
    engine = registry_engine(tmp_path)
    if request.param == "in-process":
        client = GenerationClient(engine)
        await client.initialize()
        yield client, versions
        await client.shutdown()
        return
    settings = GenerationSettings(_env_file=None, data_dir=tmp_path, generation_device="cpu")
    with ServiceThread(settings, engine) as service:
        client = GenerationClient(HttpBackend(service.url, timeout_s=10.0))
        await client.initialize()
        yield client, versions
        await client.shutdown()


async def test_versions_list_champion_previous_and_rejected_newest_first(
    client_and_versions: tuple[GenerationClient, list[str]],
) -> None:
    client, (first, second, rejected) = client_and_versions
    listed = await client.versions("gan")
    assert [(item.version, item.status, item.note) for item in listed] == [
        (rejected, "rejected", "candidate does not beat the champion"),
        (second, "champion", ""),
        (first, "previous", ""),
    ]
    assert listed[1].metrics == {"score": 2.0} and listed[1].created_at == "2026-11-22T00:00:00Z"
    assert await client.versions("lstm") == []


async def test_rollback_makes_the_previous_champion_serve_again(
    client_and_versions: tuple[GenerationClient, list[str]],
) -> None:
    client, (first, second, rejected) = client_and_versions
    assert (await client.image(ImageRequest(count=1, seed=1))).model_version == second
    champion = await client.rollback("gan")
    assert (champion.version, champion.status) == (first, "champion")
    assert (await client.image(ImageRequest(count=1, seed=1))).model_version == first
    statuses = {item.version: (item.status, item.note) for item in await client.versions("gan")}
    assert statuses[second] == ("rejected", f"rolled back to {first}")
    again = await client.rollback("gan", rejected)  # any stored version may be made champion
    assert again.version == rejected
    assert (await client.image(ImageRequest(count=1, seed=1))).model_version == rejected


async def test_a_bad_rollback_changes_nothing(
    client_and_versions: tuple[GenerationClient, list[str]],
) -> None:
    client, (_, second, _) = client_and_versions
    with pytest.raises(InvalidRequest, match="no gan version 'nope'"):
        await client.rollback("gan", "nope")
    with pytest.raises(InvalidRequest, match="no previous lstm champion"):
        await client.rollback("lstm")
    with pytest.raises(InvalidRequest, match="unknown model kind"):
        await client.rollback("bert")
    assert (await client.image(ImageRequest(count=1, seed=1))).model_version == second
    assert [model.version for model in await client.models() if model.kind == "gan"] == [second]
