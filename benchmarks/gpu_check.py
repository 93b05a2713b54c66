"""The prepared GPU check (`make gpu-check`): on a machine with a CUDA device, train every default
recipe (GAN, VAE, character LSTM, word LSTM) on it, time the same recipes on 2 CPU threads (the VAE's
recipe uses one), and run the generation speed benchmark on the GPU and on 2 CPU threads with the
GPU-trained models; every figure is printed beside its CPU counterpart. Sized for about 8 minutes on one GPU.

    python -m benchmarks.gpu_check [--device cuda] [--cpu-steps N] [--dry-run]

The CPU side runs each recipe for --cpu-steps optimiser steps and scales its time per step to the
recipe's steps (all steps of a recipe cost the same). Targets: each default recipe >= 5x faster on the
GPU than on 2 CPU cores; batched 32 >= 8x sequential on the GPU for images and for text (the speed
benchmark's own rows). `--dry-run` runs the plumbing on tiny recipes and skips the speed benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

TRAIN_SPEEDUP_TARGET = 5.0
CPU_THREADS = 2
TIMEOUT_S = 300


def default_recipe_overrides(kind: str) -> list[str]:
    """`--set` options that make a CUDA run use the default (CPU) recipe, where the CUDA one differs."""
    from generation.train.run import IMAGE_TRAINERS, TEXT_TRAINERS

    recipe_class, _ = {**IMAGE_TRAINERS, **TEXT_TRAINERS}[kind]
    default, cuda = asdict(recipe_class()), asdict(recipe_class.for_cuda())
    return [
        f"--set={key}={default[key]}"
        for key in default
        if default[key] != cuda[key] and key not in ("time_limit_s", "max_steps") and default[key] is not None
    ]


def train(kind: str, device: str, models_dir: Path, extra: list[str]) -> dict:
    """Run the trainer; its report's `train` part (steps, planned_steps, train_seconds, ...)."""
    command = [sys.executable, "-m", "generation.train", kind, "--device", device, "--quiet"]
    command += ["--models-dir", str(models_dir), "--time-limit", "0", *extra]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} on {device} failed: {done.stderr.strip()[-500:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        **report["train"],
        "wall_seconds": time.perf_counter() - started,
        "candidate": report["candidate"],
    }


def compare_training(device: str, cpu_steps: int, dry_run: bool, models_dir: Path) -> bool:
    """Train each default recipe on `device` and a capped run on 2 CPU threads; True when both meet
    the speed-up target (always True for a dry run, whose recipes are too small to say anything)."""
    from generation.api import MODEL_KINDS

    ok = True
    print(f"{'recipe':6} {'steps':>6} {device + ' s':>9} {'2-CPU s (scaled)':>17} {'speed-up':>9}  target")
    for kind in MODEL_KINDS:
        setting = ["--dry-run"] if dry_run else default_recipe_overrides(kind)
        on_device = train(kind, device, models_dir, setting)
        capped = ["--max-steps", str(min(cpu_steps, on_device["steps"])), "--threads", str(CPU_THREADS)]
        with tempfile.TemporaryDirectory() as cpu_models:
            on_cpu = train(kind, "cpu", Path(cpu_models), setting + capped)
        per_step_cpu = on_cpu["train_seconds"] / max(on_cpu["steps"], 1)
        cpu_seconds = per_step_cpu * on_device["steps"]
        speedup = cpu_seconds / max(on_device["train_seconds"], 1e-9)
        met = dry_run or speedup >= TRAIN_SPEEDUP_TARGET
        ok &= met
        verdict = "info" if dry_run else ("PASS" if met else "FAIL")
        print(
            f"{kind:6} {on_device['steps']:>6} {on_device['train_seconds']:>9.1f} {cpu_seconds:>17.1f} "
            f"{speedup:>8.1f}x  >= {TRAIN_SPEEDUP_TARGET:.0f}x {verdict}"
        )
        print(f"       candidate on {device}: {json.dumps(on_device['candidate'])}")
    return ok


def speed(device: str, models_dir: Path) -> bool:
    """The generation speed benchmark on `device`, then on 2 CPU threads, with the same models."""
    ok = True
    for label, args in ((device, ["--device", device]), ("2 CPU threads", ["--threads", str(CPU_THREADS)])):
        print(f"\n== generation speed, {label}", flush=True)
        command = [
            sys.executable,
            "-m",
            "benchmarks.generation_speed",
            "--models-dir",
            str(models_dir),
            *args,
        ]
        done = subprocess.run(command, timeout=TIMEOUT_S, check=False)
        ok &= done.returncode == 0 or label != device  # the CPU run is the counterpart, not the check
    return ok


def describe(device: str) -> str:
    import torch

    if device == "cuda" and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    return f"{device}, torch {torch.__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="the accelerator to check (default cuda)")
    parser.add_argument("--cpu-steps", type=int, default=150, help="optimiser steps of each CPU run")
    parser.add_argument("--dry-run", action="store_true", help="tiny recipes; no speed benchmark")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(
        f"device: {describe(args.device)}; CPU counterpart: {CPU_THREADS} threads of {os.cpu_count()} cores"
    )
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:
        models_dir = Path(folder) / "models"
        ok = compare_training(args.device, args.cpu_steps, args.dry_run, models_dir)
        if not args.dry_run:
            ok &= speed(args.device, models_dir)
    print("\ntargets met" if ok else "\nbelow target")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
