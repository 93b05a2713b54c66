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


def _linear(weights: dict[str, torch.Tensor], name: str, inputs: torch.Tensor) -> torch.Tensor:
    return F.linear(inputs, weights[f"{name}.weight"], weights[f"{name}.bias"])


def _norm(weights: dict[str, torch.Tensor], name: str, inputs: torch.Tensor, eps: float) -> torch.Tensor:
    return F.layer_norm(inputs, inputs.shape[-1:], weights[f"{name}.weight"], weights[f"{name}.bias"], eps)


def bert_layer(
    hidden: torch.Tensor, bias: torch.Tensor, weights: dict[str, torch.Tensor], heads: int, eps: float
) -> torch.Tensor:
    """One BERT transformer layer; differentiable, so a fine-tuned copy trains through it too."""
    batch, width, dimension = hidden.shape
    head = dimension // heads
    query, key, value = (
        _linear(weights, f"attention.self.{part}", hidden).view(batch, width, heads, head).transpose(1, 2)
        for part in ("query", "key", "value")
    )
    scores = query @ key.transpose(-1, -2) / math.sqrt(head) + bias
    context = (scores.softmax(dim=-1) @ value).transpose(1, 2).reshape(batch, width, -1)
    attended = _linear(weights, "attention.output.dense", context) + hidden
    hidden = _norm(weights, "attention.output.LayerNorm", attended, eps)
    inner = F.gelu(_linear(weights, "intermediate.dense", hidden))
    return _norm(weights, "output.LayerNorm", _linear(weights, "output.dense", inner) + hidden, eps)


def attention_bias(mask: torch.Tensor) -> torch.Tensor:
    """(batch, tokens) mask -> the additive bias that hides padded keys from attention."""
    # Padded keys get the most negative float, as transformers' BERT masks them.
    return (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of each row's unmasked token states."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


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
        self._layer_weights = [self._weights_of_layer(layer) for layer in range(self.layers)]
        pad = self.tokenizer.token_to_id("[PAD]")
        self.pad_id = int(config.get("pad_token_id", 0) if pad is None else pad)
        try:
            self.forward(*self.tensors(["a probe"]))
        except (KeyError, RuntimeError) as exc:  # weights named or shaped otherwise than BERT's
            raise UnsupportedModel(f"weights do not fit BERT: {exc}") from None

    def tensors(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and attention mask, padded to the longest text."""
        return padded([self.tokenizer.encode(text).ids for text in texts], self.pad_id)

    def _norm(self, name: str, inputs: torch.Tensor) -> torch.Tensor:
        return _norm(self.weights, name, inputs, self.eps)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """(batch, tokens) ids -> the embedding layer's (batch, tokens, dimension) output."""
        w = self.weights
        positions = torch.arange(ids.shape[1])
        hidden = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][positions]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        return self._norm("embeddings.LayerNorm", hidden)

    def _weights_of_layer(self, layer: int) -> dict[str, torch.Tensor]:
        prefix = f"encoder.layer.{layer}."
        return {name.removeprefix(prefix): t for name, t in self.weights.items() if name.startswith(prefix)}

    def layer_weights(self, layer: int) -> dict[str, torch.Tensor]:
        """One transformer layer's weights, named without the `encoder.layer.N.` prefix."""
        return self._layer_weights[layer]

    @torch.inference_mode()
    def hidden_states(self, ids: torch.Tensor, mask: torch.Tensor, upto: int) -> torch.Tensor:
        """The hidden states after the first `upto` transformer layers."""
        hidden, bias = self.embed(ids), attention_bias(mask)
        for layer in range(upto):
            hidden = bert_layer(hidden, bias, self.layer_weights(layer), self.heads, self.eps)
        return hidden

    @torch.inference_mode()
    def forward_with_states(
        self, ids: torch.Tensor, mask: torch.Tensor, keep: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One pass -> (the unit vectors `forward` gives, the hidden states after layer `keep`)."""
        hidden = self.hidden_states(ids, mask, keep)
        kept, bias = hidden, attention_bias(mask)
        for layer in range(keep, self.layers):
            hidden = bert_layer(hidden, bias, self.layer_weights(layer), self.heads, self.eps)
        return F.normalize(mean_pool(hidden, mask), dim=-1), kept

    @torch.inference_mode()
    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(batch, tokens) ids and mask -> (batch, dimension) unit vectors."""
        return F.normalize(mean_pool(self.hidden_states(ids, mask, self.layers), mask), dim=-1)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Texts -> an (n, dimension) float32 matrix of unit vectors."""
        return self.forward(*self.tensors(texts)).numpy()
