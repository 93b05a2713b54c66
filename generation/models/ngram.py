"""Interpolated Kneser-Ney over token ids, built from a token stream, giving whole next-token
distributions for many histories at once (the word LSTM mixes it into its own)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import torch

History = tuple[int, ...]


class _Entry:
    """One history's continuations: their ids, discounted probabilities, and the share left over
    for the shorter history."""

    __slots__ = ("backoff", "ids", "probs")

    def __init__(self, counts: Counter[int], discount: float) -> None:
        total = sum(counts.values())
        self.ids = torch.tensor(list(counts), dtype=torch.long)
        self.probs = torch.tensor(
            [max(count - discount, 0.0) / total for count in counts.values()], dtype=torch.float32
        )
        self.backoff = discount * len(counts) / total


class TokenNgram:
    """Kneser-Ney with one absolute discount: the longest history uses raw counts, shorter ones
    continuation counts, the base is uniform over the vocabulary."""

    def __init__(
        self, stream: Sequence[int], vocab_size: int, order: int = 4, discount: float = 0.75
    ) -> None:
        if order < 1:
            raise ValueError("an n-gram has order 1 or more")
        self.order, self.vocab_size = order, vocab_size
        raw: list[defaultdict[History, Counter[int]]] = [defaultdict(Counter) for _ in range(order)]
        tokens = list(stream)
        for end, token in enumerate(tokens):
            for length in range(min(order, end + 1)):
                raw[length][tuple(tokens[end - length : end])][token] += 1
        continuation: list[defaultdict[History, Counter[int]]] = [defaultdict(Counter) for _ in range(order)]
        for length in range(1, order):
            for history, following in raw[length].items():
                for token in following:
                    continuation[length - 1][history[1:]][token] += 1
        self._raw = [{h: _Entry(c, discount) for h, c in table.items()} for table in raw]
        self._continuation = [{h: _Entry(c, discount) for h, c in table.items()} for table in continuation]

    def distributions(self, histories: Sequence[Sequence[int]]) -> torch.Tensor:
        """P(next token | history) for each history (its last order-1 tokens count), (rows, vocab)."""
        rows = len(histories)
        probs = torch.full((rows, self.vocab_size), 1.0 / self.vocab_size)
        tails = [tuple(history[max(0, len(history) - self.order + 1) :]) for history in histories]
        for length in range(self.order):
            scale = torch.ones(rows, 1)
            row_ids, col_ids, values = [], [], []
            for row, tail in enumerate(tails):
                if length > len(tail):
                    continue
                tables = self._raw if length == len(tail) else self._continuation
                entry = tables[length].get(tail[len(tail) - length :])
                if entry is None:
                    continue
                scale[row, 0] = entry.backoff
                row_ids.append(torch.full_like(entry.ids, row))
                col_ids.append(entry.ids)
                values.append(entry.probs)
            probs.mul_(scale)
            if values:
                probs.index_put_((torch.cat(row_ids), torch.cat(col_ids)), torch.cat(values), accumulate=True)
        return probs
