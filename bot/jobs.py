"""Background training jobs as the bot records and follows them.

A job trains one kind: a generator (`python -m generation.train gan|lstm`) or the intent classifier
(`python -m knowledge train-intent`). Generators train where they are served: on the generation service
when GENERATION_URL is set (`GenerationClient.jobs`, over /v1/train), else by this process's runner
(`generation.client.local_jobs`), which always trains the intent classifier. Both offer the same methods,
so the bot does the same for either: it records the job in the store, follows its progress events to its
end, cancels it, and asks for a sample of its candidate. At most one job per kind runs at a time.

Restarts. A job this process runs cannot outlive it: at start its record is failed, a trainer the dead
bot left behind is stopped, and its partial files are removed. A job on the service outlives the bot:
the bot re-attaches to it and keeps following it (or, if it ended meanwhile, reports how it ended).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bot.store import JobRecord, Store
from generation.api import (
    MODEL_KINDS,
    GenerationError,
    GeneratorUnavailable,
    JobConflict,
    JobInfo,
    JobProgress,
    RecipeValue,
    TrainReport,
)
from generation.api import UnknownJob as UnknownRemoteJob
from generation.client import HttpJobs, Trainer, TrainingJobs, local_jobs
from knowledge.api import INTENT_MODEL

logger = logging.getLogger(__name__)

# The bot's own trainer; the generators' come with generation.client.local_jobs.
INTENT_TRAINER = Trainer((sys.executable, "-m", "knowledge", "train-intent"), "train-intent")
# What /retrain can train, in the order `/retrain all` starts them.
JOB_KINDS: tuple[str, ...] = (*MODEL_KINDS, INTENT_MODEL)
MAX_SEED = 2**31  # seeds the trainer takes: 0 <= seed < MAX_SEED
FOLLOW_RETRY_S = (1.0, 30.0)  # first and longest pause before following a service's job again
STOP_WAIT_S = 60.0


@dataclass(frozen=True)
class RetrainOptions:
    """What an admin may ask for: more or fewer epochs, a cap on optimiser steps, a seed (without one
    the trainer uses the recipe's)."""

    epochs: int | None = None
    max_steps: int | None = None
    seed: int | None = None

    def with_seed(self) -> RetrainOptions:
        """These options with a fresh seed unless one was given."""
        return self if self.seed is not None else replace(self, seed=secrets.randbelow(MAX_SEED))

    def recipe(self) -> dict[str, RecipeValue]:
        """The options set, as a trainer recipe."""
        options = {"epochs": self.epochs, "max_steps": self.max_steps, "seed": self.seed}
        return {key: value for key, value in options.items() if value is not None}

    @classmethod
    def from_recipe(cls, recipe: Mapping[str, Any]) -> RetrainOptions:
        return cls(**{key: int(recipe[key]) for key in ("epochs", "max_steps", "seed") if key in recipe})

    def describe(self) -> str:
        names = {"max_steps": "steps"}
        return " ".join(f"{names.get(key, key)}={value}" for key, value in self.recipe().items())


@dataclass
class Job:
    """A training job the bot started (or re-attached to after a restart)."""

    id: str
    kind: str
    chat_id: int | None
    user_id: int | None
    options: RetrainOptions
    remote: bool = False  # trained by the generation service
    runner_id: str = ""  # the id its runner (this process's or the service's) gave it
    status: str = "running"  # running | succeeded | failed | cancelled
    progress: JobProgress | None = None
    losses: list[tuple[str, int, float]] = field(default_factory=list)  # (phase, step, loss) as reported
    report: TrainReport | None = None
    error: str = ""
    pid: int | None = None  # of its trainer, on the host that runs it
    seconds: float = 0.0  # how long it has run, as its runner last said
    cancel_requested: bool = False
    # Where its progress message is (chat, thread, message id, language): what a restart needs to
    # go on editing it.
    place: dict[str, Any] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class JobAlreadyRunning(Exception):
    """A job for this model kind is running already."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"{job.kind} is already being retrained by job {job.id}")
        self.job = job


class JobNotStarted(Exception):
    """The trainer could not be started; the message says why."""


class UnknownJob(KeyError):
    """No running job has this id."""


FinishHook = Callable[[Job], Awaitable[None]]
Runner = TrainingJobs | HttpJobs


class JobManager:
    """Starts, follows, cancels and records training jobs; one per model kind at a time."""

    def __init__(
        self,
        store: Store,
        data_dir: Path,
        *,
        extra_args: Mapping[str, Sequence[str]] | None = None,
        cancel_grace_s: float = 10.0,
        trainer: Sequence[str] | None = None,
        remote: HttpJobs | None = None,
    ) -> None:
        """`extra_args`: options added to every run of a kind's trainer. `trainer`: one command for every
        kind, which takes the kind as its first argument (a test's stand-in). `remote`: the generation
        service's jobs, which then train the generators."""
        self.store = store
        self.extra_args = {kind: list(args) for kind, args in (extra_args or {}).items()}
        self.local = local_jobs(Path(data_dir), {INTENT_MODEL: INTENT_TRAINER}, cancel_grace_s=cancel_grace_s)
        if trainer:
            self.use_trainer(trainer)
        self.remote = remote
        self._jobs: dict[str, Job] = {}
        self._tasks: dict[asyncio.Task, Job | None] = {}
        self._stopping = False  # set by shutdown: Telegram is gone, outcomes are only recorded

    def use_trainer(self, command: Sequence[str]) -> None:
        """Run `command KIND` for every kind on this host instead of its trainer (a test's stand-in)."""
        marks = {kind: self.local.trainers[kind].mark for kind in JOB_KINDS}
        self.local.trainers = {kind: Trainer((*command, kind), marks[kind]) for kind in JOB_KINDS}

    def command(self, kind: str) -> list[str]:
        """The command that trains `kind` on this host, before its options."""
        return list(self.local.trainers[kind].command)

    def runner(self, job: Job) -> Runner:
        return self.remote if job.remote and self.remote is not None else self.local

    # Queries ---------------------------------------------------------------------------------------

    def running(self) -> list[Job]:
        """Jobs still running, oldest first."""
        return [job for job in self._jobs.values() if job.status == "running"]

    def running_for(self, kind: str) -> Job | None:
        return next((job for job in self.running() if job.kind == kind), None)

    # Starting and following ------------------------------------------------------------------------

    async def start(
        self,
        kind: str,
        options: RetrainOptions,
        chat_id: int | None,
        user_id: int | None,
        on_finish: FinishHook | None = None,
    ) -> Job:
        """Start training `kind`; JobAlreadyRunning when a job runs for it, JobNotStarted when its
        trainer (or the service) could not start one."""
        if kind not in JOB_KINDS:
            raise ValueError(f"unknown model kind {kind!r}")
        current = self.running_for(kind)
        if current is not None:
            raise JobAlreadyRunning(current)
        remote = self.remote is not None and kind in MODEL_KINDS
        job = Job(self._new_id(kind), kind, chat_id, user_id, options, remote=remote)
        self._jobs[job.id] = job  # before any await: a second /retrain sees it at once
        self.store.create_job(job.id, f"retrain-{kind}", user_id, chat_id, self._detail(job))
        try:
            info = await self.runner(job).start(kind, options.recipe(), False, self.extra_args.get(kind, ()))
        except (OSError, ValueError, GenerationError) as exc:
            job.status, job.error = "failed", _start_error(exc)
            self._record(job)
            job.done.set()
            raise JobNotStarted(job.error) from exc
        job.runner_id, job.pid = info.id, info.pid
        self._record(job)
        logger.info("job %s: %s job %s", job.id, "service" if remote else "local", info.id)
        self._spawn(self._follow(job, on_finish), job)
        return job

    def place(self, job: Job, **where: Any) -> None:
        """Remember where the job's progress message is (see Job.place)."""
        job.place = where
        self._record(job)

    def _new_id(self, kind: str) -> str:
        taken = {record.id for record in self.store.jobs()} | set(self._jobs)
        while True:
            job_id = f"{kind}-{secrets.token_hex(2)}"
            if job_id not in taken:
                return job_id

    def track(self, coroutine: Awaitable[None]) -> None:
        """Run `coroutine` as a task that shutdown() waits for or cancels (e.g. a progress follower)."""
        self._spawn(coroutine, None)

    def _spawn(self, coroutine: Awaitable[None], job: Job | None) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks[task] = job
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task) -> None:
        self._tasks.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            logger.error("a background job task failed", exc_info=task.exception())

    async def _follow(self, job: Job, on_finish: FinishHook | None) -> None:
        """Follow the job's progress to its end; record the outcome; call the hook."""
        try:
            self._take(job, await self._until_end(job))
        except asyncio.CancelledError:
            raise  # the bot stops: a service's job runs on, and its record says so
        except Exception as exc:  # our own bug: never leave a job marked running
            logger.exception("job %s: following it failed", job.id)
            job.status, job.error = "failed", f"internal error: {type(exc).__name__}"
        self._record(job)
        job.done.set()
        if on_finish is not None and not self._stopping:
            try:
                await on_finish(job)
            except Exception:
                logger.exception("job %s: reporting the outcome failed", job.id)

    async def _until_end(self, job: Job) -> JobInfo:
        """The job's progress events, as they come, until it ends; a broken stream from the service is
        resumed where it broke off."""
        runner, seen, pause = self.runner(job), 0, FOLLOW_RETRY_S[0]
        while True:
            try:
                async for event in runner.events(job.runner_id, seen):
                    if isinstance(event, JobInfo):
                        return event
                    if isinstance(event, JobProgress):
                        seen += 1
                        _progress(job, event)
            except UnknownRemoteJob:
                return JobInfo(
                    id=job.runner_id,
                    kind=job.kind,
                    state="failed",
                    error="the generation service lost the job",
                )
            except GeneratorUnavailable as exc:
                logger.warning("job %s: following it on the service: %s; again in %.0f s", job.id, exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, FOLLOW_RETRY_S[1])

    def _take(self, job: Job, info: JobInfo) -> None:
        job.status = info.state if info.finished else "failed"
        job.report, job.error, job.losses = info.report, info.error, list(info.losses)
        job.progress, job.pid, job.seconds = info.progress or job.progress, info.pid or job.pid, info.seconds
        if job.status == "succeeded" and job.report is None:  # a runner's bug, not a success
            job.status, job.error = "failed", "the trainer ended without a report"

    # Cancelling and samples ------------------------------------------------------------------------

    async def cancel(self, job_id: str) -> Job:
        """Stop a running job; returns it once it is over (with status "succeeded" if it finished before
        the stop landed). GenerationError when the service cannot be asked."""
        job = self._jobs.get(job_id)
        if job is None or job.status != "running":
            raise UnknownJob(job_id)
        job.cancel_requested = True
        await self.runner(job).cancel(job.runner_id)
        await job.done.wait()
        return job

    async def sample(self, job: Job, *, seed: int, images: int, prompt: str, length: int) -> bytes | str:
        """A sample of the job's candidate, served or not, drawn where it was trained: PNG bytes for an
        image model, the text for a text model."""
        return await self.runner(job).sample(
            job.runner_id, seed=seed, images=images, prompt=prompt, length=length
        )

    # Start and stop of the bot ---------------------------------------------------------------------

    async def recover(self, resume: Callable[[Job], FinishHook | None] | None = None) -> list[JobRecord]:
        """At start: fail the jobs a previous process ran here, stop trainers it left behind and remove
        their partial files (the champion is never touched); follow again the jobs it left on the
        generation service, with the hook `resume` gives each. Returns the failed records."""
        interrupted = self.store.fail_interrupted_jobs(runs_on=self._on_service)
        for record in interrupted:
            logger.warning("job %s (%s) was interrupted by a restart; marked failed", record.id, record.kind)
            pid, kind = record.detail.get("pid"), record.detail.get("kind")
            if isinstance(pid, int) and kind in self.local.trainers and not record.detail.get("remote"):
                await self.local.stop_orphan(pid, kind)
        for kind in sorted({record.detail.get("kind") for record in interrupted} & set(JOB_KINDS)):
            await self.local.cleanup(kind)
        for record in self.store.jobs("running"):
            job = self._reattach(record)
            logger.info("job %s: following it again on the generation service (%s)", job.id, job.runner_id)
            self._spawn(self._follow(job, resume(job) if resume else None), job)
        return interrupted

    def _on_service(self, record: JobRecord) -> bool:
        detail = record.detail
        return bool(self.remote is not None and detail.get("remote") and detail.get("runner_id"))

    def _reattach(self, record: JobRecord) -> Job:
        detail = record.detail
        job = Job(
            record.id,
            str(detail["kind"]),
            record.chat_id,
            record.requested_by,
            RetrainOptions.from_recipe(detail.get("recipe") or {}),
            remote=True,
            runner_id=str(detail["runner_id"]),
            pid=detail.get("pid"),
            place=dict(detail.get("place") or {}),
        )
        self._jobs[job.id] = job
        return job

    async def shutdown(self) -> None:
        """Stop the trainers this process runs (they cannot outlive the bot) and record them as
        cancelled; stop following the service's jobs, which run on."""
        self._stopping = True
        await self.local.shutdown("the bot stopped")
        for task, job in list(self._tasks.items()):
            if job is not None and job.remote:
                task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=STOP_WAIT_S)
        for task in set(self._tasks):
            task.cancel()

    # Records ---------------------------------------------------------------------------------------

    def _detail(self, job: Job) -> dict[str, Any]:
        return {
            "kind": job.kind,
            "recipe": job.options.recipe(),
            "remote": job.remote,
            "runner_id": job.runner_id,
            "pid": job.pid,
            "place": job.place,
            "progress": job.progress.model_dump() if job.progress else None,
            "report": job.report.to_json() if job.report is not None else None,
            "error": job.error,
            "seconds": round(job.seconds, 1),
        }

    def _record(self, job: Job) -> None:
        try:
            self.store.update_job(job.id, job.status, self._detail(job))
        except Exception:  # the store may already be closed while the bot shuts down
            logger.exception("job %s: could not record status %s", job.id, job.status)


def _progress(job: Job, progress: JobProgress) -> None:
    job.progress, job.seconds = progress, progress.elapsed_s
    if point := progress.training_loss:
        job.losses.append(point)


def _start_error(exc: Exception) -> str:
    if isinstance(exc, JobConflict):
        return f"the generation service is already training {exc.kind} (its job {exc.job_id})"
    if isinstance(exc, OSError):
        return f"could not start the trainer: {exc}"
    return str(exc)
