"""Character-level LSTM language model."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
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
        self.head = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, ids: torch.Tensor, state: LstmState | None = None) -> tuple[torch.Tensor, LstmState]:
        output, state = self.rnn(self.drop(self.embed(ids)), state)
        return self.head(self.drop(output)), state
