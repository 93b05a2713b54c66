"""One training run end to end: data -> train -> candidate checkpoint -> evaluate -> promote or not."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from generation.api import IMAGE_KINDS, TEXT_KINDS, ChampionScore, TrainReport
from generation.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from generation.models.device import resolve_device
from generation.registry import ModelRegistry
from generation.train import evaluate
from generation.train.data import (
    HELDOUT_SPLIT,
    ImageData,
    TextCorpus,
    load_images,
    load_text_corpus,
)
from generation.train.gan import GanRecipe, train_gan
from generation.train.lstm import LstmRecipe, train_lstm
from generation.train.progress import ProgressCallback, ProgressReporter, TrainProgress
from generation.train.vae import VaeRecipe, train_vae
from generation.train.word import WordRecipe, train_word
from generation.train.word_eval import word_bits_per_char

DRY_RUN_IMAGES_PER_CLASS = 24
DRY_RUN_TRAIN_CHARS = 3000
DRY_RUN_HELDOUT_CHARS = 300
# Each image kind's recipe and training function; they share the data, the judge and the gate.
IMAGE_TRAINERS = {"gan": (GanRecipe, train_gan), "vae": (VaeRecipe, train_vae)}
# Each text kind's recipe and training function; they share the corpus, its split and the gate.
TEXT_TRAINERS = {"lstm": (LstmRecipe, train_lstm), "word": (WordRecipe, train_word)}


@dataclass
class TrainOptions:
    """What the command line (or the bot's admin job) asks for."""

    kind: str
    models_dir: Path
    shipped_dir: Path | None = None  # default champions shipped with the package
    data: str | None = None  # images: digits | mnist | folder; LSTM: folder or file of text
    text_corpus_dir: Path | None = None
    epochs: int | None = None
    max_steps: int | None = None
    time_limit_s: float | None = None
    device: str = "auto"
    seed: int = 0
    dry_run: bool = False
    threads: int = 0
    progress_every: int = 50
    progress_json: bool = False
    quiet: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _recipe(
    recipe_class: type[GanRecipe] | type[VaeRecipe] | type[LstmRecipe] | type[WordRecipe],
    options: TrainOptions,
    device: torch.device,
):
    """The dry-run, CUDA or default CPU recipe of `recipe_class`, with the command line's overrides."""
    if options.dry_run:
        recipe = recipe_class.dry_run()
    elif device.type == "cuda":
        recipe = recipe_class.for_cuda()
    else:
        recipe = recipe_class()
    return _override(recipe, options)


def _override(recipe, options: TrainOptions):
    if options.epochs is not None:
        recipe.epochs = options.epochs
    if options.max_steps is not None:
        recipe.max_steps = options.max_steps
    if options.time_limit_s is not None:
        recipe.time_limit_s = options.time_limit_s if options.time_limit_s > 0 else None
    for key, value in options.extra.items():
        if not hasattr(recipe, key):
            raise ValueError(f"unknown recipe setting {key!r}")
        setattr(recipe, key, _parse_like(getattr(recipe, key), value))
    return recipe


def _parse_like(current: object, value: str) -> object:
    """A --set value converted to the type of the setting it replaces."""
    if isinstance(current, bool):
        return value.lower() in ("1", "true", "yes")
    if isinstance(current, int | float):
        return type(current)(value)
    if value.lower() in ("none", "null", ""):
        return None
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    return value


def _tiny_images(data: ImageData) -> ImageData:
    if data.labels is None:
        return data.subset(torch.arange(min(len(data.images), 10 * DRY_RUN_IMAGES_PER_CLASS)))
    keep = torch.cat(
        [torch.nonzero(data.labels == c).flatten()[:DRY_RUN_IMAGES_PER_CLASS] for c in data.labels.unique()]
    )
    return data.subset(keep.sort().values)


def _tiny_corpus(corpus: TextCorpus) -> TextCorpus:
    return TextCorpus(
        corpus.names,
        [text[:DRY_RUN_TRAIN_CHARS] for text in corpus.train],
        [text[:DRY_RUN_HELDOUT_CHARS] for text in corpus.heldout],
        corpus.fingerprint + "-dry",
    )


class _Evaluator:
    """Scores any checkpoint of one kind on this run's data, so candidate and champion compare fairly."""

    def __init__(
        self, kind: str, options: TrainOptions, image_data: ImageData | None, corpus: TextCorpus | None
    ):
        self.kind = kind
        self.image_data = image_data
        self.corpus = corpus
        self.judge = None
        if kind in IMAGE_KINDS and image_data is not None and image_data.labels is not None:
            recipe = evaluate.JudgeRecipe(epochs=3) if options.dry_run else evaluate.JudgeRecipe()
            self.judge = evaluate.load_or_train_judge(image_data, options.models_dir / "evaluator", recipe)

    def __call__(self, model, vocab) -> dict[str, float]:
        if self.kind == "lstm":
            assert self.corpus is not None
            return evaluate.bits_per_char(model, vocab, self.corpus.train, self.corpus.heldout)
        if self.kind == "word":
            assert self.corpus is not None
            return word_bits_per_char(model, vocab, self.corpus.train, self.corpus.heldout)
        assert self.image_data is not None
        if self.judge is None:
            return evaluate.evaluate_unlabelled_images(model, self.image_data)
        return evaluate.evaluate_images(model, self.image_data, self.judge)


def comparable_split(kind: str, metadata: dict) -> bool:
    """Whether a checkpoint's held-out score was measured the way this run measures (the text split)."""
    if kind not in TEXT_KINDS:
        return True
    return (metadata.get("data") or {}).get("heldout_split") == HELDOUT_SPLIT


def train_and_register(options: TrainOptions, callback: ProgressCallback | None = None) -> TrainReport:
    """Run one training job; returns the report (also what the CLI prints as its last line)."""
    started = time.perf_counter()
    if options.threads:
        torch.set_num_threads(options.threads)
    device = resolve_device(options.device)
    registry = ModelRegistry(options.models_dir, options.shipped_dir)
    cleaned = registry.cleanup_partial(options.kind)  # leftovers of runs killed mid-way

    def reporter_factory(total: int) -> ProgressReporter:
        return ProgressReporter(
            options.kind,
            total,
            every=options.progress_every,
            as_json=options.progress_json,
            callback=callback,
            quiet=options.quiet,
            started=started,
        )

    image_data = corpus = vocab = None
    if options.kind in IMAGE_KINDS:
        recipe_class, train = IMAGE_TRAINERS[options.kind]
        recipe = _recipe(recipe_class, options, device)
        image_data = load_images(options.data, recipe.image_size, options.models_dir / "datasets")
        if options.dry_run:
            image_data = _tiny_images(image_data)
        train_part = image_data
        if image_data.labels is not None:
            train_part, _ = evaluate.split_for_images(image_data)  # the judge's digits stay unseen
        model, config, info = train(recipe, train_part, device, reporter_factory, options.seed)
        config_dict, data_info = (
            config.to_dict(),
            {"source": image_data.source, "fingerprint": image_data.fingerprint},
        )
    elif options.kind in TEXT_TRAINERS:
        recipe_class, train_text = TEXT_TRAINERS[options.kind]
        recipe = _recipe(recipe_class, options, device)
        source = Path(options.data) if options.data else options.text_corpus_dir
        if source is None:
            raise ValueError("no text corpus: pass --data PATH or set TEXT_CORPUS_DIR")
        corpus = load_text_corpus(source)
        if options.dry_run:
            corpus = _tiny_corpus(corpus)
        model, vocab, info = train_text(recipe, corpus, device, reporter_factory, options.seed)
        config_dict, data_info = (
            model.config.to_dict(),
            {
                "source": str(source),
                "fingerprint": corpus.fingerprint,
                "files": corpus.names,
                "heldout_split": HELDOUT_SPLIT,
            },
        )
    else:
        raise ValueError(f"unknown model kind {options.kind!r}")

    evaluator = _Evaluator(options.kind, options, image_data, corpus)
    phase = reporter_factory(1)
    phase.emit(
        TrainProgress(
            options.kind, "evaluate", info["steps"], info["planned_steps"], math.nan, phase.elapsed(), 0.0
        )
    )
    candidate_metrics = evaluator(model, vocab)

    version, partial = registry.new_candidate(options.kind)
    save_checkpoint(
        partial,
        options.kind,
        model,
        config_dict,
        vocab=vocab,
        metadata={
            "version": version,
            "created_at": _now(),
            "data": data_info,
            "recipe": recipe.to_dict(),
            "train": {**info, "device": str(device), "seed": options.seed, "dry_run": options.dry_run},
            "metrics": candidate_metrics,
        },
    )
    registry.commit_candidate(options.kind, version)

    champion_report = None
    champion_metrics = None
    champion = registry.champion(options.kind)
    if champion is not None:
        try:
            loaded = load_checkpoint(champion.path, options.kind)
            scored = evaluator(loaded.model, loaded.vocab)
            champion_report = ChampionScore(version=champion.version, metrics=scored)
            if comparable_split(options.kind, loaded.metadata):
                champion_metrics = scored
            else:
                champion_report.error = (
                    "trained before the current held-out split: its score is not comparable"
                )
        except CheckpointError as exc:  # an unreadable champion is no reason to keep a good candidate out
            champion_report = ChampionScore(version=champion.version, error=str(exc))
    promoted, reason = evaluate.beats(options.kind, candidate_metrics, champion_metrics)
    if promoted and champion_report and champion_report.error is not None:
        reason = f"the champion cannot be compared ({champion_report.error})"
    if promoted:
        registry.promote(options.kind, version)
    else:
        registry.reject(options.kind, version, reason)
    phase.emit(
        TrainProgress(
            options.kind, "done", info["steps"], info["planned_steps"], math.nan, phase.elapsed(), 0.0
        )
    )
    warnings = []
    if info["stopped_by_time_limit"]:
        warnings.append(
            f"stopped by the {recipe.time_limit_s:.0f} s time limit after {info['steps']} of "
            f"{info['planned_steps']} steps: not the full recipe"
        )
    return TrainReport(
        warnings=warnings,
        kind=options.kind,
        version=version,
        path=str(registry.version_dir(options.kind, version)),
        promoted=promoted,
        reason=reason,
        candidate=candidate_metrics,
        targets_met=evaluate.targets_met(options.kind, candidate_metrics),
        champion=champion_report,
        train=info,
        device=str(device),
        dry_run=options.dry_run,
        cleaned_partial=[str(path) for path in cleaned],
        seconds=round(time.perf_counter() - started, 1),
    )


def report_line(report: TrainReport) -> str:
    """The report as the trainer's last stdout line (what bot.jobs reads)."""
    return json.dumps(report.to_json(), ensure_ascii=False, default=str)


__all__ = ["TrainOptions", "report_line", "train_and_register"]
