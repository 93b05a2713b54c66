"""Training jobs: a trainer run as a subprocess, followed, cancelled and recorded.

One runner serves every place that trains: the generation service (POST /v1/train, on the GPU host)
and the bot's in-process jobs (its generators without a service, and its intent classifier). A job runs
`<trainer command> --progress-json [options]`, reads the JSON progress lines and the final report line
the trainer prints, and keeps the progress as events a caller can follow (the service streams them as
server-sent events). At most one job per kind runs at a time. Cancelling sends SIGTERM to the trainer's
process group and SIGKILL after a grace period. A job that did not succeed has its partial files
removed by the trainer's `--cleanup`; champions only ever change by the trainer's atomic swap, so a
trainer stopped at any point leaves the champion serving.

With a records folder (the service has one) every job is also a JSON file, so a restart knows which
jobs it interrupted: `recover()` marks them failed, stops a trainer left behind and cleans up, and the
jobs stay listed.
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
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from generation.api import (
    MODEL_OUTPUTS,
    PROGRESS_EVENT,
    REPORT_EVENT,
    JobConflict,
    JobInfo,
    JobProgress,
    NoSample,
    RecipeValue,
    TrainReport,
    UnknownJob,
    trainer_args,
)

logger = logging.getLogger(__name__)

STDERR_LINES = 20  # the tail kept to say why a trainer failed
CLEANUP_TIMEOUT_S = 60.0
SAMPLE_TIMEOUT_S = 120.0
MAX_EVENTS = 10_000  # progress lines kept per job (a line every 50 steps: far more than a recipe has)
KEPT_FINISHED = 50  # finished jobs listed and kept on record
SAMPLE_MODULE = "generation.sample"


@dataclass(frozen=True)
class Trainer:
    """How to run one kind's trainer: its command before the options, and an argument of that command
    which tells its process from others (a restart stops only a trainer it left behind)."""

    command: tuple[str, ...]
    mark: str


def generation_trainers(kinds: Sequence[str]) -> dict[str, Trainer]:
    """The companion trainer, `python -m generation.train KIND`, for each generator kind."""
    return {
        kind: Trainer((sys.executable, "-m", "generation.train", kind), "generation.train") for kind in kinds
    }


JobHook = Callable[[JobInfo], Awaitable[None]]


@dataclass
class _Run:
    """A job as it runs: its trainer process, what it reported, and who waits for news."""

    id: str
    kind: str
    created_at: str
    state: str = "queued"
    progress: JobProgress | None = None
    events: list[JobProgress] = field(default_factory=list)
    report: TrainReport | None = None
    error: str = ""
    pid: int | None = None
    started: float = field(default_factory=time.monotonic)
    seconds: float | None = None  # set when it ends
    cancel_requested: bool = False
    process: asyncio.subprocess.Process | None = field(default=None, repr=False)
    done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def info(self) -> JobInfo:
        seconds = self.seconds if self.seconds is not None else time.monotonic() - self.started
        return JobInfo(
            id=self.id,
            kind=self.kind,
            state=self.state,  # type: ignore[arg-type]
            progress=self.progress,
            losses=[point for event in self.events if (point := event.training_loss)],
            report=self.report,
            error=self.error,
            pid=self.pid,
            created_at=self.created_at,
            seconds=round(seconds, 1),
        )

    def pulse(self) -> None:
        """Wake everyone following this job."""
        self.changed.set()
        self.changed = asyncio.Event()


class TrainingJobs:
    """Starts, follows, cancels and records training jobs; one per kind at a time."""

    def __init__(
        self,
        data_dir: Path,
        trainers: Mapping[str, Trainer],
        *,
        records_dir: Path | None = None,
        cancel_grace_s: float = 10.0,
        on_finished: JobHook | None = None,
    ) -> None:
        """`data_dir`: the trainers' DATA_DIR. `records_dir`: where jobs are recorded (None: in memory).
        `on_finished`: awaited when a job ends, before anyone following it hears so (the service hot-swaps
        a promoted model there)."""
        self.data_dir = Path(data_dir)
        self.trainers = dict(trainers)
        self.records_dir = records_dir
        self.cancel_grace_s = cancel_grace_s
        self.on_finished = on_finished
        self._runs: dict[str, _Run] = {}
        self._past: dict[str, JobInfo] = {}  # jobs of an earlier process, from the records
        self._tasks: set[asyncio.Task] = set()

    # Queries ---------------------------------------------------------------------------------------

    def get(self, job_id: str) -> JobInfo:
        """A job by id; UnknownJob when there is none."""
        if job_id in self._runs:
            return self._runs[job_id].info()
        if job_id in self._past:
            return self._past[job_id]
        raise UnknownJob(job_id)

    def list(self) -> list[JobInfo]:
        """Running jobs, then the last finished ones, newest first."""
        jobs = [run.info() for run in self._runs.values()] + list(self._past.values())
        return sorted(jobs, key=lambda job: (not job.finished, job.created_at), reverse=True)

    def running_for(self, kind: str) -> JobInfo | None:
        run = next((run for run in self._runs.values() if run.kind == kind and not run.done.is_set()), None)
        return run.info() if run else None

    async def events(
        self, job_id: str, after: int = 0, heartbeat_s: float | None = None
    ) -> AsyncIterator[JobProgress | JobInfo | None]:
        """The job's progress lines from the `after`-th on, as they come, then the job as it ended; with
        `heartbeat_s`, None after each such quiet spell (a stream's keep-alive)."""
        run = self._runs.get(job_id)
        if run is None:
            yield self.get(job_id)  # a job of an earlier process: over
            return
        sent = max(0, after)
        while True:
            changed = run.changed
            while sent < len(run.events):
                yield run.events[sent]
                sent += 1
            if run.done.is_set():
                yield run.info()
                return
            try:
                await asyncio.wait_for(changed.wait(), heartbeat_s)
            except TimeoutError:
                yield None

    async def wait(self, job_id: str) -> JobInfo:
        """The job once it is over."""
        run = self._runs.get(job_id)
        if run is not None:
            await run.done.wait()
        return self.get(job_id)

    # Starting and following ------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        # The trainer reads the same DATA_DIR as we do; absolute, whatever its working directory.
        return {**os.environ, "DATA_DIR": str(self.data_dir.resolve()), "PYTHONUNBUFFERED": "1"}

    async def start(
        self,
        kind: str,
        recipe: Mapping[str, RecipeValue] | None = None,
        dry_run: bool = False,
        extra_args: Sequence[str] = (),
    ) -> JobInfo:
        """Start `kind`'s trainer; JobConflict while one runs for it. `extra_args` go before the recipe's
        options (an operator's fixed options, e.g. RETRAIN_ARGS)."""
        if kind not in self.trainers:
            raise ValueError(f"unknown model kind {kind!r}")
        current = self.running_for(kind)
        if current is not None:
            raise JobConflict(kind, current.id)
        argv = [
            *self.trainers[kind].command,
            "--progress-json",
            *extra_args,
            *trainer_args(recipe or {}, dry_run),
        ]
        run = _Run(self._new_id(kind), kind, _now())
        self._runs[run.id] = run  # before any await: a second start sees it at once
        try:
            run.process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._env(),
                start_new_session=True,  # its own process group: we stop it (and its children) ourselves
            )
        except OSError as exc:
            run.state, run.error = "failed", f"could not start the trainer: {exc}"
            self._end(run)
            raise
        run.pid, run.state = run.process.pid, "running"
        self._write(run)
        logger.info("job %s: trainer pid %s: %s", run.id, run.pid, shlex.join(argv))
        self._spawn(self._watch(run))
        return run.info()

    def _new_id(self, kind: str) -> str:
        while True:
            job_id = f"{kind}-{secrets.token_hex(3)}"
            if job_id not in self._runs and job_id not in self._past:
                return job_id

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch(self, run: _Run) -> None:
        """Read the trainer's output until it exits; conclude, clean up, tell the hook and followers."""
        process = run.process
        assert process is not None and process.stdout is not None and process.stderr is not None
        stderr_tail: deque[str] = deque(maxlen=STDERR_LINES)
        try:
            await asyncio.gather(self._read_stdout(run, process.stdout), _tail(process.stderr, stderr_tail))
            conclude(run, await process.wait(), stderr_tail)
        except asyncio.CancelledError:
            await self._stop_process(run)
            run.state, run.error = "cancelled", run.error or "the trainer's runner stopped"
            self._end(run)
            raise
        except Exception as exc:  # our own bug: never leave a job running
            logger.exception("job %s: following the trainer failed", run.id)
            await self._stop_process(run)
            run.state, run.error = "failed", f"internal error: {type(exc).__name__}"
        if run.state != "succeeded":
            await self.cleanup(run.kind)
        if self.on_finished is not None:
            try:
                await self.on_finished(run.info())
            except Exception:
                logger.exception("job %s: the finish hook failed", run.id)
        self._end(run)

    async def _read_stdout(self, run: _Run, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            try:
                event = json.loads(line)
            except ValueError:
                logger.debug("job %s: %s", run.id, line.decode(errors="replace").rstrip())
                continue
            if not isinstance(event, dict):
                continue
            if event.get("event") == PROGRESS_EVENT:
                progress = JobProgress.model_validate(event)
                run.progress = progress
                if len(run.events) < MAX_EVENTS:
                    run.events.append(progress)
                run.pulse()
            elif event.get("event") == REPORT_EVENT:
                try:
                    run.report = TrainReport.from_json(event)
                except ValueError as exc:  # the job then fails as one that ended without a report
                    logger.warning("job %s: unreadable report: %s", run.id, exc)

    def _end(self, run: _Run) -> None:
        run.seconds = time.monotonic() - run.started
        self._write(run)
        run.done.set()
        run.pulse()
        logger.info("job %s %s %s", run.id, run.state, run.error)
        self._forget_old()

    # Cancelling ------------------------------------------------------------------------------------

    async def cancel(self, job_id: str, reason: str = "cancelled by an admin") -> JobInfo:
        """Stop a job (SIGTERM, SIGKILL after the grace period) and return it once it is over: cancelled,
        or succeeded if it finished before the signal landed. A job already over is returned as it is."""
        run = self._runs.get(job_id)
        if run is None:
            return self.get(job_id)
        if not run.done.is_set():
            run.cancel_requested = True
            run.error = run.error or reason
            await self._stop_process(run)
            await run.done.wait()
        return run.info()

    async def _stop_process(self, run: _Run) -> None:
        process = run.process
        if process is None or process.returncode is not None:
            return
        _signal_group(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), self.cancel_grace_s)
        except TimeoutError:
            logger.warning(
                "job %s: trainer ignored SIGTERM for %.0f s; killing it", run.id, self.cancel_grace_s
            )
            _signal_group(process.pid, signal.SIGKILL)
            await process.wait()

    async def cleanup(self, kind: str) -> bool:
        """Remove partial files a stopped trainer left behind (its registry skips live runs' folders)."""
        try:
            returncode, out, err = await self._run_to_end(
                [*self.trainers[kind].command, "--cleanup"], CLEANUP_TIMEOUT_S
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

    async def sample(self, job_id: str, *, seed: int, images: int, prompt: str, length: int) -> bytes | str:
        """A sample from the job's candidate (which need not be serving), drawn by `python -m
        generation.sample` in a subprocess: PNG bytes for an image model, the text for a text model."""
        job = self.get(job_id)
        output = MODEL_OUTPUTS.get(job.kind)  # type: ignore[call-overload]
        if job.report is None or not job.report.path or output is None:
            raise NoSample(f"job {job_id} has no {job.kind} checkpoint to sample")
        base = [sys.executable, "-m", SAMPLE_MODULE, "--checkpoint", job.report.path]
        with tempfile.TemporaryDirectory(prefix="sample-") as folder:
            out = Path(folder) / "sample.png"
            if output == "image":
                argv = [*base, "image", "--n", str(images), "--seed", str(seed), "--out", str(out)]
            else:
                argv = [*base, "text", prompt, "--length", str(length), "--seed", str(seed)]
            returncode, stdout, stderr = await self._run_to_end(argv, SAMPLE_TIMEOUT_S)
            if returncode != 0:
                raise RuntimeError(f"sampling failed: {stderr.decode(errors='replace').strip()[-300:]}")
            return out.read_bytes() if output == "image" else stdout.decode(errors="replace").strip()

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

    # Start and stop of the process that runs jobs --------------------------------------------------

    async def stop_orphan(self, pid: int, kind: str) -> bool:
        """Stop `kind`'s trainer left behind by a process that died (never a process that merely reuses
        its pid); True when there was one."""
        mark = self.trainers[kind].mark if kind in self.trainers else None
        if mark is None or not is_trainer(pid, mark):
            return False
        logger.warning("stopping an orphaned %s trainer (pid %s)", kind, pid)
        _signal_group(pid, signal.SIGTERM)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.cancel_grace_s
        while is_trainer(pid, mark) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if is_trainer(pid, mark):
            _signal_group(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        return True

    async def recover(self) -> list[JobInfo]:
        """At start: read the records; jobs an earlier process left queued or running are failed, their
        orphaned trainers stopped and their partial files removed. Returns those jobs."""
        interrupted = []
        for job in self._read_records():
            if not job.finished:
                job = job.model_copy(update={"state": "failed", "error": "interrupted by a restart"})
                if job.pid is not None:
                    await self.stop_orphan(job.pid, job.kind)
                interrupted.append(job)
                self._write_info(job)
            self._past[job.id] = job
        for kind in sorted({job.kind for job in interrupted} & set(self.trainers)):
            await self.cleanup(kind)
        for job in interrupted:
            logger.warning("job %s (%s) was interrupted by a restart; marked failed", job.id, job.kind)
        return interrupted

    async def shutdown(self, reason: str) -> None:
        """Stop running trainers (they do not outlive their runner) and record them as cancelled."""
        for run in list(self._runs.values()):
            if not run.done.is_set():
                run.cancel_requested = True
                run.error = run.error or reason
                await self._stop_process(run)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=CLEANUP_TIMEOUT_S)
        for task in set(self._tasks):
            task.cancel()

    # Records ---------------------------------------------------------------------------------------

    def _write(self, run: _Run) -> None:
        self._write_info(run.info())

    def _write_info(self, job: JobInfo) -> None:
        if self.records_dir is None:
            return
        try:
            self.records_dir.mkdir(parents=True, exist_ok=True)
            path = self.records_dir / f"{job.id}.json"
            partial = path.with_suffix(".json.partial")
            partial.write_text(job.model_dump_json())
            os.replace(partial, path)
        except OSError as exc:  # a full disk must not stop the job; its state is still in memory
            logger.warning("job %s: could not record it: %s", job.id, exc)

    def _read_records(self) -> list[JobInfo]:
        if self.records_dir is None or not self.records_dir.is_dir():
            return []
        jobs = []
        for path in sorted(self.records_dir.glob("*.json")):
            try:
                jobs.append(JobInfo.model_validate_json(path.read_text()))
            except (OSError, ValueError) as exc:
                logger.warning("skipping unreadable job record %s: %s", path.name, exc)
        return jobs

    def _forget_old(self) -> None:
        """Keep the last KEPT_FINISHED finished jobs (in memory and on record)."""
        finished = sorted(
            (job for job in self.list() if job.finished), key=lambda job: job.created_at, reverse=True
        )
        for job in finished[KEPT_FINISHED:]:
            self._runs.pop(job.id, None)
            self._past.pop(job.id, None)
            if self.records_dir is not None:
                with contextlib.suppress(OSError):
                    (self.records_dir / f"{job.id}.json").unlink()


def conclude(run: _Run, returncode: int, stderr_tail: deque[str]) -> None:
    """The job's state from how its trainer ended."""
    if returncode == 0 and run.report is not None:  # done, even if a cancel came too late
        run.state, run.error = "succeeded", ""
    elif run.cancel_requested:
        run.state, run.error = "cancelled", run.error or "cancelled by an admin"
    else:
        run.state = "failed"
        if returncode < 0:  # killed from outside: its last words are not the reason
            run.error = f"the trainer was stopped by {_signal_name(-returncode)}"
        else:
            cause = (
                "the trainer ended without a report"
                if returncode == 0
                else f"the trainer exited with code {returncode}"
            )
            last = next((line for line in reversed(stderr_tail) if line.strip()), "")
            run.error = f"{cause}: {last}" if last else cause


def is_trainer(pid: int, mark: str) -> bool:
    """Whether `pid` is (still) a trainer whose command holds `mark`, not an unrelated process that
    reused the id."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return mark.encode() in command


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


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
