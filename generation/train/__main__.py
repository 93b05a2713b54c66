"""python -m generation.train gan|vae|lstm [--epochs N] [--device auto|cpu|cuda|mps] [--dry-run] [--seed S] ..."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from generation.api import MODEL_KINDS
from generation.registry import ModelRegistry
from generation.settings import GenerationSettings
from generation.train.run import TrainOptions, report_line, train_and_register


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m generation.train",
        description="Train a generator, register it as a candidate, and promote it if it beats the champion.",
    )
    parser.add_argument("kind", choices=MODEL_KINDS, help="gan, vae: digit images; lstm: text")
    parser.add_argument("--epochs", type=int, help="passes over the data (default: the recipe's)")
    parser.add_argument("--max-steps", type=int, help="stop after this many optimiser steps")
    parser.add_argument(
        "--time-limit", type=float, help="stop training after this many seconds (0 = no limit)"
    )
    parser.add_argument(
        "--device", default=None, choices=["auto", "cpu", "cuda", "mps"], help="default: GENERATION_DEVICE"
    )
    parser.add_argument("--dry-run", action="store_true", help="tiny data and model: finishes in seconds")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--data",
        help="gan, vae: 'digits' (default, offline), 'mnist' (IDX files, downloaded when missing) or an image folder; "
        "lstm: a text file or folder (default: TEXT_CORPUS_DIR, the knowledge corpus)",
    )
    parser.add_argument("--models-dir", type=Path, help="model registry (default: DATA_DIR/models)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: GENERATION_THREADS or all cores)")
    parser.add_argument("--progress-every", type=int, default=50, help="a progress line every N steps")
    parser.add_argument("--progress-json", action="store_true", help="progress as JSON lines on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress lines, only the final report")
    parser.add_argument(
        "--cleanup",
        action="store_true",
        help="train nothing: remove partial files of runs that died (a live run's are kept), print them as JSON",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe setting, e.g. --set lr=1e-3",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse, train, print the final JSON report as the last stdout line; 0 on success."""
    args = build_parser().parse_args(argv)
    settings = GenerationSettings.load()
    if args.cleanup:
        registry = ModelRegistry(args.models_dir or settings.models_dir)
        removed = [str(path) for path in registry.cleanup_partial(args.kind)]
        print(json.dumps({"event": "cleanup", "kind": args.kind, "removed": removed}), flush=True)
        return 0
    extra = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"--set wants KEY=VALUE, got {item!r}", file=sys.stderr)
            return 2
        extra[key.strip()] = value.strip()
    options = TrainOptions(
        kind=args.kind,
        models_dir=args.models_dir or settings.models_dir,
        shipped_dir=settings.shipped_dir,
        data=args.data,
        text_corpus_dir=settings.text_corpus_dir,
        epochs=args.epochs,
        max_steps=args.max_steps,
        time_limit_s=args.time_limit,
        device=args.device or settings.generation_device,
        seed=args.seed,
        dry_run=args.dry_run,
        threads=args.threads if args.threads is not None else settings.generation_threads,
        progress_every=args.progress_every,
        progress_json=args.progress_json,
        quiet=args.quiet,
        extra=extra,
    )
    try:
        report = train_and_register(options)
    except (FileNotFoundError, ValueError) as exc:
        print(f"training failed: {exc}", file=sys.stderr)
        return 1
    print(report_line(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
