"""Reference scores for the LSTM's held-out text, computed on the same split in the same run: gzip and an
interpolated Kneser-Ney character n-gram (the baselines the generators issue quotes). Unknown characters
pay the same naming cost as in generation.train.evaluate, so the figures compare with the LSTM's bpc.

    python -m benchmarks.char_references
"""

from __future__ import annotations

import gzip
import math
import sys
from collections import Counter, defaultdict

from generation.models.vocab import CharVocab
from generation.settings import GenerationSettings
from generation.train.data import load_text_corpus
from generation.train.evaluate import BitTally


def gzip_bpc(train: list[str], heldout: list[str]) -> float:
    """Extra gzip -9 bits for each file's held-out tail after its training text, per character."""
    bits = sum(
        8 * (len(gzip.compress((text + tail).encode(), 9)) - len(gzip.compress(text.encode(), 9)))
        for text, tail in zip(train, heldout, strict=True)
    )
    return bits / max(1, sum(map(len, heldout)))


class KneserNeyChars:
    """Interpolated Kneser-Ney over characters with one absolute discount: the longest history uses
    raw counts, shorter ones continuation counts, the base is uniform over the vocabulary plus UNK."""

    def __init__(self, texts: list[str], order: int = 5, discount: float = 0.75) -> None:
        self.order, self.discount = order, discount
        self.vocab = CharVocab.build(texts, min_count=1)
        raw: list[defaultdict[str, Counter[str]]] = [defaultdict(Counter) for _ in range(order)]
        for text in texts:
            for end, char in enumerate(text):
                for length in range(min(order, end + 1)):
                    raw[length][text[end - length : end]][char] += 1
        continuation: list[defaultdict[str, Counter[str]]] = [defaultdict(Counter) for _ in range(order)]
        for length in range(1, order):
            for history, following in raw[length].items():
                for char in following:
                    continuation[length - 1][history[1:]][char] += 1
        # Per history length: the table for a history of exactly that length at the top (raw counts),
        # and the one used when it is a lower order (continuation counts); each with its totals.
        self.raw = [self._with_totals(table) for table in raw]
        self.continuation = [self._with_totals(table) for table in continuation]

    @staticmethod
    def _with_totals(table: dict[str, Counter[str]]) -> dict[str, tuple[Counter[str], int, int]]:
        return {history: (counts, sum(counts.values()), len(counts)) for history, counts in table.items()}

    def probability(self, history: str, char: str) -> float:
        """P(char | history); `char` outside the vocabulary gets the UNK share of the base."""
        history = history[len(history) - min(len(history), self.order - 1) :]
        probability = 1.0 / len(self.vocab)  # the vocabulary has an UNK slot
        for length in range(len(history) + 1):
            tables = self.raw if length == len(history) else self.continuation
            entry = tables[length].get(history[len(history) - length :])
            if entry is None:
                continue
            counts, total, types = entry
            probability = (
                max(counts.get(char, 0) - self.discount, 0.0) + self.discount * types * probability
            ) / total
        return probability

    def scores(self, contexts: list[str], texts: list[str]) -> dict[str, float]:
        """bpc over `texts` (each after its context), tallied as generation.train.evaluate.bits_per_char."""
        tally = BitTally(self.vocab)
        for context, text in zip(contexts, texts, strict=True):
            stream = context[-(self.order - 1) :] + text
            offset = len(stream) - len(text)
            for position, char in enumerate(text, start=offset):
                history = stream[:position][-(self.order - 1) :]
                tally.add(char, -math.log2(self.probability(history, char)))
        return tally.summary()


def kneser_ney_scores(corpus_dir) -> dict[str, float]:
    """The Kneser-Ney 5-gram's scores on the corpus's held-out split."""
    corpus = load_text_corpus(corpus_dir)
    return KneserNeyChars(corpus.train).scores(corpus.train, corpus.heldout)


def reference_line(corpus_dir, kneser_ney: dict[str, float] | None = None) -> str:
    """One line with both references on the corpus's held-out split."""
    corpus = load_text_corpus(corpus_dir)
    kneser_ney = kneser_ney or kneser_ney_scores(corpus_dir)
    return (
        f"  references on the same split: gzip -9 {gzip_bpc(corpus.train, corpus.heldout):.3f} bpc; "
        f"Kneser-Ney 5-gram {kneser_ney['bpc']:.3f} bpc (CJK {kneser_ney['bpc_cjk']:.2f}, "
        f"other {kneser_ney['bpc_other']:.2f})"
    )


def main() -> int:
    print(reference_line(GenerationSettings.load().text_corpus_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
