"""Answer composition by verdict, quotes in the asker's language, lists with their items, learned verdicts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from knowledge_doubles import FakeEncoder, no_similarity, one_article_corpus

from knowledge.answer import (
    CLOSEST_LEAD,
    CODE_LEAD,
    DECLINE_TEXT,
    OTHER_LANGUAGE_NOTE,
    SECOND_LEAD,
    SECOND_LEAD_OTHER_LANGUAGE,
    SOURCE_CHARS,
    TENTATIVE_LEAD,
    TRANSLATION_LEAD,
    compose,
    entry_answer,
    excerpt,
    trim,
)
from knowledge.api import Answer
from knowledge.build import build_index
from knowledge.decide import Verdict, decide
from knowledge.features import QUESTION_FEATURES, UNIT_FEATURES
from knowledge.index import KnowledgeIndex
from knowledge.ingest import Section
from knowledge.learned import LinearModel, Policy
from knowledge.retrieve import Hit, Retrieval, Retriever

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


def retrieval(retriever: Retriever, question: str, *hits: Hit) -> Retrieval:
    return Retrieval(list(hits), retriever.analyse(question), np.zeros(len(QUESTION_FEATURES), np.float32))


def test_a_declined_question_gets_the_topics_it_can_help_with(retriever: Retriever):
    question = "How should I price and sell my machine learning product?"
    found = retrieval(retriever, question, hit(retriever, "Hiring", question))
    answer = compose(question, found, Verdict.DECLINE, 0.1, retriever.index, 5)
    assert not answer.answered and answer.text == DECLINE_TEXT["en"]
    assert answer.suggestions and answer.suggestions[0] not in answer.text


def test_a_question_covered_only_in_part_gets_the_closest_passage_said_so(retriever: Retriever):
    question = "How should I price and sell my machine learning product?"
    found = retrieval(retriever, question, hit(retriever, "Hiring", question))
    answer = compose(question, found, Verdict.CLOSEST, 0.3, retriever.index, 5)
    assert not answer.answered
    lead, quote = answer.text.split("\n", 1)
    assert lead == CLOSEST_LEAD["en"] and quote.startswith("Hire engineers")
    assert answer.sources and not answer.suggestions


def test_an_unsure_answer_quotes_its_passage_and_says_it_may_not_answer(retriever: Retriever):
    question = "Which engineers should I hire for a machine learning product?"
    found = retrieval(retriever, question, hit(retriever, "Hiring", question))
    answer = compose(question, found, Verdict.TENTATIVE, 0.3, retriever.index, 5)
    assert answer.answered and answer.confidence == 0.3
    lead, quote = answer.text.split("\n", 1)
    assert lead == TENTATIVE_LEAD["en"] and quote.startswith("Hire engineers")
    assert answer.sources and not answer.suggestions


def test_an_answered_question_quotes_its_best_passage(retriever: Retriever):
    question = "Which engineers should I hire for a machine learning product?"
    found = retrieval(retriever, question, hit(retriever, "Hiring", question))
    answer = compose(question, found, Verdict.ANSWER, 0.9, retriever.index, 5)
    assert answer.answered and answer.confidence == 0.9
    assert answer.text.startswith("Hire engineers")


def test_a_section_is_cited_once(retriever: Retriever):
    question = "Which engineers should I hire?"
    first = hit(retriever, "Hiring", question)
    found = retrieval(
        retriever, question, first, replace(first, score=0.5), hit(retriever, "Compute", question)
    )
    answer = compose(question, found, Verdict.ANSWER, 0.9, retriever.index, 5)
    assert [s.section for s in answer.sources] == ["1. Hiring", "2. Compute"]


def answer_citing_hiring_then(retriever: Retriever, heading: str, question: str, k: int = 5) -> Answer:
    """The answer that cites the Hiring section first and `heading`'s second."""
    hits = (hit(retriever, "Hiring", question), hit(retriever, heading, question))
    return compose(question, retrieval(retriever, question, *hits), Verdict.ANSWER, 0.9, retriever.index, k)


def test_the_second_source_is_quoted_after_the_first_under_its_own_lead(retriever: Retriever):
    question = "Which engineers should I hire and where do we rent GPUs for training?"
    answer = answer_citing_hiring_then(retriever, "Compute", question)
    first, second = answer.text.split("\n\n")
    assert first.startswith("Hire engineers")
    assert second == f"{SECOND_LEAD['en']}\nRent GPUs from a cloud provider when training large models."
    assert [s.section for s in answer.sources] == ["1. Hiring", "2. Compute"]
    alone = answer_citing_hiring_then(retriever, "Compute", question, k=1)
    assert SECOND_LEAD["en"] not in alone.text and len(alone.sources) == 1  # no second source cited


