"""MicroBatcher: batch size and wait limits, failure isolation, deadlines, back-pressure, shutdown."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from generation.api import DeadlineExceeded, GeneratorUnavailable, InvalidRequest, Overloaded
from generation.service.batching import BatchLimits, GenerationFailed, MicroBatcher, _ConcurrencyTracker


class Doubler:
    """run_batch stand-in: doubles ints, raises on negatives, records batches and the thread used."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()

    def __call__(self, requests: list[int]) -> list[int]:
        self.threads.add(threading.current_thread().name)
        self.batches.append(list(requests))
        time.sleep(self.delay_s)
        if any(value < 0 for value in requests):
            raise ValueError("negative")
        if 999 in requests:
            raise InvalidRequest("999 is not allowed")
        return [value * 2 for value in requests]


async def started(run, **limits) -> MicroBatcher:
    batcher = MicroBatcher("test", run, BatchLimits(**limits))
    await batcher.start()
    return batcher


async def test_concurrent_requests_share_batches_up_to_the_limit() -> None:
    model = Doubler(delay_s=0.02)
    batcher = await started(model, max_batch_size=8, max_wait_s=0.01)
    results = await asyncio.gather(*(batcher.submit(value) for value in range(20)))
    await batcher.stop()
    assert results == [value * 2 for value in range(20)]
    assert max(len(batch) for batch in model.batches) == 8
    assert len(model.batches) <= 4  # 20 requests at 8 a batch, not 20 single runs
    assert sorted(value for batch in model.batches for value in batch) == list(range(20))


async def test_model_runs_off_the_event_loop_thread() -> None:
    model = Doubler()
    batcher = await started(model)
    await batcher.submit(1)
    await batcher.stop()
    assert threading.current_thread().name not in model.threads
    assert all(name.startswith("batch-test") for name in model.threads)


async def test_requests_within_max_wait_on_an_idle_model_share_a_batch() -> None:
    model = Doubler()
    batcher = await started(model, max_batch_size=32, max_wait_s=0.3)
    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(batcher.submit(2))
    assert [await first, await second] == [2, 4]
    await asyncio.sleep(1.1)  # idle long enough to forget the load
    assert await batcher.submit(3) == 6  # alone: runs once max_wait is over
    await batcher.stop()
    assert model.batches == [[1, 2], [3]]


async def test_a_request_on_an_idle_model_starts_at_once_by_default() -> None:
    model = Doubler(delay_s=0.3)
    batcher = await started(model, max_batch_size=32)  # default limits: no wait for company
    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0.05)  # well before the first finishes
    assert model.batches == [[1]]  # it started without waiting for mates
    second = asyncio.create_task(batcher.submit(2))
    assert [await first, await second] == [2, 4]
    await batcher.stop()
    assert model.batches == [[1], [2]]


async def test_requests_arriving_while_a_batch_runs_go_together_next() -> None:
    model = Doubler(delay_s=0.1)
    batcher = await started(model, max_batch_size=32, max_wait_s=0.0)
    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0.02)
    rest = [asyncio.create_task(batcher.submit(value)) for value in (2, 3, 4)]
    assert [await first, *[await task for task in rest]] == [2, 4, 6, 8]
    await batcher.stop()
    assert model.batches == [[1], [2, 3, 4]]


async def test_closed_loop_clients_keep_sharing_full_batches() -> None:
    """Clients that send again right after their answer must not split into groups taking turns."""
    # max_wait alone (1 ms) is shorter than the callers' spread (up to 12 ms); what keeps them
    # together is the patience of a quarter of the previous batch's run time (100 ms here).
    model = Doubler(delay_s=0.1)
    batcher = await started(model, max_batch_size=32, max_wait_s=0.001)

    async def client(offset: int) -> None:
        for round_ in range(5):
            await batcher.submit(offset + round_ * 100)
            await asyncio.sleep(0.004 * (offset % 4))  # answers are read at slightly different times

    await asyncio.gather(*(client(offset) for offset in range(8)))
    await batcher.stop()
    later = [len(batch) for batch in model.batches[2:]]
    assert later and sum(size == 8 for size in later) >= 0.8 * len(later), model.batches


