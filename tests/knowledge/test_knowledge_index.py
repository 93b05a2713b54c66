"""Index persistence: round trip, fingerprints, corrupt or half-written files, atomic rebuilds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from knowledge_doubles import FakeEncoder, no_similarity, one_article_corpus

from knowledge.build import build_index
from knowledge.index import IndexError_, corpus_fingerprint, load, save
from knowledge.service import KnowledgeBase

ARTICLE = (
    "# Pricing Guide\n\n## 1. Pricing\n\nCharge per seat and review prices every quarter with customers.\n\n"
    "## 2. Hiring\n\nHire engineers who have shipped machine learning products before.\n\n"
    "## 3. FAQ\n\n### 3.1 How do I raise prices?\n\nAnnounce the change early and grandfather existing customers.\n"
)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return one_article_corpus(tmp_path, ARTICLE)


def test_save_load_round_trip(corpus: Path, tmp_path: Path):
    index, report = build_index(corpus, FakeEncoder(), "fp1", similarity=no_similarity)
    assert (report.documents, report.sections, report.faq_entries) == (1, 3, 1)
    save(index, tmp_path / "index")
    loaded = load(tmp_path / "index", expected_fingerprint="fp1")
    assert loaded.sections == index.sections
    assert loaded.units == index.units
    assert loaded.dense.ntotal == index.dense.ntotal == len(index.units)
    query = FakeEncoder().encode_query("raise prices").reshape(1, -1)
    assert np.array_equal(loaded.dense.search(query, 3)[1], index.dense.search(query, 3)[1])
    assert np.array_equal(loaded.lexical.weights, index.lexical.weights)
    assert loaded.lexical.terms == index.lexical.terms


def test_stale_fingerprint_is_refused(corpus: Path, tmp_path: Path):
    index, _ = build_index(corpus, FakeEncoder(), "fp1", similarity=no_similarity)
    save(index, tmp_path / "index")
    with pytest.raises(IndexError_, match="changed"):
        load(tmp_path / "index", expected_fingerprint="fp2")


def test_fingerprint_changes_with_corpus_and_encoder(corpus: Path):
    before = corpus_fingerprint(corpus, "encoder-a")
    assert corpus_fingerprint(corpus, "encoder-b") != before
    (corpus / "guide.md").write_text(ARTICLE + "\nOne more line.\n", encoding="utf-8")
    assert corpus_fingerprint(corpus, "encoder-a") != before
    (corpus / "guide.md").write_text(ARTICLE, encoding="utf-8")
    assert corpus_fingerprint(corpus, "encoder-a") == before
    (corpus / "new.txt").write_text("# New\n\n## A\n\nAdded later.\n", encoding="utf-8")
    assert corpus_fingerprint(corpus, "encoder-a") != before


@pytest.mark.parametrize("victim", ["dense.faiss", "units.json", "lexical.npz", "manifest.json"])
def test_corrupt_or_truncated_file_is_detected(corpus: Path, tmp_path: Path, victim: str):
    index, _ = build_index(corpus, FakeEncoder(), "fp1", similarity=no_similarity)
    folder = save(index, tmp_path / "index")
    data = (folder / victim).read_bytes()
    (folder / victim).write_bytes(data[: len(data) // 2])  # a half-written file
    with pytest.raises(IndexError_):
        load(tmp_path / "index", expected_fingerprint="fp1")


def test_missing_index_is_detected(tmp_path: Path):
    with pytest.raises(IndexError_):
        load(tmp_path / "nothing-here")


def test_knowledge_base_rebuilds_a_corrupt_index(corpus: Path, tmp_path: Path, fake_encoder):
    kb = KnowledgeBase(corpus, tmp_path / "index", "fake-model")
    kb.initialize()
    first = kb.stats()
    current = tmp_path / "index" / (tmp_path / "index" / "CURRENT").read_text().strip()
    (current / "dense.faiss").write_bytes(b"garbage")
    again = KnowledgeBase(corpus, tmp_path / "index", "fake-model")
    again.initialize()
    assert again.stats()["fingerprint"] == first["fingerprint"]
    assert again.stats()["built_at"] >= first["built_at"]
    new_current = (tmp_path / "index" / "CURRENT").read_text().strip()
    assert new_current != current.name  # a fresh version folder, the damaged one removed
    assert not current.exists()
    assert again.ask("How do I raise prices?").sources


def test_changed_corpus_triggers_rebuild(corpus: Path, tmp_path: Path, fake_encoder):
    kb = KnowledgeBase(corpus, tmp_path / "index", "fake-model")
    kb.initialize()
    before = kb.stats()
    (corpus / "extra.md").write_text(
        "# Extra\n\n## Churn\n\nCall customers who stop using the product.\n", encoding="utf-8"
    )
    kb2 = KnowledgeBase(corpus, tmp_path / "index", "fake-model")
    kb2.initialize()
    after = kb2.stats()
    assert after["fingerprint"] != before["fingerprint"]
    assert (after["documents"], before["documents"]) == (2, 1)


def test_failed_rebuild_keeps_the_old_index_serving(corpus: Path, tmp_path: Path, fake_encoder):
    kb = KnowledgeBase(corpus, tmp_path / "index", "fake-model")
    kb.initialize()
    before = kb.stats()
    saved = tmp_path / "saved.md"
    shutil.move(corpus / "guide.md", saved)  # the corpus folder is now empty
    with pytest.raises(ValueError, match="no sections"):
        kb.rebuild()
    assert kb.stats() == before
    assert kb.ask("How do I raise prices?").sources
    assert load(tmp_path / "index").fingerprint == before["fingerprint"]


def test_rebuild_picks_up_added_files(corpus: Path, tmp_path: Path, fake_encoder):
    kb = KnowledgeBase(corpus, tmp_path / "index", "fake-model")
    kb.initialize()
    (corpus / "extra.md").write_text(
        "# Extra\n\n## Churn\n\nCall customers who stop using the product.\n", encoding="utf-8"
    )
    report = kb.rebuild()
    assert report.documents == 2
    assert kb.stats()["documents"] == 2
    manifest = json.loads(
        (tmp_path / "index" / (tmp_path / "index" / "CURRENT").read_text() / "manifest.json").read_text()
    )
    assert manifest["documents"] == 2
    assert len([p for p in (tmp_path / "index").iterdir() if p.is_dir()]) == 1
