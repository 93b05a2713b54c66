"""Training on the service's host over HTTP: POST /v1/train, GET /v1/jobs[/{id}[/events|/sample]],
POST /v1/jobs/{id}/cancel, driven by the bot's client (HttpJobs) against the real app on uvicorn.

Most tests run a stand-in trainer (tests/bot/fake_trainer.py); one runs the real trainer, dry-run
sized, and checks that the service swaps the promoted model in and samples it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from generation.api import (
    GeneratorUnavailable,
    ImageRequest,
    InvalidRequest,
    JobConflict,
    JobInfo,
    JobProgress,
    NoSample,
    UnknownJob,
)
from generation.client import GenerationClient, HttpJobs
from generation.service.jobs import Trainer, TrainingJobs, is_trainer
from generation.settings import GenerationSettings
from tests.generation.service_fixtures import FakeModelStore, ServiceThread, fake_engine, free_port

TOKEN = "jobs-secret"
FAKE_TRAINER = (sys.executable, str(Path(__file__).resolve().parents[1] / "bot" / "fake_trainer.py"))


def fake_jobs(data_dir: Path) -> TrainingJobs:
    """The service's jobs with the stand-in trainer, recorded under DATA_DIR/jobs."""
    trainers = {kind: Trainer((*FAKE_TRAINER, kind), "generation.train") for kind in ("gan", "lstm")}
    return TrainingJobs(data_dir, trainers, records_dir=data_dir / "jobs", cancel_grace_s=0.5)


@asynccontextmanager
async def jobs_client(url: str, token: str | None = TOKEN) -> AsyncIterator[HttpJobs]:
    settings = GenerationSettings(generation_url=url, generation_token=token, generation_timeout_s=5.0)
    client = GenerationClient.from_settings(settings)
    await client.initialize()
    try:
        assert client.jobs is not None
        yield client.jobs
    finally:
        await client.shutdown()


def settings_for(data_dir: Path) -> GenerationSettings:
    return GenerationSettings(data_dir=data_dir, generation_token=TOKEN, generation_device="cpu")


@pytest.fixture
def store() -> FakeModelStore:
    return FakeModelStore()


@pytest.fixture
def service(store: FakeModelStore, tmp_path: Path) -> Iterator[ServiceThread]:
    with ServiceThread(
        settings_for(tmp_path), fake_engine(store, tmp_path), jobs=fake_jobs(tmp_path)
    ) as running:
        yield running


async def follow(jobs: HttpJobs, job_id: str, after: int = 0) -> list[JobProgress | JobInfo]:
    return [event async for event in jobs.events(job_id, after)]


