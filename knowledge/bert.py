"""A BERT sentence encoder for queries in plain torch: mean-pooled, L2-normalised embeddings computed as
sentence-transformers computes them, read straight from the model folder (config, safetensors weights,
tokenizer.json), so serving questions never imports transformers or sentence-transformers, whose
imports are most of a cold start."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from tokenizers import Tokenizer

POOLING = "sentence_transformers.models.Pooling"
SUPPORTED_MODULES = (
    "sentence_transformers.models.Transformer",
    POOLING,
    "sentence_transformers.models.Normalize",
)


class UnsupportedModel(ValueError):
    """The folder is not a mean-pooled, normalised BERT sentence-transformers model."""


def _read_json(path: Path) -> dict | list:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UnsupportedModel(f"cannot read {path.name}: {exc}") from None


def _check_pipeline(folder: Path) -> None:
    modules = _read_json(folder / "modules.json")
    types = tuple(module.get("type") for module in modules) if isinstance(modules, list) else ()
    if types != SUPPORTED_MODULES:
        raise UnsupportedModel(f"pipeline {types} is not transformer, pooling, normalize")
    pooling_path = next(module["path"] for module in modules if module["type"] == POOLING)
    pooling = _read_json(folder / pooling_path / "config.json")
    modes = {key for key, value in pooling.items() if key.startswith("pooling_mode") and value}
    if modes != {"pooling_mode_mean_tokens"}:
        raise UnsupportedModel(f"pooling {sorted(modes)} is not a plain mean")


def padded(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id rows -> (ids, attention mask), padded with `pad_id` to the longest row."""
    width = max(len(row) for row in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for n, row in enumerate(rows):
        ids[n, : len(row)] = row
        mask[n, : len(row)] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


class BertQueryEncoder:
    """Mean-pooled, normalised BERT embeddings in float32; one instance per model folder."""

    def __init__(self, folder: Path, max_tokens: int) -> None:
        folder = Path(folder)
        _check_pipeline(folder)
        config = _read_json(folder / "config.json")
        if (
            config.get("model_type") != "bert"
            or config.get("hidden_act") != "gelu"
            or config.get("position_embedding_type", "absolute") != "absolute"
        ):
            raise UnsupportedModel("not a BERT with GELU and absolute positions")
        weights_file = folder / "model.safetensors"
        if not weights_file.is_file():
            raise UnsupportedModel("no model.safetensors")
        weights = load_file(str(weights_file))
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""
        self.weights = {name.removeprefix(prefix): tensor.float() for name, tensor in weights.items()}
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.dimension = int(config["hidden_size"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        max_tokens = min(max_tokens, int(config.get("max_position_embeddings", max_tokens)))
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_tokens)
        pad = self.tokenizer.token_to_id("[PAD]")
        self.pad_id = int(config.get("pad_token_id", 0) if pad is None else pad)
        try:
            self.forward(*self.tensors(["a probe"]))
        except (KeyError, RuntimeError) as exc:  # weights named or shaped otherwise than BERT's
            raise UnsupportedModel(f"weights do not fit BERT: {exc}") from None

    def tensors(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and attention mask, padded to the longest text."""
        return padded([self.tokenizer.encode(text).ids for text in texts], self.pad_id)

    def _linear(self, name: str, inputs: torch.Tensor) -> torch.Tensor:
        return F.linear(inputs, self.weights[f"{name}.weight"], self.weights[f"{name}.bias"])

    def _norm(self, name: str, inputs: torch.Tensor) -> torch.Tensor:
        w = self.weights
        return F.layer_norm(inputs, inputs.shape[-1:], w[f"{name}.weight"], w[f"{name}.bias"], self.eps)

    @torch.inference_mode()
    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(batch, tokens) ids and mask -> (batch, dimension) unit vectors."""
        w = self.weights
        batch, width = ids.shape
        positions = torch.arange(width)
        hidden = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][positions]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        hidden = self._norm("embeddings.LayerNorm", hidden)
        # Padded keys get the most negative float, as transformers' BERT masks them.
        bias = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        head = self.dimension // self.heads
        for layer in range(self.layers):
            name = f"encoder.layer.{layer}"
            query, key, value = (
                self._linear(f"{name}.attention.self.{part}", hidden)
                .view(batch, width, self.heads, head)
                .transpose(1, 2)
                for part in ("query", "key", "value")
            )
            scores = query @ key.transpose(-1, -2) / math.sqrt(head) + bias
            context = (scores.softmax(dim=-1) @ value).transpose(1, 2).reshape(batch, width, -1)
            attended = self._linear(f"{name}.attention.output.dense", context) + hidden
            hidden = self._norm(f"{name}.attention.output.LayerNorm", attended)
            inner = F.gelu(self._linear(f"{name}.intermediate.dense", hidden))
            hidden = self._norm(
                f"{name}.output.LayerNorm", self._linear(f"{name}.output.dense", inner) + hidden
            )
        weights = mask.unsqueeze(-1).float()
        mean = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        return F.normalize(mean, dim=-1)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Texts -> an (n, dimension) float32 matrix of unit vectors."""
        return self.forward(*self.tensors(texts)).numpy()
