"""Scores for the intent classifier: accuracy, macro-F1, per-class precision/recall, confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass

from knowledge.intent import INTENTS


@dataclass(frozen=True)
class IntentScores:
    """Scores of predicted against true intents; confusion[true][predicted] counts messages."""

    accuracy: float
    macro_f1: float
    precision: dict[str, float]
    recall: dict[str, float]
    confusion: dict[str, dict[str, int]]
    count: int

    def to_json(self) -> dict:
        """The scores as a JSON-ready dict."""
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "precision": self.precision,
            "recall": self.recall,
            "confusion": self.confusion,
            "count": self.count,
        }


def score(truth: list[str], predicted: list[str]) -> IntentScores:
    """Compare two equally long label lists."""
    confusion = {true: dict.fromkeys(INTENTS, 0) for true in INTENTS}
    for true, guess in zip(truth, predicted, strict=True):
        confusion[true][guess] += 1
    precision, recall, f1 = {}, {}, []
    for name in INTENTS:
        hits = confusion[name][name]
        said = sum(confusion[true][name] for true in INTENTS)
        actual = sum(confusion[name].values())
        precision[name] = hits / said if said else 0.0
        recall[name] = hits / actual if actual else 0.0
        both = precision[name] + recall[name]
        f1.append(2 * precision[name] * recall[name] / both if both else 0.0)
    correct = sum(confusion[name][name] for name in INTENTS)
    return IntentScores(
        accuracy=correct / len(truth) if truth else 0.0,
        macro_f1=sum(f1) / len(f1),
        precision=precision,
        recall=recall,
        confusion=confusion,
        count=len(truth),
    )


def report(scores: IntentScores) -> str:
    """A plain-text report: the headline figures, a per-class table and the confusion matrix."""
    lines = [f"{scores.count} messages: accuracy {scores.accuracy:.3f}, macro-F1 {scores.macro_f1:.3f}"]
    lines.append(f"{'class':<10} {'precision':>9} {'recall':>7}")
    lines += [f"{name:<10} {scores.precision[name]:>9.3f} {scores.recall[name]:>7.3f}" for name in INTENTS]
    lines.append("confusion (rows true, columns predicted):")
    lines.append(" " * 10 + "".join(f"{name[:9]:>10}" for name in INTENTS))
    for true in INTENTS:
        lines.append(f"{true:<10}" + "".join(f"{scores.confusion[true][guess]:>10}" for guess in INTENTS))
    return "\n".join(lines)
