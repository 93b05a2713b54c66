"""/retrain over HTTP: the bot with GENERATION_URL set trains on the generation service, not on its own
host, through the fake Bot API server: live progress, the report and loss curve, cancel, a job the
service already runs, and a bot restart that re-attaches to a job still running on the service.

The service is the real app on uvicorn with stand-in generators and the stand-in trainer
(tests/bot/fake_trainer.py); its DATA_DIR is not the bot's, as on a separate GPU host."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from bot_e2e import ADMIN, USER, private_chat, run_bot, visible
from fake_telegram import FakeTelegram

from generation.client import GenerationClient
from generation.service.jobs import Trainer, TrainingJobs
from generation.settings import GenerationSettings
from tests.generation.service_fixtures import FakeModelStore, ServiceThread, fake_engine

TOKEN = "retrain-over-http"
FAKE_TRAINER = (sys.executable, str(Path(__file__).resolve().parents[1] / "bot" / "fake_trainer.py"))
JOB_ID = re.compile(r"Job (\w+-[0-9a-f]{4}) started")
INTERVAL_S = 0.3


@pytest.fixture
def store() -> FakeModelStore:
    return FakeModelStore()


@pytest.fixture
def service_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "gpu-host"
    folder.mkdir()
    return folder


@pytest.fixture
def service(store: FakeModelStore, service_dir: Path) -> Iterator[ServiceThread]:
    trainers = {kind: Trainer((*FAKE_TRAINER, kind), "generation.train") for kind in ("gan", "lstm")}
    jobs = TrainingJobs(service_dir, trainers, records_dir=service_dir / "jobs", cancel_grace_s=0.5)
    settings = GenerationSettings(data_dir=service_dir, generation_token=TOKEN)
    with ServiceThread(settings, fake_engine(store, service_dir), jobs=jobs) as running:
        yield running


@asynccontextmanager
async def remote_bot(fake: FakeTelegram, data_dir: Path, url: str, **overrides: Any) -> AsyncIterator[Any]:
    settings = GenerationSettings(generation_url=url, generation_token=TOKEN, generation_timeout_s=5.0)
    async with run_bot(
        fake,
        data_dir,
        generation=GenerationClient.from_settings(settings),
        retrain_progress_interval_s=INTERVAL_S,
        **overrides,
    ) as application:
        yield application


def progress_edits(fake: FakeTelegram, chat_id: int, job_id: str) -> list[tuple[int, str]]:
    return [
        (int(call.params["message_id"]), visible(call))
        for call in fake.calls_of("editMessageText", chat_id, ok=True)
        if f"Job {job_id} " in visible(call)
    ]


async def test_retrain_runs_on_the_service_with_live_progress_a_report_and_the_new_model_serving(
    fake: FakeTelegram,
    data_dir: Path,
    service: ServiceThread,
    service_dir: Path,
    store: FakeModelStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_TRAINER_STEPS", "30")
    monkeypatch.setenv("FAKE_TRAINER_STEP_S", "0.05")
    store.champions["lstm"] = "lstm-v2"  # what the stand-in's report says it promoted
    async with remote_bot(fake, data_dir, service.url, text_model="char") as application:
        admin = private_chat(fake, ADMIN)
        admin.message("/retrain lstm epochs=2", user=ADMIN)
        started, _ = await fake.wait_for_reply(admin.id, count=2)
        user = private_chat(fake)
        user.message("/text meanwhile")  # served by the service while it trains
        [served] = await fake.wait_for_reply(user.id)
        *_, report, curve, sample = await fake.wait_for_reply(admin.id, count=5, timeout=30)
        job_id = JOB_ID.search(visible(started)).group(1)
        record = application.bot_data.services.store.job(job_id)
    edits = [text for _, text in progress_edits(fake, admin.id, job_id)]
    assert any(f"Job {job_id} (lstm): train step" in text for text in edits), edits
    assert edits[-1].startswith(f"Job {job_id} (lstm): finished after")
    assert visible(served).startswith("meanwhile")
    assert visible(report).splitlines()[1:] == [
        "Candidate lstm-v2: bpc=2.5",
        "Champion lstm-v1: bpc=3",
        "✅ Promoted (candidate beats the champion); now serving lstm-v2.",
    ]
    assert curve.method == "sendPhoto" and visible(curve) == f"Loss curve of job {job_id}"
    assert visible(sample).startswith("Sample from lstm-v2 (seed 1234)\nThe startup")
    # The trainer ran on the service's host with the admin's options; the bot's host ran none.
    argv = json.loads((service_dir / "argv-lstm.json").read_text())
    assert argv[:4] == ["--progress-json", "--epochs", "2", "--seed"]
    assert not (data_dir / "argv-lstm.json").exists()
    assert record.status == "succeeded" and record.detail["remote"] is True
    assert (service_dir / "jobs" / f"{record.detail['runner_id']}.json").exists()


async def test_cancel_over_http_and_a_job_the_service_already_runs(
    fake: FakeTelegram, data_dir: Path, service: ServiceThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRAINER_MODE", "slow")
    async with remote_bot(fake, data_dir, service.url) as application:
        generation = application.bot_data.services.generation
        elsewhere = await generation.jobs.start("lstm")  # started by someone else on the service
        admin = private_chat(fake, ADMIN)
        admin.message("/retrain gan", user=ADMIN)
        started, _ = await fake.wait_for_reply(admin.id, count=2)
        job_id = JOB_ID.search(visible(started)).group(1)
        await fake.wait_for(lambda call: f"Job {job_id} (gan): train step" in visible(call), timeout=30)
        admin.message(f"/retrain cancel {job_id}", user=ADMIN)
        [*_, cancelled] = await fake.wait_for_reply(admin.id, count=3, timeout=30)
        admin.message("/retrain lstm", user=ADMIN)
        [*_, refused] = await fake.wait_for_reply(admin.id, count=4, timeout=30)
        runner_id = application.bot_data.services.store.job(job_id).detail["runner_id"]
        on_service = await generation.jobs.get(runner_id)
        await generation.jobs.cancel(elsewhere.id)
    assert visible(cancelled) == f"Job {job_id} (gan) cancelled. The champion is unchanged."
    assert on_service.state == "cancelled"
    assert f"the generation service is already training lstm (its job {elsewhere.id})" in visible(refused)


async def test_a_restarted_bot_reattaches_to_the_job_on_the_service_and_reports_it(
    fake: FakeTelegram, data_dir: Path, service: ServiceThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRAINER_STEPS", "60")
    monkeypatch.setenv("FAKE_TRAINER_STEP_S", "0.1")
    monkeypatch.setenv("FAKE_TRAINER_PROMOTE", "0")
    async with remote_bot(fake, data_dir, service.url):
        admin = private_chat(fake, ADMIN)
        admin.message("/retrain gan", user=ADMIN)
        started, progress_message = await fake.wait_for_reply(admin.id, count=2)
        job_id = JOB_ID.search(visible(started)).group(1)
        await fake.wait_for(lambda call: f"Job {job_id} (gan): train step" in visible(call), timeout=30)
    edits_before = len(progress_edits(fake, admin.id, job_id))
    async with remote_bot(fake, data_dir, service.url) as application:
        *_, report = await fake.wait_for_reply(admin.id, count=3, timeout=30)
        record = application.bot_data.services.store.job(job_id)
        runner_id = record.detail["runner_id"]
        on_service = await application.bot_data.services.generation.jobs.get(runner_id)
    edits = progress_edits(fake, admin.id, job_id)
    message_id = progress_message.response["result"]["message_id"]
    assert len(edits) > edits_before  # the new process went on editing the same message
    assert {edited for edited, _ in edits} == {message_id}
    assert edits[-1][1].startswith(f"Job {job_id} (gan): finished after")
    assert visible(report).splitlines()[-1] == (
        "❌ Not promoted (candidate does not beat the champion); gan-v1 keeps serving."
    )
    assert on_service.state == "succeeded" and record.status == "succeeded"
    assert all(call.chat_id != USER["id"] for call in fake.calls_of("sendMessage"))


async def test_a_service_restart_ends_the_job_and_the_bot_that_followed_it_says_so(
    fake: FakeTelegram,
    data_dir: Path,
    store: FakeModelStore,
    service_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_TRAINER_MODE", "slow")
    trainers = {kind: Trainer((*FAKE_TRAINER, kind), "generation.train") for kind in ("gan", "lstm")}
    settings = GenerationSettings(data_dir=service_dir, generation_token=TOKEN)

    def service_on(port: int | None = None) -> ServiceThread:
        jobs = TrainingJobs(service_dir, trainers, records_dir=service_dir / "jobs", cancel_grace_s=0.5)
        return ServiceThread(settings, fake_engine(store, service_dir), port, jobs)

    first = service_on().start()
    try:
        async with remote_bot(fake, data_dir, first.url) as application:
            admin = private_chat(fake, ADMIN)
            admin.message("/retrain gan", user=ADMIN)
            started, _ = await fake.wait_for_reply(admin.id, count=2)
            job_id = JOB_ID.search(visible(started)).group(1)
            await fake.wait_for(lambda call: f"Job {job_id} (gan): train step" in visible(call), timeout=30)
            await asyncio.to_thread(first.stop)  # its running job is stopped with it
            with service_on(first.port):
                await fake.wait_for(lambda call: f"Job {job_id} (gan): cancelled after" in visible(call), 60)
                record = application.bot_data.services.store.job(job_id)
    finally:
        first.stop()
    assert record.status == "cancelled" and record.detail["error"] == "the generation service stopped"
    assert (service_dir / "cleanup.log").read_text().split() == ["gan"]
