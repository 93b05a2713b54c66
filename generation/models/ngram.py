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
        """P(next token | history) for each history (its last order-1 tokens count), (rows, vocab).

        Interpolation unrolled: P = (product of every length's backoff) / vocab + the sum over history
        lengths of that length's discounted counts times the backoffs of the longer lengths."""
        rows = len(histories)
        scale = [1.0] * rows  # product of the backoffs applied so far (longest history first)
        row_ids: list[int] = []
        lengths: list[int] = []
        factors: list[float] = []
        slices: list[tuple[_Table, int, int]] = []
        for row, history in enumerate(histories):
            tail = tuple(history[max(0, len(history) - self.order + 1) :])
            for length in range(len(tail), -1, -1):
                table = self._raw[length] if length == len(tail) else self._continuation[length]
                entry = table.index.get(tail[len(tail) - length :])
                if entry is None:
                    continue
                first, last = table.starts[entry], table.starts[entry + 1]
                row_ids.append(row)
                lengths.append(last - first)
                factors.append(scale[row])
                slices.append((table, first, last))
                scale[row] *= table.backoff[entry]
        probs = torch.tensor(scale).div_(self.vocab_size).unsqueeze(1).repeat(1, self.vocab_size)
        if slices:
            counts = torch.tensor(lengths)
            cols = torch.cat([table.ids[first:last] for table, first, last in slices])
            values = torch.cat([table.probs[first:last] for table, first, last in slices])
            values.mul_(torch.repeat_interleave(torch.tensor(factors), counts))
            probs.index_put_(
                (torch.repeat_interleave(torch.tensor(row_ids), counts), cols), values, accumulate=True
            )
        return probs