async def test_one_bad_request_never_fails_its_batch_mates() -> None:
    model = Doubler(delay_s=0.01)
    batcher = await started(model, max_batch_size=16, max_wait_s=0.02)
    outcomes = await asyncio.gather(
        *(batcher.submit(v) for v in [1, 2, -3, 4, 5, 999, 7]), return_exceptions=True
    )
    await batcher.stop()
    assert outcomes[:2] == [2, 4] and outcomes[3:5] == [8, 10] and outcomes[6] == 14
    assert isinstance(outcomes[2], GenerationFailed)  # an unexpected error becomes a plain failure
    assert isinstance(outcomes[5], InvalidRequest)  # the model's own message passes through
    assert batcher.stats.failed_requests == 2


async def test_deadline_gives_a_clean_error_and_the_batcher_keeps_serving() -> None:
    model = Doubler(delay_s=1.0)
    batcher = await started(model, max_wait_s=0.0)
    started_at = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        await batcher.submit(1, timeout_s=0.05)
    assert time.monotonic() - started_at < 0.7  # answered at the deadline, not when the model finished
    assert await batcher.submit(2, timeout_s=5) == 4
    await batcher.stop()


async def test_requests_whose_deadline_passed_in_the_queue_are_not_run() -> None:
    model = Doubler(delay_s=0.2)
    batcher = await started(model, max_wait_s=0.0)
    slow = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0.02)  # the first batch is running; the next requests queue behind it
    expired = [asyncio.create_task(batcher.submit(value, timeout_s=0.05)) for value in (2, 3)]
    kept = asyncio.create_task(batcher.submit(4, timeout_s=5))
    assert await slow == 2
    for task in expired:
        with pytest.raises(DeadlineExceeded):
            await task
    assert await kept == 8
    await batcher.stop()
    assert [1] in model.batches and [4] in model.batches
    assert all(2 not in batch and 3 not in batch for batch in model.batches)
    assert batcher.stats.expired_requests == 2


async def test_a_full_queue_refuses_at_once() -> None:
    model = Doubler(delay_s=0.2)
    batcher = await started(model, max_batch_size=1, max_wait_s=0.0, max_queue=2)
    running = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0.02)
    queued = [asyncio.create_task(batcher.submit(value)) for value in (2, 3)]
    await asyncio.sleep(0)
    with pytest.raises(Overloaded):
        await batcher.submit(4)
    assert [await running, *[await task for task in queued]] == [2, 4, 6]
    await batcher.stop()


async def test_stop_lets_queued_requests_finish_then_refuses_new_ones() -> None:
    model = Doubler(delay_s=0.05)
    batcher = await started(model, max_batch_size=2, max_wait_s=0.0)
    pending = [asyncio.create_task(batcher.submit(value)) for value in range(5)]
    await asyncio.sleep(0.01)
    await batcher.stop()
    assert [await task for task in pending] == [0, 2, 4, 6, 8]
    with pytest.raises(GeneratorUnavailable):
        await batcher.submit(1)


def test_load_history_survives_long_batches_and_is_forgotten_after_idle_time() -> None:
    tracker = _ConcurrencyTracker(cycles=8, forget_after_idle_s=1.0)
    for in_flight in range(1, 33):
        tracker.observe(in_flight, idle_s=0.0)
    tracker.next_cycle(32)
    # A batch that ran for minutes is not idleness: the next arrival still expects 32 mates.
    tracker.observe(1, idle_s=0.0)
    assert tracker.expected() == 32
    tracker.next_cycle(1)
    tracker.observe(1, idle_s=5.0)  # the model sat idle: the burst is over
    assert tracker.expected() == 1
