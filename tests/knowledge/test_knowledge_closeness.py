"""A question's closeness to the corpus's sentences, read off the index's sentence vectors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from knowledge_doubles import FakeEncoder, no_similarity, one_article_corpus

from knowledge.build import build_index
from knowledge.closeness import Closeness, SentenceTable, sentence_key
from knowledge.index import KnowledgeIndex

ARTICLE = (
    "# Team\n\n## 1. Hiring\n\n"
    "Hire engineers who have shipped **machine learning** products before. "
    "Pay them in equity when cash is short.\n\n"
    "## 2. Compute\n\nRent GPUs from a cloud provider when training large models.\n"
)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeIndex:
    root = tmp_path_factory.mktemp("closeness")
    built, _ = build_index(one_article_corpus(root, ARTICLE), FakeEncoder(), "fp", similarity=no_similarity)
    return built


def unit_holding(index: KnowledgeIndex, text: str) -> int:
    return next(n for n, unit in enumerate(index.units) if text in unit.text)


def test_a_sentence_is_found_among_the_index_vectors_of_its_own_unit(index: KnowledgeIndex):
    table = SentenceTable(index)
    owners = np.asarray(index.sentence_units)
    for sentence in (
        "Pay them in equity when cash is short.",
        "Rent GPUs from a cloud provider when training large models.",
    ):
        rows = table.rows_of(sentence)
        assert rows, sentence
        assert {int(owners[row]) for row in rows} == {unit_holding(index, sentence)}


def test_a_passage_opening_sentence_is_found_without_its_headings(index: KnowledgeIndex):
    # The index reads "Team / 1. Hiring: Hire engineers ..."; an answer quotes the sentence alone,
    # without its emphasis marks.
    rows = SentenceTable(index).rows_of("Hire engineers who have shipped machine learning products before.")
    assert len(rows) == 1
    assert int(index.sentence_units[rows[0]]) == unit_holding(index, "Hire engineers")


def test_text_the_corpus_does_not_hold_has_no_rows(index: KnowledgeIndex):
    table = SentenceTable(index)
    assert table.rows_of("Bake the bread for forty minutes.") == []
    assert table.rows_of("") == []


def test_an_index_split_into_other_sentences_finds_none(index: KnowledgeIndex):
    older = replace(index, sentence_units=np.asarray(index.sentence_units)[:-1])
    assert SentenceTable(older).rows_of("Pay them in equity when cash is short.") == []


def test_closeness_is_the_best_cosine_averaged_with_minilm_for_english(index: KnowledgeIndex):
    table = SentenceTable(index)
    count = len(index.sentence_units)
    equity = table.rows_of("Pay them in equity when cash is short.")[0]
    gpus = table.rows_of("Rent GPUs from a cloud provider when training large models.")[0]
    minilm = np.zeros((count, 2), np.float32)
    multi = np.zeros((count, 2), np.float32)
    multi[equity], multi[gpus] = (0.8, 0.0), (0.2, 0.0)
    minilm[equity], minilm[gpus] = (0.0, 0.4), (0.0, 1.0)
    query, tuned = np.array([0.0, 1.0], np.float32), np.array([1.0, 0.0], np.float32)
    english = Closeness(table, minilm, multi, query, tuned, "en")
    chinese = Closeness(table, minilm, multi, query, tuned, "zh")
    both = (
        "Pay them in equity when cash is short. Rent GPUs from a cloud provider when training large models."
    )
    assert english("Pay them in equity when cash is short.") == pytest.approx(0.6)
    assert english(both) == pytest.approx(0.6)  # the better of (0.8 + 0.4) / 2 and (0.2 + 1.0) / 2
    assert chinese(both) == pytest.approx(0.8)  # MiniLM reads English only
    assert english("Bake the bread for forty minutes.") is None


def test_sentence_keys_ignore_markup_case_and_spacing():
    assert sentence_key("**Hire** engineers, who ship!") == sentence_key("hire engineers who ship")
    assert sentence_key("大模型 的 优势：") == sentence_key("大模型的优势")
    assert sentence_key("x" * 200) == "x" * 60
