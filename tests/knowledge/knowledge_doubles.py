"""Test doubles for the knowledge tests: a fast fake encoder and structure-only pairing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

PACKAGED_CORPUS = Path(__file__).resolve().parents[2] / "knowledge" / "corpus"
# A bilingual article (001) and a Chinese-only one with an unclosed fence (004): small enough to
# build in seconds, rich enough for zh/en pairing, cross-lingual questions and FAQ entries.
SUBSET = ("001_7c98db10fd0b30bb.txt", "004_a16efce577a10b53.txt")


class FakeEncoder:
    """Deterministic bag-of-words vectors: no model download, no torch, milliseconds per call."""

    def __init__(self, model_name: str = "fake", dimension: int = 32) -> None:
        self.name = model_name
        self.dimension = dimension
        self.bert = None  # no plain BERT: the knowledge base then routes nothing (no intent classifier)

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dimension, dtype=np.float32)
        for token in text.lower().split():
            vector[int(hashlib.md5(token.encode()).hexdigest(), 16) % self.dimension] += 1.0
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else vector

    def encode_query(self, text: str) -> np.ndarray:
        return self._vector(text)

    def encode_queries(self, texts: list[str]) -> list[np.ndarray]:
        return [self._vector(text) for text in texts]

    def whole_words(self) -> frozenset[str]:
        return frozenset()  # no vocabulary: every word the corpus lacks is open to repair

    def encode_document(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        return (
            np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dimension), np.float32)
        )


def no_similarity(zh: list[str], en: list[str]) -> np.ndarray:
    """Pairing by structure only (section numbers and order), without the multilingual encoder."""
    return np.zeros((len(zh), len(en)), dtype=np.float32)


def one_article_corpus(root: Path, article: str) -> Path:
    """A corpus folder under `root` holding one Markdown article, `guide.md`."""
    folder = root / "corpus"
    folder.mkdir()
    (folder / "guide.md").write_text(article, encoding="utf-8")
    return folder
