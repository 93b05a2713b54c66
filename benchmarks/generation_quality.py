"""Generator quality with the default CPU recipes: train each from scratch, score it, time it.

    python -m benchmarks.generation_quality [--kind gan|vae|lstm|all] [--threads N] [--keep DIR] [--time-limit S]
    python -m benchmarks.generation_quality --evaluate-only      (score the champions under DATA_DIR)

Targets: GAN and VAE alike, conditional accuracy >= 0.95, Frechet distance <= 3x the real-vs-real floor,
diversity >= 0.8x real, no near-copies; LSTM <= 1.9 bits per character on the held-out tenth of
every corpus file, and fewer than the Kneser-Ney 5-gram's on the same split; each default recipe's
whole run (data, training, evaluation) <= 10 minutes on 2 cores, all its steps done. Exits 1 when a
target is missed. Run it with ONEDNN_MAX_CPU_ISA=AVX2 to time it as an AVX2-only CPU would.
For the LSTM it also prints the same measure on the training text (the last tenth of each file's
training part), to show over- or under-fitting, and how much training text was left out because it
repeats held-out text.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.char_references import kneser_ney_scores, reference_line
from generation.api import MODEL_KINDS
from generation.models.checkpoint import load_checkpoint
from generation.registry import ModelRegistry
from generation.settings import GenerationSettings
from generation.train import evaluate
from generation.train.data import load_images, load_text_corpus
from generation.train.run import TrainOptions, train_and_register

TRAIN_SECONDS_TARGET = 600.0


def lstm_fit_report(models_dir: Path, version: str, corpus_dir: Path) -> str:
    """Held-out vs training bits per character of a trained LSTM version (static evaluation)."""
    checkpoint = load_checkpoint(ModelRegistry(models_dir).version_dir("lstm", version), "lstm")
    corpus = load_text_corpus(corpus_dir)
    cuts = [len(text) - len(text) // 10 for text in corpus.train]
    train = evaluate.bits_per_char(
        checkpoint.model,
        checkpoint.vocab,
        [text[:cut] for text, cut in zip(corpus.train, cuts, strict=True)],
        [text[cut:] for text, cut in zip(corpus.train, cuts, strict=True)],
    )
    twins = (
        f"after leaving out {corpus.twin_chars_dropped} that repeat held-out text"
        if not corpus.twin_chars_kept
        else f"including {corpus.twin_chars_kept} that repeat held-out text (held-out score optimistic)"
    )
    return (
        f"  train bpc {train['bpc']:.4f} (last tenth of each file's training part); "
        f"training text {sum(map(len, corpus.train))} chars {twins}"
    )


def score_champion(kind: str, settings: GenerationSettings, models_dir: Path) -> dict[str, float] | None:
    champion = ModelRegistry(models_dir, settings.shipped_dir).champion(kind)
    if champion is None:
        return None
    checkpoint = load_checkpoint(champion.path, kind)
    if kind == "lstm":
        corpus = load_text_corpus(settings.text_corpus_dir)
        return evaluate.bits_per_char(checkpoint.model, checkpoint.vocab, corpus.train, corpus.heldout)
    data = load_images(None, checkpoint.model.config.image_size, models_dir / "datasets")
    judge = evaluate.load_or_train_judge(data, models_dir / "evaluator")
    return evaluate.evaluate_images(checkpoint.model, data, judge)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.generation_quality", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--kind", choices=[*MODEL_KINDS, "all"], default="all")
    parser.add_argument("--threads", type=int, default=0, help="0 = torch's default (all cores)")
    parser.add_argument("--keep", type=Path, help="models folder to train into (default: a temporary one)")
    parser.add_argument(
        "--time-limit", type=float, help="override the recipes' training time cap, in seconds (0 = none)"
    )
    parser.add_argument(
        "--evaluate-only", action="store_true", help="score the champions under DATA_DIR/models"
    )
    args = parser.parse_args(argv)
    settings = GenerationSettings.load()
    kinds = list(MODEL_KINDS) if args.kind == "all" else [args.kind]
    if args.threads:
        torch.set_num_threads(args.threads)
    ok = True
    with tempfile.TemporaryDirectory() as scratch:
        for kind in kinds:
            if args.evaluate_only:
                metrics = score_champion(kind, settings, settings.models_dir)
                if metrics is None:
                    print(f"{kind}: no champion under {settings.models_dir}")
                    ok = False
                    continue
                timing = ""
            else:
                models_dir = args.keep or Path(scratch)
                options = TrainOptions(
                    kind=kind,
                    models_dir=models_dir,
                    text_corpus_dir=settings.text_corpus_dir,
                    device="cpu",
                    threads=args.threads,
                    time_limit_s=args.time_limit,
                    quiet=True,
                )
                started = time.perf_counter()
                report = train_and_register(options)
                wall = time.perf_counter() - started
                metrics = report.candidate
                in_time = wall <= TRAIN_SECONDS_TARGET and not report.train["stopped_by_time_limit"]
                ok = ok and in_time
                timing = (
                    f"  whole run {wall:.0f} s wall (training {report.train['train_seconds']:.0f} s wall, "
                    f"{report.train['train_cpu_seconds']:.0f} s CPU, {report.train['steps']}/"
                    f"{report.train['planned_steps']} steps"
                    f"{', cut by the time limit' if report.train['stopped_by_time_limit'] else ''}) "
                    f"target <= {TRAIN_SECONDS_TARGET:.0f} s {'PASS' if in_time else 'FAIL'}"
                )
                if kind == "lstm":
                    timing += "\n" + lstm_fit_report(models_dir, report.version, settings.text_corpus_dir)
            met = evaluate.targets_met(kind, metrics)
            ok = ok and all(met.values())
            print(f"== {kind}")
            print(json.dumps({key: round(value, 4) for key, value in metrics.items()}))
            for name, passed in met.items():
                print(f"  {name}: {metrics[name]:.4f} {'PASS' if passed else 'FAIL'}")
            if timing:
                print(timing)
            if kind == "lstm":
                kneser_ney = kneser_ney_scores(settings.text_corpus_dir)
                beats = metrics["bpc"] < kneser_ney["bpc"]
                ok = ok and beats
                print(reference_line(settings.text_corpus_dir, kneser_ney))
                print(
                    f"  bpc {metrics['bpc']:.4f} vs the Kneser-Ney 5-gram's {kneser_ney['bpc']:.4f}: "
                    f"{'PASS' if beats else 'FAIL'}"
                )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
