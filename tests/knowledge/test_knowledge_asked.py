"""Expected questions: read per article, tied to the answering passage, stored, and scored per group."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from knowledge_doubles import PACKAGED_CORPUS, FakeEncoder, no_similarity, one_article_corpus

from knowledge.asked import (
    answering_units,
    labelled_as_expected,
    questions_digest,
    read_expected_questions,
)
from knowledge.build import build_index
from knowledge.evaluate import Question, labelled_questions
from knowledge.index import corpus_fingerprint, load, make_units, save
from knowledge.ingest import ingest_folder
from knowledge.retrieve import Retriever
from knowledge.settings import PACKAGED_QUESTIONS

ARTICLE = (
    "# Pricing Guide\n\n## 1. Pricing\n\nCharge per **seat** and review prices   every quarter.\n\n"
    "## 2. Hiring\n\nHire engineers who have shipped machine learning products before.\n\n"
    "## 3. Culture\n\nWrite things down so that remote teammates can follow decisions.\n"
)


def _rows(*rows: dict) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return one_article_corpus(tmp_path, ARTICLE)


@pytest.fixture
def questions(tmp_path: Path) -> Path:
    folder = tmp_path / "questions"
    folder.mkdir()
    (folder / "guide.jsonl").write_text(
        _rows(
            # quoted with the emphasis and spacing the cleaned text may lose
            {
                "heading": "1. Pricing",
                "question": "how often  should we   reprice?",
                "quote": "seat and review prices every quarter",
            },
            {
                "heading": "2. Hiring",
                "question": "who should my first engineers be",
                "quote": "not in the article",
            },
            {"heading": "9. Nowhere", "question": "a question with no home", "quote": "no such text"},
        )
        + "not json\n"
        + _rows({"heading": "3. Culture"}),  # no question
        encoding="utf-8",
    )
    (folder / "other.jsonl").write_text(
        _rows({"heading": "1. Pricing", "question": "for another article", "quote": "Charge per"}),
        encoding="utf-8",
    )
    return folder


def test_read_keeps_the_corpus_articles_and_skips_bad_lines(questions: Path, caplog):
    with caplog.at_level(logging.WARNING, logger="knowledge.asked"):
        found = read_expected_questions(questions, ["guide"])
    assert [q.question for q in found] == [
        "how often should we reprice?",
        "who should my first engineers be",
        "a question with no home",
    ]
    assert {q.doc for q in found} == {"guide"}
    assert sum("not an expected-question line" in r.message for r in caplog.records) == 2
    assert read_expected_questions(None, ["guide"]) == []
    assert read_expected_questions(questions / "missing", ["guide"]) == []


def test_questions_are_tied_by_quote_then_heading(corpus: Path, questions: Path, caplog):
    ingested = ingest_folder(corpus)
    units = make_units(ingested.sections)
    with caplog.at_level(logging.WARNING, logger="knowledge.asked"):
        texts, tied = answering_units(read_expected_questions(questions, ["guide"]), ingested.sections, units)
    headings = [ingested.sections[units[n].section].path[-1] for n in tied]
    assert texts == ["how often should we reprice?", "who should my first engineers be"]
    assert headings == ["1. Pricing", "2. Hiring"]
    assert tied == sorted(tied)
    assert any("1 expected questions fit no passage" in r.message for r in caplog.records)


def test_index_stores_the_questions_and_the_fingerprint_follows_them(
    corpus: Path, questions: Path, tmp_path: Path
):
    index, _ = build_index(corpus, FakeEncoder(), "fp1", similarity=no_similarity, questions=questions)
    assert len(index.asked) == len(index.multi_asked) == len(index.asked_units) == 2
    assert index.manifest["expected_questions"] == 2
    save(index, tmp_path / "index")
    loaded = load(tmp_path / "index", expected_fingerprint="fp1")
    assert np.array_equal(loaded.asked, index.asked)
    assert np.array_equal(loaded.asked_units, index.asked_units)

    before = corpus_fingerprint(corpus, "enc", questions)
    assert corpus_fingerprint(corpus, "enc") != before
    (questions / "guide.jsonl").write_text(_rows({"heading": "2. Hiring", "question": "q", "quote": "Hire"}))
    assert corpus_fingerprint(corpus, "enc", questions) != before


LABELLED = (
    Question("1", "how do   we price per seat?", ("review prices every quarter",), "en", "tune", "guide"),
    Question("2", "what about hiring", ("Hire engineers",), "zh", "tune", "009"),
    Question("3", "who to hire", ("Hire engineers",), "en", "tune"),  # no article named
    Question("4", "how to raise money", (), "uncovered", "tune", "guide"),  # not answered there
)


def test_labelled_questions_become_expected_questions_of_their_article():
    found = labelled_as_expected(LABELLED, ["guide", "009_3f2a"])
    assert [(q.doc, q.question, q.quote) for q in found] == [
        ("guide", "how do we price per seat?", "review prices every quarter"),
        ("009_3f2a", "what about hiring", "Hire engineers"),  # named by the stem's number
    ]
    assert labelled_as_expected(LABELLED, ["other", "0091_x"]) == []  # no article of theirs
    changed = (Question("1", "how do we price?", ("review prices every quarter",), "en", "tune", "guide"),)
    assert questions_digest(LABELLED) != questions_digest(LABELLED[1:]) != questions_digest(changed)


def test_the_index_remembers_labelled_questions_beside_the_expected_ones(corpus: Path, questions: Path):
    index, _ = build_index(
        corpus, FakeEncoder(), "fp1", similarity=no_similarity, questions=questions, labelled=LABELLED
    )
    assert index.manifest["labelled_questions"] == 1
    assert len(index.asked) == len(index.asked_units) == 3  # two expected questions and one labelled
    pricing = [n for n, u in enumerate(index.units) if index.sections[u.section].path[-1] == "1. Pricing"]
    assert np.count_nonzero(np.isin(index.asked_units, pricing)) == 2


def test_the_served_index_remembers_them_and_the_training_index_does_not(
    corpus: Path, questions: Path, tmp_path: Path, fake_encoder
):
    from knowledge.service import KnowledgeBase

    def knowledge_base(labelled) -> KnowledgeBase:
        kb = KnowledgeBase(
            corpus, tmp_path / "index", "fake-model", questions_dir=questions, labelled=labelled
        )
        kb.initialize()
        return kb

    served = knowledge_base(LABELLED)
    assert len(served.retriever().index.asked) == 3
    assert len(served.training_retriever().index.asked) == 2
    # Other labelled questions make another index, rebuilt at start.
    again = knowledge_base(LABELLED[1:])
    assert again.stats()["fingerprint"] != served.stats()["fingerprint"]
    assert len(again.retriever().index.asked) == 2


def test_the_shipped_labelled_questions_find_their_passages():
    """Every labelled question the index remembers names a packaged article and is tied to a passage;
    no locked question is among them."""
    ingested = ingest_folder(PACKAGED_CORPUS)
    units = make_units(ingested.sections)
    questions, _ = labelled_questions()
    assert all(q.split != "locked" for q in questions)
    remembered = labelled_as_expected(questions, ingested.titles)
    assert len(remembered) >= 500
    texts, _ = answering_units(remembered, ingested.sections, units)
    assert len(texts) >= 0.98 * len(remembered)


def test_an_expected_question_scores_its_whole_group(corpus: Path, questions: Path):
    index, _ = build_index(corpus, FakeEncoder(), "fp1", similarity=no_similarity, questions=questions)
    retriever = Retriever(index, FakeEncoder())
    analysis = retriever.analyse("who should my first engineers be")
    signals = retriever.signals(analysis, FakeEncoder().encode_query(analysis.corrected))
    hiring = [n for n, u in enumerate(index.units) if index.sections[u.section].path[-1] == "2. Hiring"]
    assert signals.asked.argmax() in hiring
    assert signals.asked[hiring[0]] == pytest.approx(1.0, abs=1e-5)
    culture = [n for n, u in enumerate(index.units) if index.sections[u.section].path[-1] == "3. Culture"]
    # No expected question: the section is asked through its heading, the question-like line it has.
    assert signals.asked[culture[0]] == pytest.approx(signals.heading[culture[0]])
    assert signals.multi_asked[culture[0]] == pytest.approx(signals.multi_heading[culture[0]])


def test_an_index_without_questions_still_ranks(corpus: Path):
    index, _ = build_index(corpus, FakeEncoder(), "fp1", similarity=no_similarity)
    assert index.asked.shape == (0, FakeEncoder().dimension)
    retriever = Retriever(index, FakeEncoder())
    assert retriever.search("how should we price seats", k=2).hits
    signals = retriever.signals(retriever.analyse("price"), FakeEncoder().encode_query("price"))
    np.testing.assert_allclose(signals.asked, signals.heading)


def test_every_shipped_question_finds_its_passage():
    """The packaged questions all name a corpus article and each is tied to a passage."""
    ingested = ingest_folder(PACKAGED_CORPUS)
    units = make_units(ingested.sections)
    shipped = read_expected_questions(PACKAGED_QUESTIONS, ingested.titles)
    files = sorted(p.stem for p in PACKAGED_QUESTIONS.glob("*.jsonl"))
    assert files == sorted(ingested.titles)
    texts, _ = answering_units(shipped, ingested.sections, units)
    assert len(shipped) >= 1000
    assert len(texts) >= 0.99 * len(shipped)
