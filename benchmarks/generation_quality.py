"""Generator quality with the default CPU recipes: train each from scratch, score it, time it.

    python -m benchmarks.generation_quality [--kind gan|vae|lstm|word|all] [--threads N] [--keep DIR] [--time-limit S]
    python -m benchmarks.generation_quality --evaluate-only      (score the champions under DATA_DIR)

Targets: GAN and VAE alike, conditional accuracy >= 0.95, Frechet distance <= 3x the real-vs-real floor,
diversity >= 0.8x real, no near-copies; LSTM <= 1.9 bits per character on the held-out tenth of
every corpus file, and fewer than the Kneser-Ney 5-gram's on the same split; the word-level LSTM at
most 0.9x the Kneser-Ney 5-gram's (English and Chinese shown apart, beside the character LSTM's
champion on the same split), and its samples as benchmarks.text_samples wants them; each default recipe's
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
from benchmarks.text_samples import report as samples_report
from benchmarks.text_samples import sample_figures
from generation.api import MODEL_KINDS, TEXT_KINDS
from generation.models.checkpoint import Checkpoint, load_checkpoint
from generation.registry import ModelRegistry
from generation.service.inference import load_generator
from generation.settings import GenerationSettings
from generation.train import evaluate
from generation.train.data import load_images, load_text_corpus
from generation.train.run import TrainOptions, train_and_register
from generation.train.word_eval import word_bits_per_char

TRAIN_SECONDS_TARGET = 600.0
WORD_BPC_SHARE_OF_KN = 0.9  # the word model's held-out bits per character, at most this share of KN's


def text_scores(checkpoint: Checkpoint, contexts: list[str], texts: list[str]) -> dict[str, float]:
    """A text checkpoint's bits per character on `texts`, each after its context."""
    score = word_bits_per_char if checkpoint.kind == "word" else evaluate.bits_per_char
    return score(checkpoint.model, checkpoint.vocab, contexts, texts)


def lstm_fit_report(models_dir: Path, version: str, corpus_dir: Path, kind: str = "lstm") -> str:
    """Held-out vs training bits per character of a trained text model version (static evaluation)."""
    checkpoint = load_checkpoint(ModelRegistry(models_dir).version_dir(kind, version), kind)
    corpus = load_text_corpus(corpus_dir)
    cuts = [len(text) - len(text) // 10 for text in corpus.train]
    train = text_scores(
        checkpoint,
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
    if kind in TEXT_KINDS:
        corpus = load_text_corpus(settings.text_corpus_dir)
        return text_scores(checkpoint, corpus.train, corpus.heldout)
    data = load_images(None, checkpoint.model.config.image_size, models_dir / "datasets")
    judge = evaluate.load_or_train_judge(data, models_dir / "evaluator")
    return evaluate.evaluate_images(checkpoint.model, data, judge)


def by_language(name: str, metrics: dict[str, float]) -> str:
    return (
        f"{name}: {metrics['bpc']:.3f} bpc (English and other {metrics['bpc_other']:.3f}, "
        f"Chinese {metrics['bpc_cjk']:.3f})"
    )


def word_report(
    metrics: dict[str, float], checkpoint_dir: Path, settings: GenerationSettings, models_dir: Path
) -> tuple[list[str], bool]:
    """The word model beside the character LSTM's champion and the Kneser-Ney 5-gram on the same
    split, then its samples; whether it meets its targets."""
    corpus = load_text_corpus(settings.text_corpus_dir)
    kneser_ney = kneser_ney_scores(settings.text_corpus_dir)
    lines = [f"  {by_language('word LSTM', metrics)}"]
    char = ModelRegistry(models_dir, settings.shipped_dir).champion("lstm")
    if char is not None:
        scored = text_scores(load_checkpoint(char.path, "lstm"), corpus.train, corpus.heldout)
        lines.append(f"  {by_language(f'char LSTM {char.version}', scored)}")
    lines.append(f"  {by_language('Kneser-Ney 5-gram', kneser_ney)}")
    share = metrics["bpc"] / kneser_ney["bpc"]
    ok = share <= WORD_BPC_SHARE_OF_KN
    lines.append(
        f"  bpc {metrics['bpc']:.4f} = {share:.3f}x the Kneser-Ney 5-gram's "
        f"(target <= {WORD_BPC_SHARE_OF_KN}x) {'PASS' if ok else 'FAIL'}"
    )
    figures = sample_figures(load_generator(checkpoint_dir, "word", "cpu"), "word", settings.text_corpus_dir)
    lines += samples_report(figures)
    return lines, ok and all(figures.targets().values())


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
                champion = ModelRegistry(settings.models_dir, settings.shipped_dir).champion(kind)
                checkpoint_dir = champion.path if champion is not None else None
                models_dir = settings.models_dir
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
                checkpoint_dir = ModelRegistry(models_dir).version_dir(kind, report.version)
                if kind in TEXT_KINDS:
                    timing += "\n" + lstm_fit_report(
                        models_dir, report.version, settings.text_corpus_dir, kind
                    )
            met = evaluate.targets_met(kind, metrics)
            ok = ok and all(met.values())
            print(f"== {kind}")
            print(json.dumps({key: round(value, 4) for key, value in metrics.items()}))
            for name, passed in met.items():
                print(f"  {name}: {metrics[name]:.4f} {'PASS' if passed else 'FAIL'}")
            if timing:
                print(timing)
            if kind == "word" and checkpoint_dir is not None:
                lines, word_ok = word_report(metrics, checkpoint_dir, settings, models_dir)
                print("\n".join(lines))
                ok = ok and word_ok
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
