"""Interpolated Kneser-Ney over token ids, built from a token stream, giving whole next-token
distributions for many histories at once (the word LSTM mixes it into its own)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import torch

History = tuple[int, ...]
CHAIN_CACHE = 1 << 16  # histories whose chains are remembered (generation revisits common ones)


@dataclass
class _Chain:
    """What one history's distribution sums: its sparse entries with their factors (the product of
    the longer histories' backoffs), the dense entries' factors, and the share left to the uniform."""

    entries: list[int]
    factors: list[float]
    dense: list[float]
    scale: float


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
        # (An order-1 model has no continuation counts, and an empty stream no entries at all.)
        empty = [table[()] for table in (self._raw[0], self._continuation[0]) if () in table]
        self._dense = {entry: row for row, entry in enumerate(empty)}
        self._dense_probs = torch.zeros(len(self._dense), vocab_size)
        for entry, row in self._dense.items():
            span = slice(first[entry], first[entry] + int(self._count[entry]))
            self._dense_probs[row].index_put_((self._ids[span],), self._probs[span], accumulate=True)
        self._chains: dict[History, _Chain] = {}

    def _chain(self, tail: History) -> _Chain:
        """The entries a history's distribution sums, longest history first, with their factors."""
        chain = self._chains.get(tail)
        if chain is not None:
            return chain
        chain = _Chain([], [], [0.0] * len(self._dense), 1.0)
        for length in range(len(tail), -1, -1):
            table = self._raw[length] if length == len(tail) else self._continuation[length]
            entry = table.get(tail[len(tail) - length :])
            if entry is None:
                continue
            if entry in self._dense:
                chain.dense[self._dense[entry]] = chain.scale
            else:
                chain.entries.append(entry)
                chain.factors.append(chain.scale)
            chain.scale *= self._backoff[entry]
        if len(self._chains) >= CHAIN_CACHE:
            self._chains.clear()
        self._chains[tail] = chain
        return chain

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
        rows: list[int] = []
        entries: list[int] = []
        factors: list[float] = []
        dense: list[list[float]] = []  # each row's factor for each dense entry
        scales: list[float] = []
        for row, history in enumerate(histories):
            chain = self._chain(tuple(history[max(0, len(history) - self.order + 1) :]))
            rows.extend([row] * len(chain.entries))
            entries.extend(chain.entries)
            factors.extend(chain.factors)
            dense.append(chain.dense)
            scales.append(chain.scale)
        probs.add_(torch.tensor(scales).mul_(weight / self.vocab_size).unsqueeze(1))
        probs.addmm_(torch.tensor(dense), self._dense_probs, alpha=weight)
        if entries:
            chosen = torch.tensor(entries)
            counts = self._count[chosen]
            owner = torch.repeat_interleave(counts)  # which chosen entry each gathered position serves
            starts = self._first[chosen] - (counts.cumsum(0) - counts)
            positions = starts[owner] + torch.arange(len(owner))
            values = self._probs[positions].mul_(torch.tensor(factors).mul_(weight)[owner])
            probs.index_put_((torch.tensor(rows)[owner], self._ids[positions]), values, accumulate=True)
        return probs