async def test_train_streams_live_progress_then_the_report_and_swaps_in_the_promoted_model(
    service: ServiceThread, store: FakeModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRAINER_STEPS", "8")
    monkeypatch.setenv("FAKE_TRAINER_STEP_S", "0.05")
    store.champions["lstm"] = "lstm-v2"  # what the stand-in's report says it promoted
    loads_before = len(store.loaded)
    async with jobs_client(service.url) as jobs:
        started = await jobs.start("lstm", {"epochs": 2}, dry_run=True)
        *progress, end = await asyncio.wait_for(follow(jobs, started.id), 30)
        resumed = await follow(jobs, started.id, after=6)
        listed = await jobs.list()
    async with httpx.AsyncClient(base_url=service.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        raw = await http.post("/v1/train", json={"kind": "gan", "dry_run": True})
        models = (await http.get("/v1/models")).json()
    assert started.state == "running" and started.kind == "lstm"
    assert [event.step for event in progress] == list(range(1, 9))
    assert end.state == "succeeded" and end.report.version == "lstm-v2" and end.report.promoted
    assert end.progress.step == 8 and len(end.losses) == 8
    assert [event.step for event in resumed[:-1]] == [7, 8] and resumed[-1] == end
    assert listed[0].id == started.id
    assert raw.status_code == 202 and raw.json()["state"] == "running"
    # The service swapped the promoted model in itself, before the end event went out.
    assert len(store.loaded) > loads_before
    assert {model["kind"]: model["version"] for model in models}["lstm"] == "lstm-v2"


async def test_a_second_job_for_a_kind_gets_409_with_the_running_id_and_cancel_stops_it(
    service: ServiceThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRAINER_MODE", "slow")
    async with jobs_client(service.url) as jobs:
        first = await jobs.start("gan")
        with pytest.raises(JobConflict) as refused:
            await jobs.start("gan")
        async with httpx.AsyncClient(
            base_url=service.url, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as http:
            conflict = await http.post("/v1/train", json={"kind": "gan"})
        cancelled = await jobs.cancel(first.id)
        again = await jobs.cancel(first.id)
        end = (await follow(jobs, first.id))[-1]
        with pytest.raises(NoSample):
            await jobs.sample(first.id, seed=1, images=2, prompt="", length=10)
    assert refused.value.job_id == first.id and refused.value.kind == "gan"
    assert conflict.status_code == 409 and conflict.headers["X-Job-Id"] == first.id
    assert first.id in conflict.json()["detail"]
    assert cancelled.state == "cancelled" and cancelled.error == "cancelled by an admin"
    assert again == cancelled and end == cancelled
    assert (tmp_path / "cleanup.log").read_text().split() == ["gan"]


async def test_bad_requests_unknown_jobs_and_a_missing_token_are_refused(service: ServiceThread) -> None:
    async with httpx.AsyncClient(base_url=service.url) as anonymous:
        no_token = [
            await anonymous.post("/v1/train", json={"kind": "gan"}),
            await anonymous.get("/v1/jobs"),
            await anonymous.get("/v1/jobs/gan-000000/events"),
            await anonymous.post("/v1/jobs/gan-000000/cancel"),
        ]
    async with httpx.AsyncClient(base_url=service.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        bad_kind = await http.post("/v1/train", json={"kind": "bert"})
        bad_key = await http.post("/v1/train", json={"kind": "gan", "recipe": {"rm -rf": 1}})
        unknown = await http.get("/v1/jobs/gan-000000")
    async with jobs_client(service.url) as jobs:
        with pytest.raises(UnknownJob):
            await jobs.get("gan-000000")
        with pytest.raises(UnknownJob):
            await follow(jobs, "gan-000000")
        with pytest.raises(InvalidRequest, match="recipe"):
            await jobs.start("gan", {"Not A Key": 1})
    async with jobs_client(service.url, token="wrong") as jobs:
        with pytest.raises(GeneratorUnavailable, match="GENERATION_TOKEN"):
            await jobs.start("gan")
    assert all(response.status_code == 401 for response in no_token)
    assert bad_kind.status_code == 422 and "kind" in bad_kind.json()["detail"]
    assert bad_key.status_code == 422 and "not a setting name" in bad_key.json()["detail"]
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_job"


async def test_a_service_restart_fails_the_running_job_cleans_up_and_still_answers_for_it(
    store: FakeModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRAINER_MODE", "slow")
    port = free_port()
    first = ServiceThread(
        settings_for(tmp_path), fake_engine(store, tmp_path), port, fake_jobs(tmp_path)
    ).start()
    try:
        async with jobs_client(first.url) as jobs:
            job = await jobs.start("gan")
            running = await jobs.get(job.id)
            # The service dies without a chance to stop its trainer (a crash, an OOM kill): the record still
            # says running and the trainer is orphaned.
            record = tmp_path / "jobs" / f"{job.id}.json"
            crashed = record.read_text()
    finally:
        first.stop()
    record.write_text(crashed)
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "generation.train"], start_new_session=True
    )
    while not is_trainer(orphan.pid, "generation.train"):
        await asyncio.sleep(0.05)
    crashed_job = JobInfo.model_validate_json(crashed).model_copy(update={"pid": orphan.pid})
    record.write_text(crashed_job.model_dump_json())
    try:
        with ServiceThread(settings_for(tmp_path), fake_engine(store, tmp_path), port, fake_jobs(tmp_path)):
            async with jobs_client(first.url) as jobs:
                after = await jobs.get(job.id)
                events = await follow(jobs, job.id)
            assert orphan.wait(timeout=10) is not None
    finally:
        if orphan.poll() is None:
            os.kill(orphan.pid, signal.SIGKILL)
    assert running.state == "running"
    assert after.state == "failed" and after.error == "interrupted by a restart"
    assert events == [after]
    # The graceful stop of the first service cancelled its trainer and cleaned up; the restart cleaned
    # up after the crashed record once more.
    assert (tmp_path / "cleanup.log").read_text().split() == ["gan", "gan"]


async def test_the_real_trainer_trains_promotes_and_samples_on_the_service(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    with ServiceThread(settings, engine=None) as service:  # the production engine and jobs
        async with jobs_client(service.url) as jobs:
            started = await jobs.start("gan", {"device": "cpu", "threads": 1}, dry_run=True)
            *progress, end = await asyncio.wait_for(follow(jobs, started.id), 180)
            png = await jobs.sample(started.id, seed=3, images=4, prompt="", length=10)
        settings_client = GenerationSettings(generation_url=service.url, generation_token=TOKEN)
        client = GenerationClient.from_settings(settings_client)
        await client.initialize()
        try:
            drawn = await client.image(ImageRequest(digit=3, count=2, seed=1))
        finally:
            await client.shutdown()
    assert progress and all(isinstance(event, JobProgress) for event in progress)
    assert end.state == "succeeded", end.error
    assert end.report.promoted and end.report.dry_run and end.report.kind == "gan"
    assert png.startswith(b"\x89PNG")
    assert drawn.model_version == end.report.version  # served by the service without a reload call
    assert (tmp_path / "jobs" / f"{started.id}.json").exists()
