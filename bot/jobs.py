"""Background training jobs: the companion trainer (`python -m generation.train gan|lstm`) or the
intent classifier's (`python -m knowledge train-intent`) as a subprocess.

The bot never imports a trainer: it runs it with DATA_DIR from its own settings, reads the JSON
progress lines the trainer prints with --progress-json and its final JSON report line, and records
every job in the store. At most one job per model kind runs at a time. Cancelling sends SIGTERM to
the trainer's process group and SIGKILL after a grace period; the trainer's partial files are then
removed with the trainer's `--cleanup`. Champions only ever change by an atomic swap, so a trainer
stopped or killed at any point leaves the champion serving.

Jobs outlive neither the bot nor the machine: on start, records still marked running are failed,
a trainer the dead bot left behind is stopped, and its partial files are removed (`recover`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shlex
import signal
import sys
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bot.store import JobRecord, Store
from generation.api import MODEL_KINDS, REPORT_EVENT, TrainReport
from knowledge.api import INTENT_MODEL

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trainer:
    """How to run one kind's trainer: its command before the options, and an argument of that command
    which tells its process from others (a restart stops only a trainer it left behind)."""

    command: tuple[str, ...]
    mark: str


# What /retrain can train, in the order `/retrain all` starts them.
TRAINERS: dict[str, Trainer] = {
    **{
        kind: Trainer((sys.executable, "-m", "generation.train", kind), "generation.train")
        for kind in MODEL_KINDS
    },
    INTENT_MODEL: Trainer((sys.executable, "-m", "knowledge", "train-intent"), "train-intent"),
}
JOB_KINDS: tuple[str, ...] = tuple(TRAINERS)
SAMPLE_MODULE = "generation.sample"
SAMPLE_TIMEOUT_S = 120.0
STDERR_LINES = 20  # the tail kept to say why a trainer failed
CLEANUP_TIMEOUT_S = 60.0
MAX_SEED = 2**31  # seeds the trainer takes: 0 <= seed < MAX_SEED


@dataclass(frozen=True)
class Progress:
    """One progress line of the trainer: phase is "train", "evaluate" or "done"."""

    phase: str
    step: int
    total_steps: int
    loss: float | None
    elapsed_s: float
    eta_s: float

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Progress:
        loss = data.get("loss")
        return cls(
            phase=str(data.get("phase", "train")),
            step=int(data.get("step", 0)),
            total_steps=int(data.get("total_steps", 0)),
            loss=float(loss) if loss is not None else None,
            elapsed_s=float(data.get("elapsed_s", 0.0)),
            eta_s=float(data.get("eta_s", 0.0)),
        )


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

    def trainer_args(self) -> list[str]:
        args: list[str] = []
        if self.epochs is not None:
            args += ["--epochs", str(self.epochs)]
        if self.max_steps is not None:
            args += ["--max-steps", str(self.max_steps)]
        if self.seed is not None:
            args += ["--seed", str(self.seed)]
        return args

    def describe(self) -> str:
        parts = []
        if self.epochs is not None:
            parts.append(f"epochs={self.epochs}")
        if self.max_steps is not None:
            parts.append(f"steps={self.max_steps}")
        if self.seed is not None:
            parts.append(f"seed={self.seed}")
        return " ".join(parts)


@dataclass
class Job:
    """A running (or just finished) training job."""

    id: str
    kind: str
    chat_id: int | None
    user_id: int | None
    options: RetrainOptions
    started: float = field(default_factory=time.monotonic)
    status: str = "running"  # running | succeeded | failed | cancelled
    progress: Progress | None = None
    losses: list[tuple[str, int, float]] = field(default_factory=list)  # (phase, step, loss) as reported
    report: TrainReport | None = None
    error: str = ""
    pid: int | None = None
    cancel_requested: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)
    process: asyncio.subprocess.Process | None = field(default=None, repr=False)

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started


class JobAlreadyRunning(Exception):
    """A job for this model kind is running already."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"{job.kind} is already being retrained by job {job.id}")
        self.job = job


