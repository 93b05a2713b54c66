"""The step schedule the image trainers share: shuffled mini-batches, epoch after epoch, until the
recipe's steps are done or its safety time limit runs out; then what the run did, for its report."""

from __future__ import annotations

import time
from collections.abc import Iterator

import torch


class StepSchedule:
    """`epochs` passes over `rows` rows in batches of `batch_size` (a last partial batch is skipped),
    at most `max_steps` steps, stopped after `time_limit_s` seconds of training."""

    def __init__(
        self, rows: int, batch_size: int, epochs: int, max_steps: int | None, time_limit_s: float | None
    ) -> None:
        self.rows = rows
        self.batch_size = batch_size
        self.per_epoch = max(1, rows // batch_size)
        self.total = epochs * self.per_epoch if max_steps is None else min(epochs * self.per_epoch, max_steps)
        self.time_limit_s = time_limit_s
        self.steps = 0
        self.stopped_by_time_limit = False
        self._started = self._cpu_started = 0.0

    def batches(self, device: torch.device) -> Iterator[tuple[int, torch.Tensor]]:
        """(0-based step, row indices) for each step; a fresh random order every epoch."""
        self._started, self._cpu_started = time.perf_counter(), time.process_time()
        while self.steps < self.total:
            order = torch.randperm(self.rows, device=device)
            for batch in range(self.per_epoch):
                yield self.steps, order[batch * self.batch_size : (batch + 1) * self.batch_size]
                self.steps += 1
                if self.steps >= self.total:
                    return
                if self.time_limit_s is not None and time.perf_counter() - self._started > self.time_limit_s:
                    self.stopped_by_time_limit = True
                    return

    def info(self) -> dict[str, int | float | bool]:
        """Steps done and planned, whether the time limit cut the run, and its wall and CPU seconds
        (CPU well under wall times the threads shows how contended the CPU was)."""
        return {
            "steps": self.steps,
            "planned_steps": self.total,
            "stopped_by_time_limit": self.stopped_by_time_limit,
            "train_seconds": round(time.perf_counter() - self._started, 1),
            "train_cpu_seconds": round(time.process_time() - self._cpu_started, 1),
        }