def test_a_second_source_in_the_other_language_is_quoted_saying_so(retriever: Retriever):
    question = "Which engineers should I hire, and how do startups get funding?"
    answer = answer_citing_hiring_then(retriever, "融资", question)
    lead, quote = answer.text.split("\n\n")[1].split("\n", 1)
    assert lead == SECOND_LEAD_OTHER_LANGUAGE["en"] == "Source 2 adds, in Chinese:"
    assert quote.startswith("创业公司应在产品验证之后")


def test_the_second_quote_leaves_out_what_the_first_already_says(tmp_path: Path):
    items = "- Compute: training needs many GPUs.\n- Talent: engineers are scarce.\n"
    index = article_index(
        tmp_path,
        f"# Challenges\n\n## 1. Challenges\n\nStartups face these challenges:\n\n{items}\n"
        f"## 2. Summary\n\nIn short, the challenges are:\n\n{items}- Data: clean data is rare.\n\n"
        f"## 3. Recap\n\nTo recap, the challenges are:\n\n{items}",
    )
    retriever = Retriever(index, FakeEncoder())
    question = "What challenges do startups face?"

    def answer_citing(*headings: str) -> str:
        hits = [hit(retriever, heading, question) for heading in headings]
        return compose(question, retrieval(retriever, question, *hits), Verdict.ANSWER, 0.9, index, 5).text

    first, second = answer_citing("Challenges", "Summary").split("\n\n")
    assert first.startswith("Startups face these challenges:") and "Talent" in first
    assert second == f"{SECOND_LEAD['en']}\nIn short, the challenges are:\n- Data: clean data is rare."
    assert SECOND_LEAD["en"] not in answer_citing("Challenges", "Recap")  # nothing new to add


def test_a_cited_section_shows_what_its_translation_adds_after_its_own_text(tmp_path: Path):
    index = article_index(
        tmp_path,
        "# T\n\n## 2. 核心概念\n\n### 2.1 大模型的规模\n\n大模型的参数数量达到数十亿乃至千亿级别。\n\n"
        "### 2.2 大模型的架构\n\n大模型通常采用Transformer架构，由编码器和解码器组成，可以并行处理很长的序列数据。\n\n"
        "## 2. Core Concepts\n\n### 2.1 The Scale of Large Models\n\n"
        "Large models have hundreds of millions or even trillions of parameters.\n\n"
        "### 2.2 The Architecture of Large Models\n\nLarge models usually use the Transformer architecture.\n",
    )
    retriever = Retriever(index, FakeEncoder())
    for question, heading, own, added in (
        ("大模型的参数规模能达到万亿吗？", "大模型的规模", "数十亿乃至千亿", "trillions of parameters"),
        ("How many parameters do large models have?", "The Scale of Large Models", "trillions", "千亿"),
    ):
        found = retrieval(retriever, question, hit(retriever, heading, question))
        cited = compose(question, found, Verdict.ANSWER, 0.9, index, 5).sources[0]
        text, translation = cited.text.split("\n\n")
        other = "en" if cited.lang == "zh" else "zh"
        assert own in text and translation.startswith(TRANSLATION_LEAD[other]) and added in translation
    alone = entry_answer(index, index.sections[0])  # a deep link shows the section by itself
    assert TRANSLATION_LEAD["en"] not in alone.sources[0].text


def article_index(root: Path, article: str) -> KnowledgeIndex:
    """An index of a corpus holding this one article (built under root)."""
    index, _ = build_index(one_article_corpus(root, article), FakeEncoder(), "fp", similarity=no_similarity)
    return index


def one_section_index(root: Path, heading: str, paragraphs: list[str]) -> tuple[KnowledgeIndex, Section]:
    """An index of one article holding one section of these paragraphs, with that section."""
    index = article_index(root, f"# Article\n\n## 1. {heading}\n\n" + "\n\n".join(paragraphs))
    return index, index.sections[0]


