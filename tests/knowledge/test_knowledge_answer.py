"""Answer composition: passage support declines uncovered questions; quotes prefer the asker's language."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from knowledge_doubles import FakeEncoder, no_similarity

from knowledge.answer import DECLINE_BELOW, OTHER_LANGUAGE_NOTE, compose, confidence_of
from knowledge.build import build_index
from knowledge.retrieve import Hit, Retriever

ENGLISH_ONLY = (
    "# Team and Compute\n\n## 1. Hiring\n\nHire engineers who have shipped machine learning products before.\n\n"
    "## 2. Compute\n\nRent GPUs from a cloud provider when training large models.\n\n"
    "## 3. Encryption\n\nEncrypt user data at rest and in transit.\n"
)
CHINESE_ONLY = (
    "# 融资指南\n\n## 1. 融资\n\n创业公司应在产品验证之后再向天使投资人融资，并准备清晰的商业模式。\n\n"
    "## 2. 数据隐私\n\n对用户数据进行加密，并遵守数据隐私相关的法律法规。\n"
)


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory) -> Retriever:
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "team.md").write_text(ENGLISH_ONLY, encoding="utf-8")
    (folder / "funding.md").write_text(CHINESE_ONLY, encoding="utf-8")
    index, _ = build_index(folder, FakeEncoder(), "fp", similarity=no_similarity)
    return Retriever(index, FakeEncoder())


def unit_of(retriever: Retriever, heading: str) -> int:
    """The first unit of the section whose heading ends with `heading`."""
    for n, unit in enumerate(retriever.index.units):
        if retriever.index.sections[unit.section].heading.endswith(heading):
            return n
    raise AssertionError(f"no section {heading!r}")


def hit(retriever: Retriever, heading: str, question: str, score: float = 1.0) -> Hit:
    """A confident retrieval hit on a section (high dense similarity), with its real support."""
    unit = unit_of(retriever, heading)
    group = retriever.index.units[unit].group
    analysis = retriever.analyse(question)
    return Hit(unit, group, score, dense=0.9, lexical=5.0, support=retriever.support(analysis, group))


def test_key_terms_leave_out_question_filler(retriever: Retriever):
    terms = [key.text for key in retriever.key_terms("How do I make sure my data is good enough?")]
    assert terms == ["data"]
    chinese = [key.text for key in retriever.key_terms("人才不够怎么办")]
    assert chinese == ["人", "才"]


def test_support_counts_key_terms_a_passage_holds(retriever: Retriever):
    question = "Which engineers should I hire?"
    analysis = retriever.analyse(question)
    hiring = retriever.index.units[unit_of(retriever, "Hiring")].group
    compute = retriever.index.units[unit_of(retriever, "Compute")].group
    assert retriever.support(analysis, hiring) == pytest.approx(1.0)
    assert retriever.support(analysis, compute) == pytest.approx(0.0)


def test_support_crosses_languages_through_the_glossary(retriever: Retriever):
    analysis = retriever.analyse("How do startups get funding?")
    funding = retriever.index.units[unit_of(retriever, "融资")].group
    privacy = retriever.index.units[unit_of(retriever, "数据隐私")].group
    assert retriever.support(analysis, funding) == pytest.approx(1.0)  # startup -> 创业, funding -> 融资
    assert retriever.support(analysis, privacy) < 0.5


def test_uncovered_question_is_declined_even_when_retrieval_is_confident(retriever: Retriever):
    question = "How should I price and sell my machine learning product?"
    hits = [hit(retriever, "Hiring", question)]
    analysis = retriever.analyse(question)
    assert confidence_of(hits, analysis) >= DECLINE_BELOW  # dense similarity alone would answer
    answer = compose(question, hits, analysis, retriever.index)
    assert not answer.answered
    assert answer.confidence < DECLINE_BELOW
    assert answer.text.startswith("Sorry")


def test_covered_question_on_the_same_passage_is_answered(retriever: Retriever):
    question = "Which engineers should I hire for a machine learning product?"
    answer = compose(
        question, [hit(retriever, "Hiring", question)], retriever.analyse(question), retriever.index
    )
    assert answer.answered and answer.confidence >= DECLINE_BELOW
    assert answer.text.startswith("Hire engineers")


def test_a_close_enough_passage_in_the_askers_language_is_quoted_first(retriever: Retriever):
    question = "How do startups get funding?"
    chinese = hit(retriever, "融资", question, score=1.0)
    english = replace(hit(retriever, "Hiring", question, score=0.95), support=1.0)
    answer = compose(question, [chinese, english], retriever.analyse(question), retriever.index)
    assert answer.answered
    assert answer.sources[0].lang == "en" and answer.sources[1].lang == "zh"  # the quote is cited first
    assert answer.text.startswith("Hire engineers")


def test_english_question_answered_only_in_chinese_says_so(retriever: Retriever):
    question = "How do startups get funding?"
    chinese = hit(retriever, "融资", question, score=1.0)
    english = replace(hit(retriever, "Hiring", question, score=0.5), support=1.0)  # far behind
    answer = compose(question, [chinese, english], retriever.analyse(question), retriever.index)
    assert answer.answered and answer.sources[0].lang == "zh"
    note, quote = answer.text.split("\n", 1)
    assert note == OTHER_LANGUAGE_NOTE["en"] == "Only the Chinese text covers this:"
    assert "天使投资人" in quote


def test_chinese_question_answered_only_in_english_says_so(retriever: Retriever):
    question = "如何对用户数据加密？"
    english = hit(retriever, "Encryption", question)
    assert english.support == pytest.approx(1.0)  # 用户 -> user, 数据 -> data, 加密 -> encrypt
    answer = compose(question, [english], retriever.analyse(question), retriever.index)
    assert answer.lang == "zh" and answer.answered
    note, quote = answer.text.split("\n", 1)
    assert note == OTHER_LANGUAGE_NOTE["zh"] == "只有英文资料涉及这个问题："
    assert quote.startswith("Encrypt user data")


@pytest.mark.slow
@pytest.mark.parametrize("question", ["How should I price an AI product?", "如何给AI产品定价？"])
def test_in_domain_questions_the_corpus_does_not_cover_are_declined(real_kb, question):
    answer = real_kb.ask(question)
    assert not answer.answered
    assert answer.confidence < DECLINE_BELOW
    assert answer.suggestions


@pytest.mark.slow
def test_english_answers_are_in_english_or_say_why_not(real_kb):
    for question in (
        "How should I choose the right large model algorithm for my business?",
        "How long does it take to train a large AI model?",
        "What are the advantages of large models in business?",
    ):
        answer = real_kb.ask(question)
        assert answer.answered, question
        if answer.sources[0].lang == "zh":
            assert answer.text.startswith(OTHER_LANGUAGE_NOTE["en"]), question
        else:
            assert not answer.text.startswith(OTHER_LANGUAGE_NOTE["en"]), question


def test_dev_set_marks_uncovered_questions_apart_from_off_topic_ones():
    import json

    rows = [
        json.loads(line)
        for line in (Path(__file__).resolve().parents[2] / "knowledge" / "eval" / "dev.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()
        if line.strip()
    ]
    uncovered = [row for row in rows if row["kind"] == "uncovered"]
    assert len(uncovered) >= 10
    assert all(row["expect_any"] == [] for row in uncovered)
    assert {"en", "zh"} <= {
        "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in row["question"]) else "en" for row in uncovered
    }
