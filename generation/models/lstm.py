"""Character-level LSTM language model."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

LstmState = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class LstmConfig:
    """Network shape; stored in checkpoint metadata so the loader rebuilds the same network."""

    vocab_size: int
    embed_dim: int = 128
    hidden_size: int = 512
    layers: int = 2
    dropout: float = 0.3
    # Output layer = the input embedding (after a projection to its width): rare characters, most
    # of them Chinese, learn from both roles instead of one (Press & Wolf, 2017).
    tie_embeddings: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


class CharLSTM(nn.Module):
    """ids (batch, time) -> next-character logits (batch, time, vocab) and the recurrent state."""

    def __init__(self, config: LstmConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim)
        self.rnn = nn.LSTM(
            config.embed_dim,
            config.hidden_size,
            num_layers=config.layers,
            dropout=config.dropout if config.layers > 1 else 0.0,
            batch_first=True,
        )
        self.drop = nn.Dropout(config.dropout)
        if config.tie_embeddings:
            self.project = nn.Linear(config.hidden_size, config.embed_dim)
            self.output_bias = nn.Parameter(torch.zeros(config.vocab_size))
        else:
            self.head = nn.Linear(config.hidden_size, config.vocab_size)

    def logits(self, output: torch.Tensor) -> torch.Tensor:
        """Next-character logits from the top LSTM layer's output (..., hidden)."""
        if self.config.tie_embeddings:
            return F.linear(self.project(output), self.embed.weight, self.output_bias)
        return self.head(output)

    def forward(self, ids: torch.Tensor, state: LstmState | None = None) -> tuple[torch.Tensor, LstmState]:
        output, state = self.rnn(self.drop(self.embed(ids)), state)
        return self.logits(self.drop(output)), state