def test_a_long_section_is_cited_by_its_best_passages_in_document_order(tmp_path: Path):
    paragraphs = [f"Paragraph {n} on pricing. " + f"Detail {n} " * 60 for n in range(6)]
    index, section = one_section_index(tmp_path, "Plans", paragraphs)
    units = index.units_in(section)
    assert len(units) >= 4
    best, second = units[3], units[1]
    shown = excerpt(index, section, (best, second))
    # The ranked passages lead the choice; what fits is shown in the article's order, gaps marked.
    assert shown.index("Paragraph 1 ") < shown.index("Paragraph 3 ")
    assert shown.startswith("…") and "\n\n…\n\n" in shown
    assert len(shown) <= SOURCE_CHARS + 1
    alone = excerpt(index, section, (units[-1],))
    assert index.units[units[-1]].text in alone


def test_room_left_in_a_long_section_holds_the_best_sentences_of_a_passage_that_does_not_fit(
    tmp_path: Path,
):
    answer = "Churn falls when onboarding emails arrive on day three."
    paragraphs = [f"Paragraph {n} on retention. " + f"Detail {n} is minor. " * 28 for n in range(4)]
    paragraphs[3] = (
        "Paragraph 3 on retention. " + "Detail 3 is minor. " * 14 + answer + " Detail 3 is minor." * 14
    )
    index, section = one_section_index(tmp_path, "Churn", paragraphs)
    units = index.units_in(section)
    assert len(units) == 4 and answer in index.units[units[3]].text
    ranked = (units[0], units[1], units[3])  # the third-ranked passage does not fit whole
    analysis = Retriever(index, FakeEncoder()).analyse("When should onboarding emails arrive to cut churn?")
    assert answer not in excerpt(index, section, ranked)
    shown = excerpt(index, section, ranked, analysis)
    assert answer in shown and len(shown) <= SOURCE_CHARS + 1
    assert shown.index("Paragraph 1 ") < shown.index(answer)
    assert "\n\n…\n\n" in shown  # the part of the passage left out is marked


CODE_EXAMPLE = (
    "# Training\n\n## 1. Example\n\nThe example below trains a small classifier on labelled data.\n\n"
    "```python\nmodel = build()\n\noptimizer = Adam(model.parameters(), lr=0.001)\n\n"
    "model.fit(x, y, epochs=10, batch_size=64)\n```\n\n"
    + "".join(f"## {n}. Topic {n}\n\nNotes on subject {n} for founders.\n\n" for n in range(2, 8))
)


def test_a_question_about_the_code_gets_the_code_that_answers_it(tmp_path: Path):
    index = article_index(tmp_path, CODE_EXAMPLE)
    retriever = Retriever(index, FakeEncoder())

    def answer(question: str) -> str:
        found = retrieval(retriever, question, hit(retriever, "Example", question))
        return compose(question, found, Verdict.ANSWER, 0.9, index, 5).text

    quoted = answer("How many epochs and what batch size does the example use?")
    prose, code = quoted.split("\n\n")
    assert prose.startswith("The example below trains")
    assert code == f"{CODE_LEAD['en']}\n```\nmodel.fit(x, y, epochs=10, batch_size=64)\n```"
    assert CODE_LEAD["en"] not in answer("Why train a classifier on labelled data?")


def test_a_passage_of_code_alone_is_quoted_from_its_section_s_prose(tmp_path: Path):
    statements = "\n\n".join(f"step_{n} = run_stage({n}, learning_rate=0.01, warmup=True)" for n in range(60))
    index = article_index(
        tmp_path,
        f"# Guide\n\n## 1. Pipeline\n\nThe pipeline runs sixty stages in order.\n\n```python\n{statements}\n```\n",
    )
    section = index.sections[0]
    units = index.units_in(section)
    assert len(units) >= 3 and not index.units[units[1]].text.startswith("```")
    retriever = Retriever(index, FakeEncoder())
    question = "What does the pipeline run?"
    middle = Hit(units[1], index.units[units[1]].group, 1.0, 0.9, 5.0, 1.0, (units[1], units[2]))
    answer = compose(question, retrieval(retriever, question, middle), Verdict.ANSWER, 0.9, index, 5)
    assert answer.text == "The pipeline runs sixty stages in order."
    # Each passage of the block is shown as code, and two in a row as one block.
    for unit in units:
        assert index.shown_text(unit).count("```") % 2 == 0
    cited = answer.sources[0].text
    assert cited.startswith("…\n\n```\nstep_") and cited.endswith("```") and "```\n\n```" not in cited


