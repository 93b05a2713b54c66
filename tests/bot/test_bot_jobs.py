"""bot.jobs on this host's runner: the trainer subprocess, its progress and report, cancel, failures,
restart recovery, as the bot records them.

A small stand-in trainer (fake_trainer.py) speaks the trainer's JSON-lines protocol so these tests
need no torch and take milliseconds per job."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from bot_doubles import FAKE_TRAINER, fake_trainer_jobs

from bot.handlers.admin import parse_retrain_args
from bot.jobs import Job, JobAlreadyRunning, JobManager, RetrainOptions, UnknownJob
from bot.store import Store
from generation.service.jobs import is_trainer


@pytest.fixture
async def manager(data_dir: Path) -> AsyncIterator[JobManager]:
    async with fake_trainer_jobs(data_dir, extra_args={"lstm": ["--dry-run"], "intent": ["--quick"]}) as jobs:
        yield jobs


def gone(pid: int | None) -> bool:
    """The process has exited and been reaped."""
    return pid is not None and not Path(f"/proc/{pid}").exists()


def cleaned(data_dir: Path) -> list[str]:
    log = data_dir / "cleanup.log"
    return log.read_text().split() if log.exists() else []


async def test_a_job_reports_progress_and_its_report_and_is_recorded(
    manager: JobManager, data_dir: Path
) -> None:
    finished: list[Job] = []

    async def on_finish(job: Job) -> None:
        finished.append(job)

    job = await manager.start("lstm", RetrainOptions(epochs=3, max_steps=40), 7, 42, on_finish)
    await asyncio.wait_for(job.done.wait(), 30)
    await asyncio.sleep(0)  # let the hook run
    assert job.status == "succeeded" and job.error == ""
    assert job.progress is not None and (job.progress.step, job.progress.total_steps) == (5, 5)
    assert job.report is not None and job.report.version == "lstm-v2" and job.report.promoted
    assert json.loads((data_dir / "argv-lstm.json").read_text()) == [
        "--progress-json",
        "--dry-run",
        "--epochs",
        "3",
        "--max-steps",
        "40",
    ]
    record = manager.store.job(job.id)
    assert record is not None and record.status == "succeeded" and record.requested_by == 42
    assert record.detail["report"]["version"] == "lstm-v2" and record.detail["pid"] == job.pid
    assert finished == [job] and manager.running() == []
    assert cleaned(data_dir) == []  # a finished trainer leaves nothing to clean


async def test_each_kind_runs_its_own_trainer_with_its_own_options(
    manager: JobManager, data_dir: Path
) -> None:
    job = await manager.start("intent", RetrainOptions(seed=5), 7, 42)
    await asyncio.wait_for(job.done.wait(), 30)
    assert job.status == "succeeded" and job.report is not None and job.report.kind == "intent"
    assert json.loads((data_dir / "argv-intent.json").read_text()) == [
        "--progress-json",
        "--quick",
        "--seed",
        "5",
    ]
    real = JobManager(manager.store, data_dir)
    assert real.command("intent") == [sys.executable, "-m", "knowledge", "train-intent"]
    assert real.command("gan") == [sys.executable, "-m", "generation.train", "gan"]
    with pytest.raises(ValueError, match="unknown model kind"):
        await manager.start("vae2", RetrainOptions(), 7, 42)


async def test_a_second_job_for_the_same_model_is_refused_with_the_running_id(
    manager: JobManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRAINER_MODE", "slow")
    first = await manager.start("gan", RetrainOptions(), 1, 1)
    with pytest.raises(JobAlreadyRunning) as refused:
        await manager.start("gan", RetrainOptions(), 1, 1)
    assert refused.value.job is first and first.id in str(refused.value)
    other = await manager.start("lstm", RetrainOptions(), 1, 1)  # another model may train meanwhile
    assert {job.id for job in manager.running()} == {first.id, other.id}
    assert [record.status for record in manager.store.jobs()] == ["running", "running"]


async def test_cancel_stops_the_trainer_cleans_up_and_records_it(
    manager: JobManager, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRAINER_MODE", "slow")
    job = await manager.start("gan", RetrainOptions(), 1, 1)
    while job.progress is None:
        await asyncio.sleep(0.02)
    cancelled = await asyncio.wait_for(manager.cancel(job.id), 15)
    assert cancelled is job and job.status == "cancelled" and job.error == "cancelled by an admin"
    assert gone(job.pid)
    assert manager.store.job(job.id).status == "cancelled"
    assert cleaned(data_dir) == ["gan"]
    with pytest.raises(UnknownJob):
        await manager.cancel(job.id)  # over already
    with pytest.raises(UnknownJob):
        await manager.cancel("gan-0000")


async def test_a_trainer_that_ignores_sigterm_is_killed(
    manager: JobManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRAINER_MODE", "stubborn")
    job = await manager.start("lstm", RetrainOptions(), 1, 1)
    while job.progress is None:
        await asyncio.sleep(0.02)
    await asyncio.wait_for(manager.cancel(job.id), 15)
    assert job.status == "cancelled" and gone(job.pid)


async def test_a_failing_trainer_says_why(
    manager: JobManager, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRAINER_MODE", "fail")
    job = await manager.start("lstm", RetrainOptions(), 1, 1)
    await asyncio.wait_for(job.done.wait(), 30)
    assert job.status == "failed"
    assert job.error == "the trainer exited with code 3: ValueError: the data folder is empty"
    assert manager.store.job(job.id).detail["error"] == job.error
    assert cleaned(data_dir) == ["lstm"]


async def test_a_killed_trainer_fails_the_job(manager: JobManager, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_TRAINER_MODE", "slow")
    job = await manager.start("gan", RetrainOptions(), 1, 1)
    while job.progress is None:
        await asyncio.sleep(0.02)
    os.kill(job.pid, signal.SIGKILL)
    await asyncio.wait_for(job.done.wait(), 15)
    assert job.status == "failed" and job.error == "the trainer was stopped by SIGKILL"


async def test_shutdown_stops_running_trainers_without_reporting(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRAINER_MODE", "slow")
    data_dir.mkdir(parents=True)
    store = Store(data_dir / "bot.sqlite3")
    store.open()
    manager = JobManager(store, data_dir, cancel_grace_s=0.5, trainer=FAKE_TRAINER)
    reported: list[Job] = []

    async def on_finish(job: Job) -> None:
        reported.append(job)

    job = await manager.start("gan", RetrainOptions(), 1, 1, on_finish)
    await manager.shutdown()
    record = store.job(job.id)
    store.close()
    assert gone(job.pid)
    assert record.status == "cancelled" and record.detail["error"] == "the bot stopped"
    assert reported == []


async def test_recover_fails_interrupted_jobs_and_stops_their_orphaned_trainer(
    manager: JobManager, data_dir: Path
) -> None:
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "generation.train"], start_new_session=True
    )
    try:
        for _ in range(100):  # until it has exec'd (before that, /proc shows the forking parent's command)
            if is_trainer(orphan.pid, "generation.train"):
                break
            await asyncio.sleep(0.05)
        assert is_trainer(orphan.pid, "generation.train")
        manager.store.create_job("gan-dead", "retrain-gan", 1, 1, {"kind": "gan", "pid": orphan.pid})
        manager.store.create_job("lstm-dead", "retrain-lstm", 1, 1, {"kind": "lstm", "pid": 999_999_999})
        recovered = await manager.recover()
        assert orphan.wait(timeout=10) is not None
    finally:
        if orphan.poll() is None:
            orphan.kill()
    assert sorted(record.id for record in recovered) == ["gan-dead", "lstm-dead"]
    assert {record.id: record.status for record in manager.store.jobs()} == {
        "gan-dead": "failed",
        "lstm-dead": "failed",
    }
    assert manager.store.job("gan-dead").detail["error"] == "interrupted by a restart"
    assert cleaned(data_dir) == ["gan", "lstm"]
    assert await manager.recover() == []  # nothing left to recover


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["gan"], (["gan"], RetrainOptions())),
        (["LSTM", "epochs=3"], (["lstm"], RetrainOptions(epochs=3))),
        (
            ["all", "steps=10", "epochs=2"],
            (["gan", "lstm", "vae", "word", "intent"], RetrainOptions(epochs=2, max_steps=10)),
        ),
        (["Intent", "seed=3"], (["intent"], RetrainOptions(seed=3))),
        (["gan", "seed=42"], (["gan"], RetrainOptions(seed=42))),
        (["gan", "seed=2147483648"], None),
        ([], None),
        (["bert"], None),
        (["gan", "epochs=0"], None),
        (["gan", "epochs=-1"], None),
        (["gan", "epochs=2", "epochs=3"], None),
        (["gan", "lr=0.1"], None),
        (["gan", "5"], None),
        (["gan", "steps=99999999999"], None),
    ],
)
def test_parse_retrain_args(args: list[str], expected: tuple | None) -> None:
    assert parse_retrain_args(args) == expected


def test_store_feedback_by_day_and_job_lookup(data_dir: Path) -> None:
    store = Store(data_dir / "bot.sqlite3")
    store.open()
    try:
        first = store.record_answer(1, 1, "en", True, "q1", [])
        second = store.record_answer(1, 2, "en", True, "q2", [])
        store.record_feedback(first, 1, True)
        store.record_feedback(second, 2, False)
        store.record_feedback(second, 3, True)
        store.create_job("gan-1", "retrain-gan", 5, 6, {"kind": "gan"})
        by_day = store.feedback_by_day(7)
        job = store.job("gan-1")
        missing = store.job("nope")
    finally:
        store.close()
    assert list(by_day.values()) == [(2, 1)]
    assert job is not None and (job.kind, job.status, job.requested_by, job.detail) == (
        "retrain-gan",
        "running",
        5,
        {"kind": "gan"},
    )
    assert missing is None
