"""The word-level language model: a subword LSTM whose next-token distribution is mixed with a
neural cache over its recent hidden states (Grave et al., 2017) and a Kneser-Ney n-gram over the
training text's tokens. The mixture is the model: scoring and generation both use it.

The n-gram is rebuilt at load time from the training token stream, which the checkpoint keeps as a
buffer (`memory`) beside the network's weights.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

from generation.models.lstm import CharLSTM, LstmConfig, LstmState
from generation.models.ngram import TokenNgram


@dataclass(frozen=True)
class WordLmConfig(LstmConfig):
    """The network's shape (LstmConfig's fields) and the mixture's settings; stored flat in checkpoint
    metadata."""

    memory_tokens: int = 0  # length of the training token stream the n-gram is built from
    cache_size: int = 1000  # recent positions the cache looks back over
    cache_theta: float = 1.0  # sharpness of the cache's hidden-state match
    cache_weight: float = 0.15  # the cache's share of the mixture (0: no cache)
    ngram_order: int = 5
    ngram_discount: float = 0.75
    ngram_weight: float = 0.4  # the n-gram's share of the mixture (0: no n-gram)

    def network(self) -> LstmConfig:
        """The LSTM's own config (the fields LstmConfig has)."""
        return LstmConfig(**{field.name: getattr(self, field.name) for field in fields(LstmConfig)})


class WordLM(nn.Module):
    """ids (batch, time) -> the LSTM's logits; `mix` turns them into the model's probabilities."""

    def __init__(
        self, config: WordLmConfig, network: CharLSTM | None = None, memory: torch.Tensor | None = None
    ) -> None:
        super().__init__()
        if not 0 <= config.cache_weight < 1 or not 0 <= config.ngram_weight < 1:
            raise ValueError("mixture weights must lie in [0, 1)")
        self.config = config
        self.network = network if network is not None else CharLSTM(config.network())
        if memory is None:
            memory = torch.zeros(config.memory_tokens, dtype=torch.int32)
        if memory.numel() != config.memory_tokens:
            raise ValueError(f"memory has {memory.numel()} tokens, config says {config.memory_tokens}")
        self.register_buffer("memory", memory.to(torch.int32).flatten())
        self._ngram: TokenNgram | None = None

    def forward(self, ids: torch.Tensor, state: LstmState | None = None) -> tuple[torch.Tensor, LstmState]:
        return self.network(ids, state)

    def ngram(self) -> TokenNgram | None:
        """The n-gram over the training tokens (built on first use), or None when it has no weight."""
        if self.config.ngram_weight <= 0 or self.config.memory_tokens == 0:
            return None
        if self._ngram is None:
            self._ngram = TokenNgram(
                self.memory.tolist(),
                self.config.vocab_size,
                self.config.ngram_order,
                self.config.ngram_discount,
            )
        return self._ngram

    def cache_distribution(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        targets: torch.Tensor,
        valid: torch.Tensor,
        into: torch.Tensor | None = None,
        weight: float = 1.0,
    ) -> torch.Tensor:
        """The cache's next-token distribution for each row: softmax(theta * query . key) over the
        row's valid stored hidden states, each voting for the token that followed it. query (rows,
        hidden); keys (rows, slots, hidden) or (slots, hidden) shared by all rows; targets the ids that
        followed, (rows, slots) or (slots,); valid (rows, slots) bool. A row with nothing valid gets 0.

        With `into` (rows, vocab), mixes instead, in place: into * (1 - weight) + weight * the cache's
        distribution, on the rows that have anything cached (the others are left as they are)."""
        if keys.dim() == 2:
            scores = query @ keys.T
            targets = targets.expand(query.shape[0], -1)
        else:
            scores = torch.bmm(keys, query.unsqueeze(2)).squeeze(2)
        scores = (scores * self.config.cache_theta).masked_fill_(~valid, float("-inf"))
        weights = torch.softmax(scores, dim=1).nan_to_num_(0.0)
        if into is None:
            return torch.zeros(query.shape[0], self.config.vocab_size).scatter_add_(1, targets, weights)
        kept = 1.0 - weight * valid.any(dim=1, keepdim=True).float()
        return into.mul_(kept).scatter_add_(1, targets, weights.mul_(weight))

    def mix(
        self,
        logits: torch.Tensor,
        histories: list[list[int]] | None = None,
        cache: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """The model's next-token probabilities (rows, vocab), float32: the LSTM's softmax, mixed with
        the n-gram's for each row's token history, then with the cache's distribution where a row has
        anything cached. `cache` is (query, keys, targets, valid) as cache_distribution takes them."""
        probs = torch.softmax(logits.float(), dim=-1)
        ngram = self.ngram()
        if ngram is not None and histories is not None:
            weight = self.config.ngram_weight
            probs = ngram.add_to(probs.mul_(1 - weight), histories, weight)
        if cache is not None and self.config.cache_weight > 0:
            probs = self.cache_distribution(*cache, into=probs, weight=self.config.cache_weight)
        return probs