def test_a_section_of_code_alone_is_quoted_by_its_opening_code(tmp_path: Path):
    index = article_index(
        tmp_path, "# Setup\n\n## 1. Install\n\n```bash\npip install torch\n\npython train.py\n```\n"
    )
    retriever = Retriever(index, FakeEncoder())
    question = "How do I set it up?"
    found = retrieval(retriever, question, hit(retriever, "Install", question))
    answer = compose(question, found, Verdict.ANSWER, 0.9, index, 5)
    assert answer.text == "```\npip install torch\n\npython train.py\n```"


def test_english_question_answered_only_in_chinese_says_so(retriever: Retriever):
    question = "How do startups get funding?"
    found = retrieval(retriever, question, hit(retriever, "融资", question))
    answer = compose(question, found, Verdict.ANSWER, 0.9, retriever.index, 5)
    assert answer.answered and answer.sources[0].lang == "zh"
    note, quote = answer.text.split("\n", 1)
    assert note == OTHER_LANGUAGE_NOTE["en"] == "The best match is in Chinese:"
    assert "天使投资人" in quote


def test_chinese_question_answered_only_in_english_says_so(retriever: Retriever):
    question = "如何对用户数据加密？"
    english = hit(retriever, "Encryption", question)
    assert english.support == pytest.approx(1.0)  # 用户 -> user, 数据 -> data, 加密 -> encrypt
    answer = compose(
        question, retrieval(retriever, question, english), Verdict.ANSWER, 0.9, retriever.index, 5
    )
    assert answer.lang == "zh" and answer.answered
    note, quote = answer.text.split("\n", 1)
    assert note == OTHER_LANGUAGE_NOTE["zh"] == "最匹配的内容是英文的："
    assert quote.startswith("Encrypt user data")


@pytest.mark.parametrize(
    ("text", "question", "limit", "start", "kept", "left_out"),
    [
        (  # a lead-in is quoted with its list, not by itself
            "大模型创业具有以下优势：\n\n- **技术创新**：提升核心竞争力。\n- **市场机会**：市场广阔。\n\n"
            "然而，大模型创业也面临着一系列挑战：\n\n- **数据隐私与安全**：涉及大量敏感信息。\n"
            "- **技术门槛**：需要专业知识。\n- **计算资源**：需要大量算力。",
            "大模型创业有哪些挑战？",
            80,
            "然而，大模型创业也面临着一系列挑战：\n- 数据隐私与安全",
            "技术门槛",
            "技术创新",
        ),
        (  # a list with no lead-in is quoted from the matching item, never mid-item
            "1. **Compute**：Training needs many GPUs. For startups, compute may be a major challenge.\n"
            "2. **User Data**：Encrypt user data and keep it private.\n"
            "3. **Fairness**：Models may be biased, so test them.",
            "How do we encrypt user data?",
            120,
            "2. User Data：Encrypt user data",
            "3. Fairness",
            "For startups",
        ),
        (  # a list too long to quote whole keeps its lead-in and the item that matches, not the first
            "以下是一些值得推荐的开源工具和框架：\n\n"
            "1. **TensorFlow**：Google开发的深度学习框架，适合构建和训练大模型。\n"
            "2. **PyTorch**：Facebook开发的深度学习框架，灵活易用。\n"
            "3. **Keras**：高级神经网络API，适合快速原型开发。\n"
            "4. **MindSpore**：华为开发的深度学习框架，支持CPU、GPU和Ascend 910。",
            "华为的框架能跑在什么硬件上？",
            90,
            "以下是一些值得推荐的开源工具和框架：\n4. MindSpore：华为开发的深度学习框架",
            "Ascend 910",
            "Keras",
        ),
    ],
)
def test_a_quote_from_a_list_starts_where_it_should_with_its_items(
    retriever: Retriever, text: str, question: str, limit: int, start: str, kept: str, left_out: str
):
    quote = trim(text, retriever.analyse(question), limit)
    assert quote.startswith(start)
    assert kept in quote and left_out not in quote


STORY = (
    "Founders often start with a public model. "
    "Fine-tuning it on a few thousand examples of your own customers' requests is the cheapest way "
    "to make it yours. "
    "Hosting it yourself later cuts the bill per request once traffic is steady. "
    "Either way, measure what users do with its answers."
)


def closer_to(sentence: str, cosine: float = 0.9):
    """A closeness reading that rates blocks holding `sentence` at `cosine`, every other one 0.1."""
    return lambda block: cosine if sentence in block else 0.1


