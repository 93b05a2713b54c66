"""bot.bootstrap: on a first start with no generator models, the default recipes train in the
background, one after the other, and each promoted model is swapped in."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from bot_doubles import FakeGenerationClient, fake_trainer_jobs

from bot.bootstrap import missing_generators, train_missing
from bot.jobs import JobManager


@pytest.fixture
async def manager(data_dir: Path) -> AsyncIterator[JobManager]:
    async with fake_trainer_jobs(data_dir) as jobs:
        yield jobs


class RemoteGeneration(FakeGenerationClient):
    @property
    def remote(self) -> bool:
        return True


def test_only_kinds_without_a_model_are_missing() -> None:
    generation = FakeGenerationClient()
    assert missing_generators(generation) == []
    del generation.serving["lstm"]
    assert missing_generators(generation) == ["lstm"]
    assert missing_generators(FakeGenerationClient(available=False)) == ["gan", "lstm", "vae", "word"]


def test_a_generation_service_trains_its_own_models() -> None:
    assert missing_generators(RemoteGeneration(available=False)) == []


async def test_missing_models_train_in_turn_and_are_swapped_in(manager: JobManager, data_dir: Path) -> None:
    generation = FakeGenerationClient(available=False)
    queue: set[str] = set()
    training = asyncio.ensure_future(train_missing(manager, generation, ["gan", "lstm"], queue))
    await asyncio.sleep(0.05)
    assert manager.running_for("gan") is not None
    assert queue == {"lstm"}  # waits for its turn, so users can be told so
    await asyncio.wait_for(training, 30)
    await asyncio.sleep(0)  # let the last swap-in hook run
    assert queue == set()
    records = {record.kind: record for record in manager.store.jobs()}
    assert set(records) == {"retrain-gan", "retrain-lstm"}
    assert {record.status for record in records.values()} == {"succeeded"}
    assert generation.reloads == 2
    # the default recipe: no epochs or step overrides reach the trainer
    assert json.loads((data_dir / "argv-gan.json").read_text()) == ["--progress-json"]


async def test_a_failed_first_training_swaps_nothing(
    manager: JobManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRAINER_MODE", "fail")
    generation = FakeGenerationClient(available=False)
    await asyncio.wait_for(train_missing(manager, generation, ["gan"]), 30)
    await asyncio.sleep(0)
    assert [record.status for record in manager.store.jobs()] == ["failed"]
    assert generation.reloads == 0
