"""python -m generation.train.ship [gan] [vae] [lstm]: retrain the default champions the package ships.

Each kind's default recipe with a fixed seed on its default data, trained into a scratch registry; the
result (weights, and metadata naming recipe, seed, metrics, data fingerprint and the commit that
trained it) replaces `generation/pretrained/{kind}/`. Run by `make models`; nothing else writes there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from generation.api import MODEL_KINDS, TrainReport
from generation.models.checkpoint import read_metadata, write_metadata
from generation.settings import PACKAGE_SHIPPED_DIR, GenerationSettings
from generation.train.run import TrainOptions, train_and_register

SHIPPED_SEED = 0


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=PACKAGE_SHIPPED_DIR.parent,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def training_commit() -> dict[str, object]:
    """The checked-out commit, and whether code outside the shipped models differed from it."""
    changed = _git("status", "--porcelain", "--", ".", f":(exclude){PACKAGE_SHIPPED_DIR.name}")
    return {"commit": _git("rev-parse", "HEAD") or "unknown", "uncommitted_changes": bool(changed)}


def ship(kind: str, settings: GenerationSettings, shipped_dir: Path = PACKAGE_SHIPPED_DIR) -> TrainReport:
    """Train `kind`'s default recipe and install the result as the shipped default; returns the report."""
    commit = training_commit()  # what is checked out now trains the model, whatever changes meanwhile
    with tempfile.TemporaryDirectory() as scratch:
        options = TrainOptions(
            kind=kind,
            models_dir=Path(scratch),
            text_corpus_dir=settings.text_corpus_dir,
            device="cpu",
            seed=SHIPPED_SEED,
            threads=settings.generation_threads,
            progress_every=250,
        )
        report = train_and_register(options)
        if report.warnings:
            raise RuntimeError(f"{kind}: not shipped: {'; '.join(report.warnings)}")
        assert report.path is not None  # the trainer always names the candidate's folder
        built = Path(report.path)
        meta = read_metadata(built)
        meta["shipped"] = {**commit, "made_by": "make models"}
        write_metadata(built, meta)
        staging = shipped_dir / f".{kind}.new"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(built, staging)
    target = shipped_dir / kind
    retired = shipped_dir / f".{kind}.old"
    shutil.rmtree(retired, ignore_errors=True)
    if target.exists():
        os.replace(target, retired)
    os.replace(staging, target)
    shutil.rmtree(retired, ignore_errors=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m generation.train.ship", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "kinds", nargs="*", metavar="KIND", help=f"{' | '.join(MODEL_KINDS)} (default: every kind)"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.kinds) - set(MODEL_KINDS))
    if unknown:
        parser.error(f"unknown kind {', '.join(unknown)}; expected {', '.join(MODEL_KINDS)}")
    settings = GenerationSettings.load()
    for kind in args.kinds or MODEL_KINDS:
        report = ship(kind, settings)
        summary = report.model_dump(include={"kind", "version", "candidate", "targets_met", "seconds"})
        print(json.dumps(summary, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
