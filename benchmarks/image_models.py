"""GAN and VAE side by side, measured in one run: each default recipe trained from scratch on the same
digits (same split, judge and seed), its four quality figures, its training time, its 8-image grid
time and batched-vs-sequential ratio, and one grid of each written as a PNG.

    python -m benchmarks.image_models [--threads N] [--keep DIR] [--grids DIR] [--repeats N]

Prints a Markdown table (the README's) and each figure against its target; exits 1 when one misses.
Run it with ONEDNN_MAX_CPU_ISA=AVX2 to time it as an AVX2-only CPU would.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks.generation_quality import TRAIN_SECONDS_TARGET
from benchmarks.generation_speed import BATCH_SPEEDUP_TARGET, GRID_MS_TARGET, ImageSpeed, image_speed
from generation.api import IMAGE_KINDS, ImageKind, ImageRequest, TrainReport
from generation.service.inference import ImageGenerator
from generation.train import evaluate
from generation.train.run import TrainOptions, train_and_register

GRID_SEED = 7  # the pictured grids: 8 mixed digits, the same seed for both models


@dataclass(frozen=True)
class Row:
    """One figure of the table: how to read it from a model's results, and its target."""

    name: str
    target: str
    value: Callable[[TrainReport, float, ImageSpeed], float]  # (report, run seconds, speed) -> figure
    passes: Callable[[float], bool]
    digits: int = 3


ROWS = (
    Row(
        "conditional accuracy (judge)",
        f">= {evaluate.TARGET_ACCURACY}",
        lambda r, s, v: r.candidate["accuracy"],
        lambda x: x >= evaluate.TARGET_ACCURACY,
    ),
    Row(
        "Frechet distance / real-real floor",
        f"<= {evaluate.TARGET_FD_RATIO:.0f}",
        lambda r, s, v: r.candidate["fd_ratio"],
        lambda x: x <= evaluate.TARGET_FD_RATIO,
        2,
    ),
    Row(
        "intra-class diversity / real",
        f">= {evaluate.TARGET_DIVERSITY}",
        lambda r, s, v: r.candidate["diversity"],
        lambda x: x >= evaluate.TARGET_DIVERSITY,
    ),
    Row(
        "near-copies of training digits",
        f"<= {evaluate.TARGET_NEAR_COPIES:.0f}",
        lambda r, s, v: r.candidate["near_copies"],
        lambda x: x <= evaluate.TARGET_NEAR_COPIES,
    ),
    Row(
        "default recipe, whole run (s)",
        f"<= {TRAIN_SECONDS_TARGET:.0f}",
        lambda r, s, v: s,
        lambda x: x <= TRAIN_SECONDS_TARGET,
        0,
    ),
    Row(
        "8-image grid, PNG included (ms)",
        f"<= {GRID_MS_TARGET:.0f}",
        lambda r, s, v: v.grid_ms,
        lambda x: x <= GRID_MS_TARGET,
        1,
    ),
    Row(
        "batched / sequential, 32 x 8 images",
        f">= {BATCH_SPEEDUP_TARGET:.0f}",
        lambda r, s, v: v.speedup,
        lambda x: x >= BATCH_SPEEDUP_TARGET,
        1,
    ),
)


def train(kind: ImageKind, models_dir: Path, threads: int) -> tuple[TrainReport, float]:
    """The default CPU recipe of `kind`, trained, evaluated and registered; (report, wall seconds)."""
    options = TrainOptions(kind=kind, models_dir=models_dir, device="cpu", threads=threads, quiet=True)
    started = time.perf_counter()
    report = train_and_register(options)
    return report, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.image_models", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--threads", type=int, default=0, help="0 = torch's default (all cores)")
    parser.add_argument("--keep", type=Path, help="models folder to train into (default: a temporary one)")
    parser.add_argument("--grids", type=Path, help="write {kind}-grid.png here")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results: dict[ImageKind, tuple[TrainReport, float, ImageSpeed]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        models_dir = args.keep or Path(scratch)
        for kind in IMAGE_KINDS:
            report, seconds = train(kind, models_dir, args.threads)
            assert report.path is not None
            generator = ImageGenerator.load(Path(report.path), "cpu", kind)
            results[kind] = (report, seconds, image_speed(generator, args.repeats))
            if args.grids:
                args.grids.mkdir(parents=True, exist_ok=True)
                [grid] = generator.generate_batch([ImageRequest(model=kind, count=8, seed=GRID_SEED)])
                (args.grids / f"{kind}-grid.png").write_bytes(grid.png)
            print(
                f"{kind}: {report.train['steps']}/{report.train['planned_steps']} steps, training "
                f"{report.train['train_seconds']:.0f} s wall / {report.train['train_cpu_seconds']:.0f} s CPU"
                f"{', cut by the time limit' if report.train['stopped_by_time_limit'] else ''}",
                flush=True,
            )
    ok = all(not report.train["stopped_by_time_limit"] for report, _, _ in results.values())
    kinds = list(results)
    print(f"\n| figure | target | {' | '.join(kind.upper() for kind in kinds)} |")
    print(f"|---|---|{'---|' * len(kinds)}")
    for row in ROWS:
        cells = []
        for kind in kinds:
            value = row.value(*results[kind])
            passed = row.passes(value)
            ok = ok and passed
            cells.append(f"{value:.{row.digits}f}{'' if passed else ' (missed)'}")
        print(f"| {row.name} | {row.target} | {' | '.join(cells)} |")
    print(f"\n{'all targets met' if ok else 'a target was missed'}; torch threads {torch.get_num_threads()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
