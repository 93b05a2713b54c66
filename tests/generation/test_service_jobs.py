"""generation.service.jobs: the one runner of training jobs (the service's, and the bot's in-process).

A stand-in trainer (tests/bot/fake_trainer.py) speaks the trainer's JSON-lines protocol, so these tests
need no torch; the real trainer runs through the service in test_serve_jobs.py."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from generation.api import (
    JobConflict,
    JobInfo,
    JobProgress,
    NoSample,
    TrainReport,
    TrainRequest,
    UnknownJob,
    recipe_from_args,
    trainer_args,
)
from generation.service.jobs import Trainer, TrainingJobs, _Run, conclude, is_trainer

FAKE_TRAINER = (sys.executable, str(Path(__file__).resolve().parents[1] / "bot" / "fake_trainer.py"))


def fake_trainers(*kinds: str) -> dict[str, Trainer]:
    return {kind: Trainer((*FAKE_TRAINER, kind), "generation.train") for kind in kinds}


@pytest.fixture
async def jobs(tmp_path: Path) -> AsyncIterator[TrainingJobs]:
    runner = TrainingJobs(
        tmp_path, fake_trainers("gan", "lstm"), records_dir=tmp_path / "jobs", cancel_grace_s=0.5
    )
    yield runner
    await runner.shutdown("the test ended")


def cleaned(data_dir: Path) -> list[str]:
    log = data_dir / "cleanup.log"
    return log.read_text().split() if log.exists() else []


async def collect(jobs: TrainingJobs, job_id: str, after: int = 0) -> list[JobProgress | JobInfo | None]:
    return [event async for event in jobs.events(job_id, after)]


async def test_a_job_streams_its_progress_then_ends_with_its_report_and_is_recorded(
    jobs: TrainingJobs, tmp_path: Path
) -> None:
    ended: list[JobInfo] = []

    async def hook(job: JobInfo) -> None:
        ended.append(job)

    jobs.on_finished = hook
    started = await jobs.start("lstm", {"epochs": 3, "lr": 0.01, "cpu_bf16": True}, dry_run=True)
    events = await asyncio.wait_for(collect(jobs, started.id), 30)
    *progress, end = events
    assert started.state == "running" and started.pid is not None
    assert [event.step for event in progress] == [1, 2, 3, 4, 5]
    assert isinstance(end, JobInfo) and end.state == "succeeded" and end.report.version == "lstm-v2"
    assert end.losses == [("train", step, 1.0 / step) for step in range(1, 6)]
    assert json.loads((tmp_path / "argv-lstm.json").read_text()) == [
        "--progress-json",
        "--dry-run",
        "--epochs",
        "3",
        "--set",
        "lr=0.01",
        "--set",
        "cpu_bf16=true",
    ]
    assert [job.id for job in ended] == [started.id]  # the hook ran before followers heard of the end
    record = JobInfo.model_validate_json((tmp_path / "jobs" / f"{started.id}.json").read_text())
    assert record.state == "succeeded" and record.report == end.report
    # A follower that comes late, or resumes after the 3rd line, misses nothing and repeats nothing.
    assert [event.step for event in (await collect(jobs, started.id, after=3))[:-1]] == [4, 5]
    assert cleaned(tmp_path) == []


async def test_one_job_per_kind_and_unknown_kinds_and_ids_are_refused(
    jobs: TrainingJobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRAINER_MODE", "slow")
    first = await jobs.start("gan")
    with pytest.raises(JobConflict) as refused:
        await jobs.start("gan")
    other = await jobs.start("lstm")  # another kind may train meanwhile
    assert refused.value.job_id == first.id and first.id in str(refused.value)
    assert {job.id for job in jobs.list()} == {first.id, other.id}
    with pytest.raises(ValueError, match="unknown model kind"):
        await jobs.start("bert")
    with pytest.raises(UnknownJob):
        jobs.get("gan-000000")


async def test_cancel_stops_the_trainer_and_cleans_up_and_a_finished_job_stays_as_it_was(
    jobs: TrainingJobs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRAINER_MODE", "stubborn")  # ignores SIGTERM: killed after the grace period
    job = await jobs.start("gan")
    while jobs.get(job.id).progress is None:
        await asyncio.sleep(0.02)
    cancelled = await asyncio.wait_for(jobs.cancel(job.id), 15)
    assert cancelled.state == "cancelled" and cancelled.error == "cancelled by an admin"
    assert jobs._runs[job.id].process.returncode == -9
    assert cleaned(tmp_path) == ["gan"]
    assert (await jobs.cancel(job.id)).state == "cancelled"  # over already: unchanged
    with pytest.raises(NoSample):
        await jobs.sample(job.id, seed=1, images=2, prompt="", length=10)


async def test_a_failing_trainer_says_why(jobs: TrainingJobs, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_TRAINER_MODE", "fail")
    job = await jobs.start("gan")
    ended = await asyncio.wait_for(jobs.wait(job.id), 15)
    assert ended.state == "failed"
    assert ended.error == "the trainer exited with code 3: ValueError: the data folder is empty"
    assert cleaned(tmp_path) == ["gan"]


def test_a_cancel_that_lands_after_the_report_keeps_the_success() -> None:
    late = _Run("gan-late", "gan", "", report=TrainReport(kind="gan", version="v", promoted=False))
    late.cancel_requested = True
    conclude(late, 0, deque())
    stopped = _Run("gan-stopped", "gan", "", cancel_requested=True)
    conclude(stopped, -15, deque(["Terminated"]))
    killed = _Run("gan-killed", "gan", "")
    conclude(killed, -9, deque(["Killed"]))
    assert (late.state, late.error) == ("succeeded", "")
    assert (stopped.state, stopped.error) == ("cancelled", "cancelled by an admin")
    assert (killed.state, killed.error) == ("failed", "the trainer was stopped by SIGKILL")


async def test_a_restart_fails_interrupted_jobs_stops_their_orphans_cleans_up_and_keeps_them_listed(
    tmp_path: Path,
) -> None:
    records = tmp_path / "jobs"
    records.mkdir()
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "generation.train"], start_new_session=True
    )
    try:
        for _ in range(100):  # until it has exec'd (before that, /proc shows the forking parent)
            if is_trainer(orphan.pid, "generation.train"):
                break
            await asyncio.sleep(0.05)
        left = JobInfo(id="gan-aaaaaa", kind="gan", state="running", pid=orphan.pid, created_at="2026-01-02")
        done = JobInfo(id="lstm-bbbbbb", kind="lstm", state="succeeded", created_at="2026-01-01")
        for job in (left, done):
            (records / f"{job.id}.json").write_text(job.model_dump_json())
        (records / "broken.json").write_text("{not json")
        restarted = TrainingJobs(
            tmp_path, fake_trainers("gan", "lstm"), records_dir=records, cancel_grace_s=0.5
        )
        interrupted = await restarted.recover()
        assert orphan.wait(timeout=10) is not None
    finally:
        if orphan.poll() is None:
            orphan.kill()
    assert [job.id for job in interrupted] == ["gan-aaaaaa"]
    assert restarted.get("gan-aaaaaa").state == "failed"
    assert restarted.get("gan-aaaaaa").error == "interrupted by a restart"
    assert [event async for event in restarted.events("gan-aaaaaa")] == [restarted.get("gan-aaaaaa")]
    assert restarted.get("lstm-bbbbbb").state == "succeeded"
    assert cleaned(tmp_path) == ["gan"]
    stored = JobInfo.model_validate_json((records / "gan-aaaaaa.json").read_text())
    assert stored.state == "failed"
    assert await restarted.recover() == []  # recorded as failed: nothing left to recover


def test_an_unrelated_process_is_not_taken_for_a_trainer() -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "other.module"])
    try:
        while b"other.module" not in Path(f"/proc/{sleeper.pid}/cmdline").read_bytes():
            time.sleep(0.05)
        assert not is_trainer(sleeper.pid, "generation.train")
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_recipe_travels_as_trainer_options_and_back() -> None:
    recipe = {"epochs": 2, "max_steps": 40, "lr": 0.001, "cpu_bf16": False}
    args = trainer_args(recipe, dry_run=True)
    assert args == [
        "--dry-run",
        "--epochs",
        "2",
        "--max-steps",
        "40",
        "--set",
        "lr=0.001",
        "--set",
        "cpu_bf16=false",
    ]
    assert recipe_from_args(args) == (
        {"epochs": "2", "max_steps": "40", "lr": "0.001", "cpu_bf16": "false"},
        True,
    )
    with pytest.raises(ValueError, match="cannot be sent as a recipe"):
        recipe_from_args(["--quick"])
    with pytest.raises(ValueError):
        TrainRequest(kind="gan", recipe={"Bad Key": 1})
    with pytest.raises(ValueError):
        TrainRequest(kind="bert")
