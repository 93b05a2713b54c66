"""The query encoder's serving path: micro-batching, the traced model, and the async ask."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from knowledge import encoder as encoder_module
from knowledge.encoder import Encoder, QueryBatcher
from knowledge.index import LexicalIndex


def _vectors(texts: list[str]) -> np.ndarray:
    """A stand-in forward pass: row i encodes the length of text i."""
    return np.array([[float(len(text)), 1.0] for text in texts], dtype=np.float32)


class HeldBatches:
    """An encode_batch that blocks its first call until released, so later queries pile up."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.sizes: list[int] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.sizes.append(len(texts))
        self.started.set()
        self.release.wait(10)
        return _vectors(texts)


def test_concurrent_threads_share_batches_and_get_their_own_vectors():
    held = HeldBatches()
    batcher = QueryBatcher(held)
    texts = ["a" * n for n in range(1, 13)]
    with ThreadPoolExecutor(len(texts)) as pool:
        first = pool.submit(batcher.encode, texts[0])
        assert held.started.wait(10)
        rest = [pool.submit(batcher.encode, text) for text in texts[1:]]
        while len(batcher._waiting) < len(rest):  # all queued behind the running batch
            threading.Event().wait(0.01)
        held.release.set()
        results = [first.result(10)] + [future.result(10) for future in rest]
    assert [int(vector[0]) for vector in results] == [len(text) for text in texts]
    assert held.sizes == [1, len(texts) - 1]
    assert (batcher.batches, batcher.queries) == (2, len(texts))


def test_max_batch_splits_a_long_queue():
    held = HeldBatches()
    batcher = QueryBatcher(held, max_batch=4)
    with ThreadPoolExecutor(11) as pool:
        first = pool.submit(batcher.encode, "x")
        assert held.started.wait(10)
        rest = [pool.submit(batcher.encode, "y" * n) for n in range(1, 11)]
        while len(batcher._waiting) < len(rest):
            threading.Event().wait(0.01)
        held.release.set()
        assert [int(f.result(10)[0]) for f in rest] == list(range(1, 11))
        first.result(10)
    assert held.sizes == [1, 4, 4, 2]


def test_many_texts_fill_whole_batches_in_their_order():
    batches: list[list[str]] = []

    def recording(texts: list[str]) -> np.ndarray:
        batches.append(list(texts))
        return _vectors(texts)

    batcher = QueryBatcher(recording, max_batch=4)
    texts = ["b" * n for n in range(1, 11)]
    vectors = batcher.encode_many(texts)
    assert [int(vector[0]) for vector in vectors] == list(range(1, 11))
    assert batches == [texts[0:4], texts[4:8], texts[8:10]]
    assert batcher.encode_many([]) == []


