"""Learned weights (JSON): the passage ranker and the answer/decline models, applied with numpy alone."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from knowledge.features import QUESTION_FEATURES, UNIT_FEATURES

# Produced by `python -m knowledge train`; small enough to ship beside the code.
SHIPPED = Path(__file__).parent / "learned.json"


@dataclass(frozen=True)
class LinearModel:
    """Logistic regression on standardised features: logit = ((x - mean) / scale) . weights + bias."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def logits(self, rows: np.ndarray) -> np.ndarray:
        """Logits of an (n, features) matrix (or one row)."""
        mean = np.asarray(self.mean, dtype=np.float32)
        scale = np.asarray(self.scale, dtype=np.float32)
        return ((rows - mean) / scale) @ np.asarray(self.weights, dtype=np.float32) + self.bias

    def probability(self, rows: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of the positive class."""
        return 1.0 / (1.0 + np.exp(-self.logits(rows)))

    @classmethod
    def from_json(cls, data: dict) -> LinearModel:
        return cls(
            tuple(data["features"]),
            tuple(data["mean"]),
            tuple(data["scale"]),
            tuple(data["weights"]),
            float(data["bias"]),
        )


@dataclass(frozen=True)
class Policy:
    """What was learned: how to rank passages, whether to answer, and whether a question is in-domain."""

    ranker: LinearModel  # P(a unit holds the answer)
    answerable: LinearModel  # P(the corpus answers the question)
    answer_at: float  # answer when P(answerable) reaches this (chosen by cross-validation)
    in_domain: LinearModel | None  # P(an unanswerable question is about the corpus's topics)
    trained_on: dict  # question counts per source, for the record
    candidates_per_signal: int  # how many units each signal puts forward (chosen by cross-validation)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Policy:
        ranker = LinearModel.from_json(data["ranker"])
        answerable = LinearModel.from_json(data["answerable"])
        if ranker.features != UNIT_FEATURES or answerable.features != QUESTION_FEATURES:
            raise ValueError("learned weights are for other features; run `python -m knowledge train`")
        in_domain = LinearModel.from_json(data["in_domain"]) if data.get("in_domain") else None
        return cls(
            ranker,
            answerable,
            float(data["answer_at"]),
            in_domain,
            dict(data.get("trained_on", {})),
            int(data["candidates_per_signal"]),
        )


def load_policy(path: Path = SHIPPED) -> Policy:
    """Read learned weights from JSON."""
    return Policy.from_json(json.loads(path.read_text(encoding="utf-8")))


def save_policy(policy: Policy, path: Path = SHIPPED) -> None:
    """Write learned weights as JSON (stable key order, so a retrain shows as a readable diff)."""
    path.write_text(json.dumps(policy.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
