"""Interpolated Kneser-Ney over token ids, built from a token stream, giving whole next-token
distributions for many histories at once (the word LSTM mixes it into its own)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import torch

History = tuple[int, ...]


class TokenNgram:
    """Kneser-Ney with one absolute discount: the longest history uses raw counts, shorter ones
    continuation counts, the base is uniform over the vocabulary.

    Every history of every length is an entry of one flat store: entry e owns the continuations
    `ids[first[e]:first[e] + count[e]]` with their discounted probabilities, and leaves the share
    `backoff[e]` to the next shorter history. One store lets a batch of histories gather all their
    continuations in a few tensor operations."""

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
        ids: list[int] = []
        probs: list[float] = []
        first: list[int] = []
        backoff: list[float] = []

        def store(table: dict[History, Counter[int]]) -> dict[History, int]:
            index = {}
            for history, counts in table.items():
                total = sum(counts.values())
                index[history] = len(backoff)
                first.append(len(ids))
                ids.extend(counts)
                probs.extend(max(count - discount, 0.0) / total for count in counts.values())
                backoff.append(discount * len(counts) / total)
            return index

        self._raw = [store(table) for table in raw]
        self._continuation = [store(table) for table in continuation]
        self._ids = torch.tensor(ids, dtype=torch.long)
        self._probs = torch.tensor(probs, dtype=torch.float32)
        self._first = torch.tensor(first, dtype=torch.long)
        self._count = torch.diff(self._first, append=torch.tensor([len(ids)]))
        self._backoff = backoff
        # The empty history's entries (raw and continuation) hold most of the vocabulary and serve
        # every row: they are added as dense rows, one matrix product for the batch.
        self._dense = {entry: row for row, entry in enumerate({self._raw[0][()], self._continuation[0][()]})}
        self._dense_probs = torch.zeros(len(self._dense), vocab_size)
        for entry, row in self._dense.items():
            span = slice(first[entry], first[entry] + int(self._count[entry]))
            self._dense_probs[row].index_put_((self._ids[span],), self._probs[span], accumulate=True)

    def distributions(self, histories: Sequence[Sequence[int]]) -> torch.Tensor:
        """P(next token | history) for each history (its last order-1 tokens count), (rows, vocab)."""
        probs = torch.zeros(len(histories), self.vocab_size)
        return self.add_to(probs, histories)

    def add_to(
        self, probs: torch.Tensor, histories: Sequence[Sequence[int]], weight: float = 1.0
    ) -> torch.Tensor:
        """Add `weight` times each history's distribution to its row of `probs` (rows, vocab), in place.

        Interpolation unrolled: P = (product of every length's backoff) / vocab + the sum over history
        lengths of that length's discounted counts times the backoffs of the longer lengths."""
        scale = [1.0] * len(histories)  # product of the backoffs applied so far (longest history first)
        rows: list[int] = []
        entries: list[int] = []
        factors: list[float] = []
        dense: list[tuple[int, int, float]] = []  # (row, dense row, factor)
        for row, history in enumerate(histories):
            tail = tuple(history[max(0, len(history) - self.order + 1) :])
            for length in range(len(tail), -1, -1):
                table = self._raw[length] if length == len(tail) else self._continuation[length]
                entry = table.get(tail[len(tail) - length :])
                if entry is None:
                    continue
                if entry in self._dense:
                    dense.append((row, self._dense[entry], scale[row]))
                else:
                    rows.append(row)
                    entries.append(entry)
                    factors.append(scale[row])
                scale[row] *= self._backoff[entry]
        probs.add_(torch.tensor(scale).mul_(weight / self.vocab_size).unsqueeze(1))
        if dense:
            weights = torch.zeros(len(histories), len(self._dense))
            row_ids, dense_ids, dense_factors = zip(*dense, strict=True)
            weights[row_ids, dense_ids] = torch.tensor(dense_factors).mul_(weight)
            probs.addmm_(weights, self._dense_probs)
        if entries:
            chosen = torch.tensor(entries)
            counts = self._count[chosen]
            owner = torch.repeat_interleave(counts)  # which chosen entry each gathered position serves
            starts = self._first[chosen] - (counts.cumsum(0) - counts)
            positions = starts[owner] + torch.arange(len(owner))
            values = self._probs[positions].mul_(torch.tensor(factors).mul_(weight)[owner])
            probs.index_put_((torch.tensor(rows)[owner], self._ids[positions]), values, accumulate=True)
        return probs
