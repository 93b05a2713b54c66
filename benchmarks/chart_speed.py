"""Chart rendering time: the /stats usage chart and a /retrain loss curve, as the bot draws them (in a
worker thread, matplotlib's Agg canvas). Target: <= 200 ms each once matplotlib is loaded; the first
chart of a process also pays the import, printed apart.

    python -m benchmarks.chart_speed
"""

from __future__ import annotations

import math
import statistics
import sys
import time

TARGET_MS = 200.0
ROUNDS = 10


def _inputs() -> tuple[list[str], dict[str, dict[str, int]], list[tuple[str, int, float]]]:
    days = [f"2026-12-{day:02d}" for day in range(1, 8)]
    per_day = {
        day: {
            "answered": 40 + n * 7,
            "declined": 5 + n,
            "images": 12,
            "texts": 9,
            "helpful": 20,
            "unhelpful": 4,
        }
        for n, day in enumerate(days)
    }
    # A long run's worth of progress lines: two phases of 500 reports each.
    losses = [
        (phase, step, 2.0 * math.exp(-step / 300)) for phase in ("train", "refit") for step in range(500)
    ]
    return days, per_day, losses


def main() -> int:
    started = time.perf_counter()
    from bot.charts import loss_chart, usage_chart

    days, per_day, losses = _inputs()
    usage_chart(days, per_day)
    first_ms = (time.perf_counter() - started) * 1000
    timings: dict[str, list[float]] = {"usage chart (/stats)": [], "loss curve (/retrain)": []}
    for _ in range(ROUNDS):
        for name, draw in (
            ("usage chart (/stats)", lambda: usage_chart(days, per_day)),
            ("loss curve (/retrain)", lambda: loss_chart(losses, "lstm lstm-1a2b")),
        ):
            began = time.perf_counter()
            png = draw()
            timings[name].append((time.perf_counter() - began) * 1000)
            assert png.startswith(b"\x89PNG")
    print(f"first chart of a process (matplotlib import included): {first_ms:.0f} ms")
    failed = False
    for name, values in timings.items():
        median, worst = statistics.median(values), max(values)
        ok = median <= TARGET_MS
        failed |= not ok
        print(
            f"{'PASS' if ok else 'FAIL'}  {name}: median {median:.0f} ms, max {worst:.0f} ms (target <= {TARGET_MS:.0f} ms)"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
