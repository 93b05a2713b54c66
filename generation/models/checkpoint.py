"""Checkpoints: safetensors weights plus JSON metadata, read by ONE loader shared by trainer and servers.

A checkpoint is a folder with `model.safetensors` and `meta.json`. The metadata names the model kind,
its network config, the vocabulary (text models), the data fingerprint, metrics and creation time, and
the SHA-256 of the weights file, so a weights file paired with the wrong metadata is refused up front.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from generation.models.gan import GanConfig, Generator
from generation.models.lstm import CharLSTM, LstmConfig
from generation.models.subword import SubwordVocab
from generation.models.vae import VaeConfig, VaeDecoder
from generation.models.vocab import CharVocab
from generation.models.word_lm import WordLM, WordLmConfig

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
META_FILE = "meta.json"
# The network and config class each checkpoint kind holds. The kinds themselves are defined in
# generation.api, which this package may not import; a test keeps the two in step.
NETWORKS: dict[str, tuple[Callable[[Any], nn.Module], Callable[..., Any]]] = {
    "gan": (Generator, GanConfig),
    "lstm": (CharLSTM, LstmConfig),
    "vae": (VaeDecoder, VaeConfig),
    "word": (WordLM, WordLmConfig),
}
TextVocab = CharVocab | SubwordVocab
# The text kinds' vocabularies, read back from their JSON form in the metadata.
VOCABS: dict[str, Callable[[Any], TextVocab]] = {"lstm": CharVocab.from_json, "word": SubwordVocab.from_json}


class CheckpointError(ValueError):
    """The checkpoint is missing, corrupt, or its metadata does not match its weights or kind."""


@dataclass
class Checkpoint:
    """A loaded, ready-to-run model plus everything its metadata says."""

    kind: str
    model: nn.Module
    metadata: dict[str, Any]
    vocab: TextVocab | None = None
    path: Path | None = field(default=None)

    @property
    def metrics(self) -> dict[str, float]:
        return {key: float(value) for key, value in self.metadata.get("metrics", {}).items()}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_model(kind: str, config: dict[str, Any]) -> nn.Module:
    """The network a checkpoint describes, with fresh weights."""
    if kind not in NETWORKS:
        raise CheckpointError(f"unknown model kind {kind!r}")
    network, config_class = NETWORKS[kind]
    try:
        return network(config_class(**config))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"bad {kind} config in metadata: {exc}") from None


def save_checkpoint(
    directory: Path,
    kind: str,
    model: nn.Module,
    config: dict[str, Any],
    *,
    vocab: TextVocab | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write weights, then metadata (with the weights' hash) into `directory`; returns the folder.

    Each file is written under a temporary name and renamed into place, and the temporaries are removed
    when a write fails (a full disk): the folder never holds a half-written weights or metadata file."""
    if kind not in NETWORKS:
        raise CheckpointError(f"unknown model kind {kind!r}")
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / WEIGHTS_FILE
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    weights_temp = directory / (WEIGHTS_FILE + ".tmp")
    meta_temp = directory / (META_FILE + ".tmp")
    try:
        save_file(state, str(weights_temp))
        os.replace(weights_temp, weights)
        meta = dict(metadata or {})
        meta.update(format=FORMAT_VERSION, kind=kind, config=config, weights_sha256=_sha256(weights))
        if vocab is not None:
            meta["vocab"] = vocab.to_json()
        meta.setdefault("metrics", {})
        meta_temp.write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(meta_temp, directory / META_FILE)
    except BaseException:
        weights_temp.unlink(missing_ok=True)
        meta_temp.unlink(missing_ok=True)
        raise
    return directory


def read_metadata(directory: Path) -> dict[str, Any]:
    """The metadata alone (cheap: no weights read)."""
    path = directory / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"no {META_FILE} in {directory}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"unreadable {path}: {exc}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} is not a JSON object")
    return meta


def write_metadata(directory: Path, meta: dict[str, Any]) -> None:
    """Rewrite metadata atomically (e.g. to record metrics after evaluation); the weights hash is kept."""
    current = read_metadata(directory)
    for key in ("format", "kind", "config", "weights_sha256", "vocab"):
        if key in current and meta.get(key) != current[key]:
            raise CheckpointError(f"refusing to change {key!r} of an existing checkpoint")
    temp = directory / (META_FILE + ".tmp")
    try:
        temp.write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(temp, directory / META_FILE)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def load_checkpoint(directory: Path, kind: str, device: str | torch.device = "cpu") -> Checkpoint:
    """Load and check a checkpoint; raises CheckpointError rather than failing later at run time."""
    directory = Path(directory)
    meta = read_metadata(directory)
    if meta.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint format {meta.get('format')!r}, expected {FORMAT_VERSION}")
    if meta.get("kind") != kind:
        raise CheckpointError(f"checkpoint is a {meta.get('kind')!r} model, expected {kind!r}")
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"no {WEIGHTS_FILE} in {directory}")
    if _sha256(weights) != meta.get("weights_sha256"):
        raise CheckpointError("weights file does not match the hash recorded in its metadata")
    config = meta.get("config")
    if not isinstance(config, dict):
        raise CheckpointError("metadata has no network config")
    vocab = None
    if kind in VOCABS:
        try:
            vocab = VOCABS[kind](meta["vocab"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"bad vocabulary in metadata: {exc}") from None
        if len(vocab) != config.get("vocab_size"):
            raise CheckpointError(
                f"vocabulary has {len(vocab)} entries, config says {config.get('vocab_size')}"
            )
    model = build_model(kind, config)
    try:
        state = load_file(str(weights))  # safetensors: plain tensors, never pickle
        model.load_state_dict(state, strict=True)
    except SafetensorError as exc:  # not a safetensors file (a pickle, say): refused, never unpickled
        raise CheckpointError(f"{WEIGHTS_FILE} is not a safetensors file: {exc}") from None
    except (RuntimeError, OSError) as exc:
        raise CheckpointError(f"weights do not fit the {kind} config: {str(exc).splitlines()[0]}") from None
    model.to(device).eval()
    return Checkpoint(kind=kind, model=model, metadata=meta, vocab=vocab, path=directory)