def test_a_quote_starts_at_the_sentence_closest_in_meaning_when_no_words_are_shared(retriever: Retriever):
    question = "Most affordable route to personalising an LLM?"  # no word of its answer
    analysis = retriever.analyse(question)
    assert trim(STORY, analysis, 120).startswith("Founders often start")
    quote = trim(STORY, analysis, 120, closer_to("Fine-tuning it"))
    assert quote.startswith("Fine-tuning it on a few thousand examples")


def test_the_question_s_words_still_count_beside_closeness(retriever: Retriever):
    analysis = retriever.analyse("How do we cut the hosting bill per request?")
    nearly_as_close = lambda block: 0.45 if "Hosting" in block else 0.5  # noqa: E731
    for quote in (
        trim(STORY, analysis, 120, nearly_as_close),
        trim(STORY, analysis, 120, lambda block: None),
    ):
        assert "Hosting it yourself later cuts" in quote and "Fine-tuning" not in quote


def test_a_quote_fills_its_room_with_the_best_matching_blocks_in_document_order(retriever: Retriever):
    analysis = retriever.analyse("Most affordable route to personalising an LLM?")  # no word of the story
    readings = {"Founders": 0.5, "Fine-tuning": 0.1, "Hosting": 0.9, "Either way": 0.2}

    def closeness(block: str) -> float:
        return max(cosine for start, cosine in readings.items() if start in block)

    assert trim(STORY, analysis, 130, closeness) == (
        "Founders often start with a public model. … "
        "Hosting it yourself later cuts the bill per request once traffic is steady."
    )
    # A block right after one already quoted counts a little more: the quote reads on.
    readings["Either way"] = 0.45
    assert trim(STORY, analysis, 130, closeness) == (
        "Hosting it yourself later cuts the bill per request once traffic is steady. "
        "Either way, measure what users do with its answers."
    )


def test_a_list_too_long_to_quote_whole_keeps_the_item_closest_in_meaning(retriever: Retriever):
    tools = (
        "These tools help a small team:\n"
        "- Weights & Biases tracks every training run and its charts.\n"
        "- Label Studio lets annotators tag examples in a browser.\n"
        "- Triton serves several models behind one endpoint on a GPU.\n"
        "- DVC versions datasets next to the code."
    )
    analysis = retriever.analyse("Most affordable route to personalising an LLM?")  # no word of any item
    assert "Weights & Biases" in trim(tools, analysis, 110)  # the first item, for want of a better one
    quote = trim(tools, analysis, 110, closer_to("Triton serves"))
    assert quote.startswith("These tools help a small team:") and "Triton serves" in quote
    assert "Weights & Biases" not in quote


def test_an_answer_s_quote_follows_the_retrieval_s_closeness(retriever: Retriever):
    question = "Which people should we bring on first?"
    found = replace(
        retrieval(retriever, question, hit(retriever, "Hiring", question)),
        closeness=closer_to("Hire engineers"),
    )
    answer = compose(question, found, Verdict.ANSWER, 0.9, retriever.index, 5)
    assert answer.text.startswith("Hire engineers who have shipped")


def test_the_verdict_follows_the_learned_probabilities(retriever: Retriever):
    question = "Which engineers should I hire?"
    found = retrieval(retriever, question, hit(retriever, "Hiring", question))
    width = len(QUESTION_FEATURES)

    def model(bias: float) -> LinearModel:
        return LinearModel(QUESTION_FEATURES, (0.0,) * width, (1.0,) * width, (0.0,) * width, bias)

    size = len(UNIT_FEATURES)
    ranker = LinearModel(UNIT_FEATURES, (0.0,) * size, (1.0,) * size, (0.0,) * size, 0.0)
    sure, unsure = model(3.0), model(-3.0)
    assert decide(found, Policy(ranker, sure, 0.5, unsure, {}, 20))[0] is Verdict.ANSWER
    # Over the threshold but under even chance (p = 0.27): quoted, said to be unsure.
    assert decide(found, Policy(ranker, model(-1.0), 0.1, unsure, {}, 20))[0] is Verdict.TENTATIVE
    assert decide(found, Policy(ranker, model(1.0), 0.1, unsure, {}, 20))[0] is Verdict.ANSWER
    assert decide(found, Policy(ranker, unsure, 0.5, sure, {}, 20))[0] is Verdict.CLOSEST
    assert decide(found, Policy(ranker, unsure, 0.5, unsure, {}, 20))[0] is Verdict.DECLINE
    assert (
        decide(retrieval(retriever, question), Policy(ranker, sure, 0.5, None, {}, 20))[0] is Verdict.DECLINE
    )


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
