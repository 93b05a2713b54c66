"""A question about "this article" as a whole gets every article's title and abstract."""

from __future__ import annotations

from pathlib import Path

import pytest
from knowledge_doubles import FakeEncoder, no_similarity

from knowledge.build import build_index
from knowledge.index import KnowledgeIndex
from knowledge.overview import OVERVIEW_LEAD, article_abstracts, asks_for_overview, overview_answer

FRONT_MATTER = (
    "### 文章标题\n\n《定价的艺术》\n\n关键词：定价，订阅\n\n摘要：\n本文讨论订阅产品如何定价。我们从成本谈起。\n\n"
    "## 1. 成本\n\n先算清楚每个用户的成本。\n"
)
HEADED_ABSTRACT = (
    "# Hiring Engineers\n\n## Abstract\n\nThis guide covers hiring your first engineers. It starts with sourcing.\n\n"
    "## 1. Sourcing\n\nLook for people who shipped products before.\n"
)


@pytest.fixture
def two_articles(tmp_path: Path) -> KnowledgeIndex:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "001_pricing.md").write_text(FRONT_MATTER, encoding="utf-8")
    (folder / "002_hiring.md").write_text(HEADED_ABSTRACT, encoding="utf-8")
    index, _ = build_index(folder, FakeEncoder(), "fp", similarity=no_similarity)
    return index


@pytest.mark.parametrize(
    "question",
    [
        "What is this article about?",
        "what's the article about",
        "Give me a quick summary: what is this article about?",
        "Give me the gist: what is this article about and what topics does it cover?",
        "quick one — what's this piece about overall and what does it walk through?",
        "Summarize the article",
        "这篇文章主要讲了些啥？",
        "本文讲了什么",
    ],
)
def test_a_question_about_the_article_as_a_whole_asks_for_the_overview(question: str):
    assert asks_for_overview(question)


@pytest.mark.parametrize(
    "question",
    [
        "What does the article say about GANs?",
        "What is a GAN?",
        "Who wrote this article?",
        "文章最后对大模型创业的前景怎么看？",
        "BERT 这篇 paper 讲了啥，为啥这么重要？",
        "这篇文章里GAN是怎么训练的？",
        "讲了什么",
        "In the GAN section, what does the article say?",
    ],
)
def test_a_question_about_something_in_an_article_is_an_ordinary_question(question: str):
    assert not asks_for_overview(question)


def test_each_article_is_represented_by_its_abstract(two_articles: KnowledgeIndex):
    abstracts = article_abstracts(two_articles)
    assert [(s.doc, s.title) for s in abstracts] == [
        ("001_pricing", "定价的艺术"),
        ("002_hiring", "Hiring Engineers"),
    ]
    assert "本文讨论订阅产品如何定价" in abstracts[0].text  # the front matter under the title alone
    assert abstracts[1].path[-1] == "Abstract"


def test_the_overview_lists_every_title_with_its_abstract_and_cites_the_abstracts(
    two_articles: KnowledgeIndex,
):
    answer = overview_answer(two_articles, "What is this article about?", "en", k=5)
    assert answer.answered and answer.text.startswith(OVERVIEW_LEAD["en"].format(count=2))
    assert "1. 《定价的艺术》\n本文讨论订阅产品如何定价。" in answer.text
    assert "2. 《Hiring Engineers》\nThis guide covers hiring your first engineers." in answer.text
    # An abstract's keyword line and its label are not what the article is about.
    assert "关键词" not in answer.text and "摘要：" not in answer.text
    assert [(s.doc, s.lang) for s in answer.sources] == [("001_pricing", "zh"), ("002_hiring", "en")]
    assert len(overview_answer(two_articles, "这篇文章讲了啥？", "zh", k=1).sources) == 1
