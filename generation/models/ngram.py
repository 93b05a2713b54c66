"""Interpolated Kneser-Ney over token ids, built from a token stream, giving whole next-token
distributions for many histories at once (the word LSTM mixes it into its own)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import torch

History = tuple[int, ...]


class _Table:
    """Every history of one length: its continuations' ids and discounted probabilities, stored flat
    (history h owns positions starts[h]:starts[h + 1]), and the share each leaves to the shorter history."""

    def __init__(self, table: dict[History, Counter[int]], discount: float) -> None:
        self.index: dict[History, int] = {}
        ids: list[int] = []
        probs: list[float] = []
        starts: list[int] = [0]
        backoff: list[float] = []
        for history, counts in table.items():
            total = sum(counts.values())
            self.index[history] = len(backoff)
            ids.extend(counts)
            probs.extend(max(count - discount, 0.0) / total for count in counts.values())
            starts.append(len(ids))
            backoff.append(discount * len(counts) / total)
        self.ids = torch.tensor(ids, dtype=torch.long)
        self.probs = torch.tensor(probs, dtype=torch.float32)
        self.starts = starts
        self.backoff = backoff


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
        self._raw = [_Table(table, discount) for table in raw]
        self._continuation = [_Table(table, discount) for table in continuation]

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
                table = self._raw[length] if length == len(tail) else self._continuation[length]
                entry = table.index.get(tail[len(tail) - length :])
                if entry is None:
                    continue
                first, last = table.starts[entry], table.starts[entry + 1]
                scale[row, 0] = table.backoff[entry]
                row_ids.append(torch.full((last - first,), row, dtype=torch.long))
                col_ids.append(table.ids[first:last])
                values.append(table.probs[first:last])
            probs.mul_(scale)
            if values:
                probs.index_put_((torch.cat(row_ids), torch.cat(col_ids)), torch.cat(values), accumulate=True)
        return probs
