"""`python -m knowledge train-intent`: train a candidate, gate it against the model serving (the gate's
real questions routed away, then its messages' macro-F1), and say what happened — in words, or (with
--progress-json, as the bot's /retrain runs it) as JSON progress lines and a final report line in the
same protocol as the generators' trainer (`{"event": "report", "kind": "intent", "version", "promoted", ...}`).

A run stopped at any point leaves the champion serving: the candidate and the champion are each
replaced by renaming a complete folder into place. `--cleanup` removes what a stopped run left behind.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowledge.api import INTENT_MODEL as KIND
from knowledge.intent import checkpoint_version
from knowledge.intent_metrics import IntentScores
from knowledge.intent_store import INTENT_FOLDER, champion_dir, serving_dir

if TYPE_CHECKING:
    from knowledge.intent_train import GateFigures, Promotion

CANDIDATE = "candidate"


@dataclass(frozen=True)
class RetrainArgs:
    """The command's options."""

    out: Path | None = None
    dry_run: bool = False
    epochs: int | None = None
    seed: int | None = None
    max_steps: int | None = None
    ship: bool = False
    progress_json: bool = False


def candidate_dir(data_dir: Path) -> Path:
    """Where a run writes its candidate by default."""
    return Path(data_dir) / INTENT_FOLDER / CANDIDATE


def headline(scores: IntentScores) -> dict[str, float]:
    """The figures a report shows: macro-F1, accuracy, and each class's recall."""
    figures = {"macro_f1": round(scores.macro_f1, 4), "accuracy": round(scores.accuracy, 4)}
    figures.update({f"recall_{name}": round(value, 4) for name, value in scores.recall.items()})
    return figures


def gate_headline(figures: GateFigures) -> dict[str, float]:
    """A model's gate figures in a report: the headline scores and the real questions routed away."""
    return {**headline(figures.scores), "questions_routed_away": round(figures.routed_away, 4)}


def _champion_figures(promotion: Promotion) -> dict[str, Any] | None:
    """The model the candidate was compared with: its version and its gate figures."""
    if promotion.champion is None:
        return None
    return {
        "version": checkpoint_version(promotion.champion),
        "metrics": gate_headline(promotion.champion_figures),
    }


def retrain(data_dir: Path, embedding_model: str, args: RetrainArgs) -> int:
    """Train, gate, promote; print the outcome. Returns the exit status."""
    import torch

    from knowledge.intent_metrics import report
    from knowledge.intent_store import query_encoder, sentence_encoder
    from knowledge.intent_train import (
        DRY_RUN,
        Gate,
        IntentRecipe,
        promote_if_better,
        train_and_save,
        with_options,
    )

    started = time.perf_counter()
    emit = _JsonLines(started) if args.progress_json else None
    log = (lambda line: print(line, file=sys.stderr)) if emit else print
    recipe = with_options(DRY_RUN if args.dry_run else IntentRecipe(), args.epochs, args.seed, args.max_steps)
    candidate = args.out or candidate_dir(data_dir)
    if emit:
        emit.progress("encode", 0, 1, None)
    encoder, sentences = query_encoder(embedding_model), sentence_encoder()
    trained = train_and_save(encoder, sentences, recipe, candidate, log, emit.progress if emit else None)
    log(
        f"epoch {trained.best_epoch}, threshold {trained.routing.threshold}, question odds "
        f"{trained.routing.question_odds}, held-out real questions routed away "
        f"{trained.routed_away:.1%}; tune part:\n{report(trained.scores)}"
    )
    # The bar is the model serving now: DATA_DIR's champion, else the shipped default.
    gate = Gate(encoder, sentences, recipe.gate_sample)
    promotion = promote_if_better(candidate, champion_dir(data_dir), gate, serving_dir(data_dir))
    new, old = promotion.candidate_figures, promotion.champion_figures
    log(
        f"gate, {len(gate.truth)} messages and {len(gate.questions.states)} real questions no model "
        f"trained on; candidate (questions routed away {new.routed_away:.1%}):\n{report(new.scores)}"
    )
    if old is not None:
        log(f"the model serving (questions routed away {old.routed_away:.1%}):\n{report(old.scores)}")
    log(f"candidate {trained.version} -> {candidate}: {promotion.reason}")
    if args.ship:
        from knowledge.intent import save_intent_model
        from knowledge.intent_store import SHIPPED_INTENT

        save_intent_model(SHIPPED_INTENT, trained.network, trained.routing, trained.metadata, torch.float16)
        log(f"shipped default -> {SHIPPED_INTENT}")
    if emit:
        emit.line(
            {
                "event": "report",
                "kind": KIND,
                "version": trained.version,
                "path": str(candidate),
                "promoted": promotion.promoted,
                "reason": promotion.reason,
                "candidate": gate_headline(promotion.candidate_figures),
                "champion": _champion_figures(promotion),
                "train": {
                    "best_epoch": trained.best_epoch,
                    **trained.routing.to_json(),
                    "held_out_questions_routed_away": round(trained.routed_away, 4),
                    "seed": recipe.seed,
                },
                "device": "cpu",
                "dry_run": args.dry_run,
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
    return 0


def cleanup(data_dir: Path) -> list[str]:
    """Remove the half-written folders a stopped run may leave under DATA_DIR/intent (never a
    complete candidate or the champion); returns their names."""
    folder = Path(data_dir) / INTENT_FOLDER
    removed = []
    for path in sorted(folder.glob(".*")) if folder.is_dir() else []:
        if path.is_dir() and any(mark in path.name for mark in (".tmp-", ".old-", ".new")):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed


class _JsonLines:
    """The bot's progress protocol on stdout: one JSON object a line, flushed at once."""

    def __init__(self, started: float) -> None:
        self.started = started

    def line(self, event: dict[str, Any]) -> None:
        print(json.dumps(event, ensure_ascii=False), flush=True)

    def progress(self, phase: str, step: int, total: int, loss: float | None) -> None:
        elapsed = time.perf_counter() - self.started
        eta = elapsed / step * (total - step) if step else 0.0
        self.line(
            {
                "event": "progress",
                "kind": KIND,
                "phase": phase,
                "step": step,
                "total_steps": total,
                "loss": None if loss is None else round(loss, 4),
                "elapsed_s": round(elapsed, 1),
                "eta_s": round(eta, 1),
            }
        )