def test_a_failing_batch_raises_in_every_asker_and_the_batcher_recovers():
    calls = []

    def flaky(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        if len(calls) == 1:
            raise RuntimeError("forward pass failed")
        return _vectors(texts)

    batcher = QueryBatcher(flaky)
    with pytest.raises(RuntimeError, match="forward pass failed"):
        batcher.encode("first")
    assert int(batcher.encode("second")[0]) == len("second")


async def test_coroutines_are_batched_and_woken_with_their_vectors():
    held = HeldBatches()
    batcher = QueryBatcher(held)
    first = asyncio.ensure_future(batcher.encode_async("q"))
    assert await asyncio.to_thread(held.started.wait, 10)
    texts = [f"question number {n}" for n in range(8)]
    rest = [asyncio.ensure_future(batcher.encode_async(text)) for text in texts]
    await asyncio.sleep(0)  # let them queue
    cancelled = asyncio.ensure_future(batcher.encode_async("given up"))
    await asyncio.sleep(0)
    cancelled.cancel()
    held.release.set()
    results = await asyncio.wait_for(asyncio.gather(first, *rest), 10)
    assert [int(vector[0]) for vector in results[1:]] == [len(text) for text in texts]
    assert held.sizes[0] == 1 and held.sizes[1] == len(texts) + 1  # one batch for the queued ones
    assert cancelled.cancelled()


def test_the_worker_thread_exits_when_idle_and_restarts():
    batcher = QueryBatcher(_vectors, idle_s=0.05)
    batcher.encode("one")
    worker = batcher._worker
    assert worker is not None
    worker.join(5)
    assert not worker.is_alive() and batcher._worker is None
    assert int(batcher.encode("three")[0]) == 5


def test_vectorised_bm25_matches_the_definition():
    texts = ["pricing pricing strategy", "team hiring", "pricing for startups and team", "融资 策略"]
    index = LexicalIndex.build(texts)
    weighted = {"pric": 1.0, "team": 0.6, "融资": 0.8, "unknown": 1.0}
    expected = np.zeros(len(texts), dtype=np.float64)
    for term, weight in weighted.items():
        n = index.terms.get(term)
        if n is None:
            continue
        start, end = index.offsets[n], index.offsets[n + 1]
        for unit, tf_part in zip(index.unit_ids[start:end], index.weights[start:end], strict=True):
            expected[unit] += weight * index.idf[n] * tf_part
    assert np.allclose(index.score(weighted, len(texts)), expected, atol=1e-6)
    assert index.score({"unknown": 1.0}, len(texts)).tolist() == [0.0] * len(texts)
    assert set(index.terms) >= {"pric", "team", "融资"}


QUESTIONS = [
    "How long does it take to train a large AI model?",
    "ReLU激活函数是什么",
    "VAE",
    "How should I choose the right large model algorithm for my business? " * 20,  # over 128 tokens
]


def _check_queries(encoder: Encoder, reference: np.ndarray, closeness: float) -> None:
    """Alone and batched with concurrent askers, the same unit vectors as `reference`."""
    alone = np.stack([encoder.encode_query(q) for q in QUESTIONS])
    with ThreadPoolExecutor(len(QUESTIONS)) as pool:  # padded together in one batch, or a few
        together = np.stack(list(pool.map(encoder.encode_query, QUESTIONS)))
    for vectors in (alone, together):
        assert vectors.dtype == np.float32 and vectors.shape == reference.shape
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
        assert (vectors * reference).sum(axis=1).min() > closeness


def test_packaged_bert_queries_are_what_sentence_transformers_computes(real_kb):
    encoder = real_kb._get_encoder()
    assert encoder.query_path == "bert-float32"
    reference = encoder._model.encode(QUESTIONS, normalize_embeddings=True, convert_to_numpy=True)
    _check_queries(encoder, reference, 0.99999)


def test_whole_words_are_the_vocabulary_s_real_words(real_kb):
    words = real_kb.retriever().encoder.whole_words()
    assert {"weather", "valuation", "angel", "model"} <= words
    assert not {"modle", "deply"} & words
    assert all(word.isalpha() and word == word.lower() for word in words)


def test_other_models_get_the_traced_query_encoder(real_kb, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(encoder_module, "_plain_bert", lambda folder, max_tokens: None)
    encoder = Encoder(real_kb.embedding_model)
    reference = encoder._model.encode(QUESTIONS, normalize_embeddings=True, convert_to_numpy=True)
    # bfloat16 on CPUs that have it: the same direction to three decimals.
    _check_queries(encoder, reference, 0.999)
    assert encoder.query_path.startswith(("torchscript", "sentence-transformers"))


def test_serving_questions_never_imports_transformers(real_kb):
    """Most of a cold start was importing transformers and sentence-transformers: a bot that only
    answers questions from a built index needs neither."""
    script = (
        "import sys\n"
        "from knowledge.encoder import Encoder\n"
        f"encoder = Encoder({real_kb.embedding_model!r})\n"
        "assert encoder.encode_query('How do I raise money?').shape == (encoder.dimension,)\n"
        "print(sorted({'transformers', 'sentence_transformers'} & set(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


async def test_ask_async_gives_the_same_answers_as_ask(real_kb):
    answers = await asyncio.gather(*(real_kb.ask_async(q) for q in QUESTIONS[:3]))
    for question, answer in zip(QUESTIONS[:3], answers, strict=True):
        expected = real_kb.ask(question)
        assert answer.answered == expected.answered
        assert [s.section for s in answer.sources] == [s.section for s in expected.sources]
        assert answer.text == expected.text
    with pytest.raises(ValueError):
        await real_kb.ask_async("   ")
