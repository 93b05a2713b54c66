"""Training progress: a dataclass for callbacks, and a reporter that prints a line every N steps."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TextIO

# Recipes are defined by their steps; this cap only stops a run on a machine far slower than the one
# the default recipes were sized for.
SAFETY_TIME_LIMIT_S = 1800.0


@dataclass(frozen=True)
class TrainProgress:
    """One progress report; `phase` is "train", "evaluate" or "done"."""

    kind: str
    phase: str
    step: int
    total_steps: int
    loss: float
    elapsed_s: float
    eta_s: float


ProgressCallback = Callable[[TrainProgress], None]


class ProgressReporter:
    """Prints human lines (stderr) or JSON lines (stdout) every `every` steps and calls the hook."""

    def __init__(
        self,
        kind: str,
        total_steps: int,
        *,
        every: int = 50,
        as_json: bool = False,
        callback: ProgressCallback | None = None,
        quiet: bool = False,
        stream: TextIO | None = None,
        started: float | None = None,
    ) -> None:
        self.kind = kind
        self.total_steps = max(1, total_steps)
        self.every = max(1, every)
        self.as_json = as_json
        self.callback = callback
        self.quiet = quiet
        self.stream = stream
        self.started = time.perf_counter() if started is None else started

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def step(self, step: int, loss: float, force: bool = False, phase: str = "train") -> None:
        """Report step `step` (1-based) if it is due."""
        if not force and step % self.every and step != self.total_steps:
            return
        elapsed = self.elapsed()
        eta = elapsed / step * (self.total_steps - step) if step else 0.0
        self.emit(
            TrainProgress(self.kind, phase, step, self.total_steps, float(loss), elapsed, max(0.0, eta))
        )

    def emit(self, progress: TrainProgress) -> None:
        if self.callback is not None:
            self.callback(progress)
        if self.quiet:
            return
        if self.as_json:
            fields = asdict(progress)
            fields["loss"] = None if math.isnan(progress.loss) else progress.loss  # strict JSON has no NaN
            print(json.dumps({"event": "progress", **fields}), file=self.stream or sys.stdout, flush=True)
        else:
            print(
                f"[{progress.kind}] {progress.phase} step {progress.step}/{progress.total_steps} "
                f"loss {progress.loss:.4f} elapsed {progress.elapsed_s:.1f}s eta {progress.eta_s:.1f}s",
                file=self.stream or sys.stderr,
                flush=True,
            )
