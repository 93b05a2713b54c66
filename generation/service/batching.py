"""Dynamic micro-batching: concurrent requests for one model run as one batch in a worker thread.

Shared by the HTTP service and the in-process client, so both batch the same way. Batches are
FIFO and hold at most `max_batch_size` requests. A request on an idle model starts at once (no
fixed wait unless `max_wait_s` asks for one); requests that arrive while the worker is busy queue
and go together in the next batch. Under load the batcher expects as many mates as recently
overlapped and, once the worker is free, gives the callers whose answers just went out a moment to
send their next request (a share of the last batch's run time, or `max_wait_s` when longer), so
closed-loop callers keep sharing full batches instead of splitting into groups that take turns.
The model runs in a dedicated thread so the event loop stays free. When a batch fails, it is split
in halves and retried, so one bad request fails alone and its batch-mates still get their results.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from generation.api import DeadlineExceeded, GenerationError, GeneratorUnavailable, Overloaded

logger = logging.getLogger(__name__)

RequestT = TypeVar("RequestT")
ResultT = TypeVar("ResultT")


class GenerationFailed(GenerationError):
    """The model raised on this request (and only on it)."""


@dataclass(frozen=True)
class BatchLimits:
    """How large a batch may grow, how long the oldest request waits for mates, how deep the queue."""

    max_batch_size: int = 32
    # How long a request on an idle model waits for mates; 0: it starts at once, and whatever
    # arrives while it runs goes in the next batch.
    max_wait_s: float = 0.0
    max_queue: int = 512
    # Under load, batch-mates may be waited for up to this share of the previous batch's run time
    # when that is longer than max_wait_s: a slow model's callers need a moment to send their next
    # request, and waiting a little beats running a second, nearly empty batch.
    wait_share_of_run: float = 0.25


@dataclass
class BatchStats:
    """Counters for /readyz and the benchmark."""

    batches: int = 0
    requests: int = 0
    largest_batch: int = 0
    failed_requests: int = 0
    expired_requests: int = 0
    recent_sizes: deque[int] = field(default_factory=lambda: deque(maxlen=16))
    recent_run_ms: deque[float] = field(default_factory=lambda: deque(maxlen=16))

    def as_dict(self) -> dict[str, float | list[int]]:
        """JSON-safe counters plus the mean batch size."""
        mean = self.requests / self.batches if self.batches else 0.0
        return {
            "batches": self.batches,
            "requests": self.requests,
            "mean_batch": round(mean, 2),
            "largest_batch": self.largest_batch,
            "failed_requests": self.failed_requests,
            "expired_requests": self.expired_requests,
            "recent_sizes": list(self.recent_sizes),
            "recent_run_ms": [round(ms, 1) for ms in self.recent_run_ms],
        }


@dataclass
class _Pending(Generic[RequestT, ResultT]):
    request: RequestT
    future: asyncio.Future[ResultT]
    enqueued_at: float
    deadline: float | None = field(default=None)


class _ConcurrencyTracker:
    """How many requests overlapped lately (queued + running): the batch size worth waiting for.

    The peak of each batch cycle is kept for the last few cycles; once the model has been idle for a
    second the history is forgotten, so a lone request after a burst does not wait for mates that
    are not coming.
    """

    def __init__(self, cycles: int = 8, forget_after_idle_s: float = 1.0) -> None:
        self._peaks: deque[int] = deque(maxlen=cycles)
        self._cycle_peak = 0
        self._forget_after_idle_s = forget_after_idle_s

    def observe(self, in_flight: int, idle_s: float) -> None:
        """A request arrived; `idle_s` is how long nothing was queued or running before it (0: busy)."""
        if idle_s > self._forget_after_idle_s:
            self._peaks.clear()
            self._cycle_peak = 0
        self._cycle_peak = max(self._cycle_peak, in_flight)

    def next_cycle(self, in_flight: int) -> None:
        self._peaks.append(self._cycle_peak)
        self._cycle_peak = in_flight

    def expected(self) -> int:
        return max(1, self._cycle_peak, *self._peaks)


class MicroBatcher(Generic[RequestT, ResultT]):
    """Collects requests for one model and runs them through `run_batch` in one worker thread.

    `run_batch` takes a list of requests and returns one result per request, in order. It is looked
    up by the caller at each batch (see GenerationEngine), so a model swap takes effect between
    batches and never interrupts one.
    """

    def __init__(
        self,
        name: str,
        run_batch: Callable[[list[RequestT]], Sequence[ResultT]],
        limits: BatchLimits | None = None,
    ) -> None:
        self.name = name
        self.limits = limits or BatchLimits()
        self.stats = BatchStats()
        self._run_batch = run_batch
        self._queue: deque[_Pending[RequestT, ResultT]] = deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False
        self._running = 0  # size of the batch in the worker thread
        self._free_since = 0.0  # loop time the worker last became free
        self._last_run_s = 0.0  # how long the previous batch took
        self._concurrency = _ConcurrencyTracker()

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return self._task is not None and not self._task.done()

    @property
    def queued(self) -> int:
        """Requests waiting for a batch (not counting the batch being run)."""
        return len(self._queue)

    async def start(self) -> None:
        """Start the collector task on the running loop and the model's worker thread."""
        if self.running:
            return
        self._closing = False
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"batch-{self.name}")
        self._task = asyncio.create_task(self._collect_forever(), name=f"batcher-{self.name}")

    async def stop(self, drain_timeout_s: float = 10.0) -> None:
        """Refuse new requests, let queued and running ones finish (bounded), then stop the thread."""
        self._closing = True
        deadline = time.monotonic() + drain_timeout_s
        while (self._queue or self._running) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for pending in self._queue:
            if not pending.future.done():
                pending.future.set_exception(GeneratorUnavailable("the generator is shutting down"))
        self._queue.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def submit(self, request: RequestT, timeout_s: float | None = None) -> ResultT:
        """Queue one request and wait for its result, at most `timeout_s` seconds."""
        if not self.running or self._closing or self._wakeup is None:
            raise GeneratorUnavailable("the generator is not running")
        if len(self._queue) >= self.limits.max_queue:
            raise Overloaded("the generator is busy; try again in a moment")
        loop = asyncio.get_running_loop()
        now = loop.time()
        future: asyncio.Future[ResultT] = loop.create_future()
        deadline = now + timeout_s if timeout_s is not None else None
        idle_s = now - self._free_since if not self._queue and not self._running else 0.0
        self._queue.append(_Pending(request, future, now, deadline))
        self._concurrency.observe(len(self._queue) + self._running, idle_s)
        self._wakeup.set()
        try:
            # The future is cancelled on timeout; the collector skips cancelled requests.
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            raise DeadlineExceeded(f"the generator did not finish within {timeout_s:.1f} s") from None

    async def _collect_forever(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            expected = self._concurrency.expected()
            if expected > 1:  # under load: wait for the mates recent traffic says are coming
                target = min(self.limits.max_batch_size, expected)
                patience = max(self.limits.max_wait_s, self.limits.wait_share_of_run * self._last_run_s)
            else:  # idle: start at once, unless max_wait asks to wait for company
                target, patience = self.limits.max_batch_size, self.limits.max_wait_s
            wait_until = max(self._queue[0].enqueued_at, self._free_since) + patience
            while len(self._queue) < target and patience > 0:
                remaining = wait_until - loop.time()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except TimeoutError:
                    break
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), self.limits.max_batch_size))]
            self._running = len(batch)
            self._concurrency.next_cycle(len(self._queue) + len(batch))
            began = loop.time()
            try:
                await self._execute(batch)
            except Exception:  # never let one batch kill the collector
                logger.exception("batcher %s: unexpected error", self.name)
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(GenerationFailed("the generator failed"))
            finally:
                self._running = 0
                self._free_since = loop.time()
                self._last_run_s = self._free_since - began
                self.stats.recent_run_ms.append(self._last_run_s * 1000)

    async def _execute(self, batch: list[_Pending[RequestT, ResultT]]) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        live = []
        for pending in batch:
            if pending.future.done():  # its caller gave up (deadline or cancellation)
                self.stats.expired_requests += 1
            elif pending.deadline is not None and pending.deadline <= now:
                self.stats.expired_requests += 1
                pending.future.set_exception(DeadlineExceeded("the deadline passed while queued"))
            else:
                live.append(pending)
        if not live:
            return
        self.stats.batches += 1
        self.stats.requests += len(live)
        self.stats.largest_batch = max(self.stats.largest_batch, len(live))
        self.stats.recent_sizes.append(len(live))
        await self._run_isolating_failures(live)

    async def _run_isolating_failures(self, batch: list[_Pending[RequestT, ResultT]]) -> None:
        """Run the batch; on failure split it in halves so only the failing requests get the error."""
        batch = [pending for pending in batch if not pending.future.done()]
        if not batch:
            return
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self._executor, self._call_model, [p.request for p in batch])
        except Exception as exc:
            if len(batch) == 1:
                self.stats.failed_requests += 1
                if not batch[0].future.done():
                    batch[0].future.set_exception(_as_generation_error(exc))
                return
            logger.warning("batcher %s: batch of %d failed (%s); splitting", self.name, len(batch), exc)
            middle = len(batch) // 2
            await self._run_isolating_failures(batch[:middle])
            await self._run_isolating_failures(batch[middle:])
            return
        for pending, result in zip(batch, results, strict=True):
            if not pending.future.done():
                pending.future.set_result(result)

    def _call_model(self, requests: list[RequestT]) -> Sequence[ResultT]:
        results = self._run_batch(requests)
        if len(results) != len(requests):
            raise GenerationFailed(f"the model returned {len(results)} results for {len(requests)} requests")
        return results


def _as_generation_error(exc: BaseException) -> GenerationError:
    """Errors the bot can show stay as they are; anything else becomes a plain failure (logged)."""
    if isinstance(exc, GenerationError):
        return exc
    logger.error("generator failed on a request: %r", exc)
    return GenerationFailed("the generator failed on this request")