class UnknownJob(KeyError):
    """No running job has this id."""


FinishHook = Callable[[Job], Awaitable[None]]


class JobManager:
    """Starts, watches, cancels and records training jobs; one per model kind at a time."""

    def __init__(
        self,
        store: Store,
        data_dir: Path,
        *,
        extra_args: Mapping[str, Sequence[str]] | None = None,
        cancel_grace_s: float = 10.0,
        trainer: Sequence[str] | None = None,
    ) -> None:
        """`extra_args`: options added to every run of a kind's trainer. `trainer`: one command for
        every kind, which takes the kind as its first argument (a test's stand-in)."""
        self.store = store
        self.data_dir = Path(data_dir)
        self.extra_args = {kind: list(args) for kind, args in (extra_args or {}).items()}
        self.cancel_grace_s = cancel_grace_s
        self.trainer = list(trainer) if trainer else None
        self._jobs: dict[str, Job] = {}
        self._tasks: set[asyncio.Task] = set()
        self._stopping = False  # set by shutdown: Telegram is gone, outcomes are only recorded

    def command(self, kind: str) -> list[str]:
        """The command that trains `kind`, before its options."""
        return [*self.trainer, kind] if self.trainer else list(TRAINERS[kind].command)

    # Queries ---------------------------------------------------------------------------------------

    def running(self) -> list[Job]:
        """Jobs still running, oldest first."""
        return [job for job in self._jobs.values() if job.status == "running"]

    def running_for(self, kind: str) -> Job | None:
        return next((job for job in self.running() if job.kind == kind), None)

    # Starting and watching -------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        # The trainer reads the same DATA_DIR as the bot; absolute, whatever its working directory.
        return {**os.environ, "DATA_DIR": str(self.data_dir.resolve()), "PYTHONUNBUFFERED": "1"}

    async def start(
        self,
        kind: str,
        options: RetrainOptions,
        chat_id: int | None,
        user_id: int | None,
        on_finish: FinishHook | None = None,
    ) -> Job:
        """Start a trainer for `kind`; raises JobAlreadyRunning when one is running for it."""
        if kind not in JOB_KINDS:
            raise ValueError(f"unknown model kind {kind!r}")
        current = self.running_for(kind)
        if current is not None:
            raise JobAlreadyRunning(current)
        job = Job(self._new_id(kind), kind, chat_id, user_id, options)
        argv = [
            *self.command(kind),
            "--progress-json",
            *self.extra_args.get(kind, ()),
            *options.trainer_args(),
        ]
        self._jobs[job.id] = job  # before any await: a second /retrain sees it at once
        self.store.create_job(job.id, f"retrain-{kind}", user_id, chat_id, self._detail(job))
        try:
            job.process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._env(),
                start_new_session=True,  # its own process group: we stop it (and its children) ourselves
            )
        except OSError as exc:
            job.status, job.error = "failed", f"could not start the trainer: {exc}"
            self._record(job)
            job.done.set()
            raise
        job.pid = job.process.pid
        self._record(job)
        logger.info("job %s: trainer pid %s: %s", job.id, job.pid, shlex.join(argv))
        self._spawn(self._watch(job, on_finish))
        return job

    def _new_id(self, kind: str) -> str:
        taken = {record.id for record in self.store.jobs()} | set(self._jobs)
        while True:
            job_id = f"{kind}-{secrets.token_hex(2)}"
            if job_id not in taken:
                return job_id

    def track(self, coroutine: Awaitable[None]) -> None:
        """Run `coroutine` as a task that shutdown() waits for or cancels (e.g. a progress follower)."""
        self._spawn(coroutine)

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("a background job task failed", exc_info=task.exception())

    async def _watch(self, job: Job, on_finish: FinishHook | None) -> None:
        """Read the trainer's output until it exits; record the outcome; clean up; call the hook."""
        process = job.process
        assert process is not None and process.stdout is not None and process.stderr is not None
        stderr_tail: deque[str] = deque(maxlen=STDERR_LINES)
        try:
            await asyncio.gather(self._read_stdout(job, process.stdout), _tail(process.stderr, stderr_tail))
            returncode = await process.wait()
            self._conclude(job, returncode, stderr_tail)
        except asyncio.CancelledError:
            await self._stop_process(job)
            job.status, job.error = "cancelled", job.error or "the bot stopped"
            self._record(job)
            job.done.set()
            raise
        except Exception as exc:  # our own bug: never leave a job marked running
            logger.exception("job %s: watching the trainer failed", job.id)
            await self._stop_process(job)
            job.status, job.error = "failed", f"internal error: {type(exc).__name__}"
        self._record(job)
        try:
            if job.status != "succeeded":
                await self.cleanup(job.kind)
        finally:
            job.done.set()
        if on_finish is not None and not self._stopping:
            try:
                await on_finish(job)
            except Exception:
                logger.exception("job %s: reporting the outcome failed", job.id)

    async def _read_stdout(self, job: Job, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            try:
                event = json.loads(line)
            except ValueError:
                logger.debug("job %s: %s", job.id, line.decode(errors="replace").rstrip())
                continue
            if not isinstance(event, dict):
                continue
            if event.get("event") == "progress":
                job.progress = progress = Progress.from_json(event)
                if progress.loss is not None and progress.phase not in ("evaluate", "done"):
                    job.losses.append((progress.phase, progress.step, progress.loss))
            elif event.get("event") == REPORT_EVENT:
                try:
                    job.report = TrainReport.from_json(event)
                except ValueError as exc:  # the job then fails as one that ended without a report
                    logger.warning("job %s: unreadable report: %s", job.id, exc)

    def _conclude(self, job: Job, returncode: int, stderr_tail: deque[str]) -> None:
        if returncode == 0 and job.report is not None:  # done, even if a cancel came too late
            job.status = "succeeded"
        elif job.cancel_requested:
            job.status, job.error = "cancelled", job.error or "cancelled by an admin"
        else:
            job.status = "failed"
            if returncode < 0:  # killed from outside: its last words are not the reason
                job.error = f"the trainer was stopped by {_signal_name(-returncode)}"
            else:
                cause = (
                    "the trainer ended without a report"
                    if returncode == 0
                    else f"the trainer exited with code {returncode}"
                )
                last = next((line for line in reversed(stderr_tail) if line.strip()), "")
                job.error = f"{cause}: {last}" if last else cause
        logger.info("job %s %s %s", job.id, job.status, job.error)

    # Cancelling ------------------------------------------------------------------------------------

    async def cancel(self, job_id: str) -> Job:
        """Stop a running job (SIGTERM, SIGKILL after the grace period); returns it once it is over
        (with status "succeeded" if it finished before the signal landed)."""
        job = self._jobs.get(job_id)
        if job is None or job.status != "running":
            raise UnknownJob(job_id)
        job.cancel_requested = True
        await self._stop_process(job)
        await job.done.wait()
        return job

    async def _stop_process(self, job: Job) -> None:
        process = job.process
        if process is None or process.returncode is not None:
            return
        _signal_group(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), self.cancel_grace_s)
        except TimeoutError:
            logger.warning(
                "job %s: trainer ignored SIGTERM for %.0f s; killing it", job.id, self.cancel_grace_s
            )
            _signal_group(process.pid, signal.SIGKILL)
            await process.wait()

    async def cleanup(self, kind: str) -> bool:
        """Remove partial files a stopped trainer left behind (the registry skips live runs' folders)."""
        try:
            returncode, out, err = await self._run_to_end(
                [*self.command(kind), "--cleanup"], CLEANUP_TIMEOUT_S
            )
        except (OSError, TimeoutError) as exc:
            logger.warning("could not clean up partial %s files: %s", kind, exc)
            return False
        if returncode != 0:
            logger.warning(
                "cleanup of partial %s files failed: %s", kind, err.decode(errors="replace")[-300:]
            )
            return False
        logger.info("cleaned up partial %s files: %s", kind, out.decode(errors="replace").strip()[-300:])
        return True

    async def _run_to_end(self, argv: list[str], timeout_s: float) -> tuple[int, bytes, bytes]:
        """Run a short helper command with the trainer's environment; (returncode, stdout, stderr).
        On timeout the process is killed, not left running, and TimeoutError is raised."""
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._env(),
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        return process.returncode or 0, out, err

    async def sample(
        self, kind: str, checkpoint: str, *, seed: int, images: int, prompt: str, length: int
    ) -> bytes | str:
        """A sample from a checkpoint that is not serving (a candidate that was not promoted), drawn by
        `python -m generation.sample` in a subprocess: PNG bytes for gan, the text for lstm."""
        base = [sys.executable, "-m", SAMPLE_MODULE, "--checkpoint", checkpoint]
        with tempfile.TemporaryDirectory(prefix="sample-") as folder:
            out = Path(folder) / "sample.png"
            if kind == "gan":
                argv = [*base, "image", "--n", str(images), "--seed", str(seed), "--out", str(out)]
            else:
                argv = [*base, "text", prompt, "--length", str(length), "--seed", str(seed)]
            returncode, stdout, stderr = await self._run_to_end(argv, SAMPLE_TIMEOUT_S)
            if returncode != 0:
                raise RuntimeError(f"sampling failed: {stderr.decode(errors='replace').strip()[-300:]}")
            return out.read_bytes() if kind == "gan" else stdout.decode(errors="replace").strip()

    # Start and stop of the bot ---------------------------------------------------------------------

    async def recover(self) -> list[JobRecord]:
        """At start: fail jobs a previous process left running, stop trainers it left behind, and
        remove their partial files. The champion is never touched."""
        interrupted = self.store.fail_interrupted_jobs()
        for record in interrupted:
            logger.warning("job %s (%s) was interrupted by a restart; marked failed", record.id, record.kind)
            pid = record.detail.get("pid")
            kind = record.detail.get("kind")
            if isinstance(pid, int) and kind in TRAINERS and _is_trainer(pid, kind):
                logger.warning("job %s: stopping its orphaned trainer (pid %s)", record.id, pid)
                await _stop_orphan(pid, kind, self.cancel_grace_s)
        for kind in sorted({record.detail.get("kind") for record in interrupted} & set(JOB_KINDS)):
            await self.cleanup(kind)
        return interrupted

    async def shutdown(self) -> None:
        """Stop running trainers (they cannot outlive the bot) and record them as cancelled."""
        self._stopping = True
        for job in self.running():
            job.cancel_requested = True
            job.error = "the bot stopped"
            await self._stop_process(job)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=CLEANUP_TIMEOUT_S)
        for task in set(self._tasks):
            task.cancel()

    # Records ---------------------------------------------------------------------------------------

    def _detail(self, job: Job) -> dict[str, Any]:
        return {
            "kind": job.kind,
            "options": job.options.describe(),
            "pid": job.pid,
            "progress": asdict(job.progress) if job.progress else None,
            "report": job.report.to_json() if job.report is not None else None,
            "error": job.error,
            "seconds": round(job.elapsed_s, 1),
        }

    def _record(self, job: Job) -> None:
        try:
            self.store.update_job(job.id, job.status, self._detail(job))
        except Exception:  # the store may already be closed while the bot shuts down
            logger.exception("job %s: could not record status %s", job.id, job.status)


async def _tail(stream: asyncio.StreamReader, lines: deque[str]) -> None:
    while line := await stream.readline():
        lines.append(line.decode(errors="replace").rstrip())


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _is_trainer(pid: int, kind: str) -> bool:
    """Whether `pid` is (still) `kind`'s trainer, not an unrelated process that reused the id."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return TRAINERS[kind].mark.encode() in command


async def _stop_orphan(pid: int, kind: str, grace_s: float) -> None:
    _signal_group(pid, signal.SIGTERM)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while _is_trainer(pid, kind) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    if _is_trainer(pid, kind):
        _signal_group(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
