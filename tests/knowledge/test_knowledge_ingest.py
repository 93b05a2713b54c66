"""Ingest: each kind of noise in the seed articles, FAQ extraction, zh/en pairing, on small fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from knowledge_doubles import PACKAGED_CORPUS, no_similarity

from knowledge.api import detect_lang
from knowledge.glossary import Glossary
from knowledge.ingest import Section, ingest_folder, ingest_text, mine_glossary, pair_sections


def headings(sections: list[Section]) -> list[str]:
    return [s.path[-1] for s in sections]


def all_text(sections: list[Section]) -> str:
    return "\n".join(s.heading + "\n" + s.text for s in sections)


def test_chat_template_tokens_glued_to_headings_are_removed():
    raw = "# Title\n\nIntro text here.\n<|assistant|>## 2. Core Concepts\n\nBody of two.\n\nEnd. <|im_sep|>### 3. Next\n\nBody three."
    _, sections = ingest_text(raw, "doc")
    assert "2. Core Concepts" in headings(sections)
    assert "3. Next" in headings(sections)
    assert "<|" not in all_text(sections)


def test_writing_template_placeholders_are_dropped_and_title_resolved():
    raw = (
        "### 文章标题\n\n《真正的标题》\n\n### 关键词：(此处列出文章的5-7个核心关键词)\n\n- 大模型\n- 创业\n"
    )
    title, sections = ingest_text(raw, "doc")
    assert title == "真正的标题"
    assert "此处" not in all_text(sections)
    assert headings(sections) == ["关键词"]
    _, inline = ingest_text("## 文章标题：创业者热情不减\n\n正文内容比较长一些。", "doc")
    assert "文章标题" not in all_text(inline)


def test_duplicated_half_keeps_content_only_one_copy_has():
    half = (
        "## 1. Background\n\nLarge models changed how startups build products, and founders noticed quickly.\n\n"
        "## 2. Challenges\n\nCompute is expensive and talent is scarce for small teams everywhere.\n"
    )
    extra = "## 3. Only In The Copy\n\nThis paragraph appears only in the second copy of the article.\n"
    _, sections = ingest_text("# T\n\n" + half + "\n-----\n\n" + half + extra, "doc")
    text = all_text(sections)
    assert text.count("Large models changed how startups") == 1
    assert text.count("Compute is expensive") == 1
    assert "appears only in the second copy" in text


def test_near_duplicate_paragraph_with_extra_sentence_is_kept():
    first = "Large models need a lot of data and compute to train well for any startup."
    second = first + " The second copy also explains that cloud credits can cover the early costs."
    _, sections = ingest_text(f"# T\n\n## A\n\n{first}\n\n## A\n\n{second}\n", "doc")
    assert "cloud credits" in all_text(sections)


def test_unclosed_fence_does_not_swallow_the_following_sections():
    raw = (
        "# T\n\n## 5. Code\n\n```python\nclass VAE(Model):\n    output cómo sé que está pagado\n"
        "### 9. 附录：常见问题与解答\n\n#### 9.1 如何选择合适的大模型算法？\n\n选择合适的算法取决于业务需求和数据特点。\n"
    )
    _, sections = ingest_text(raw, "doc")
    faq = [s for s in sections if s.kind == "faq"]
    assert [s.question for s in faq] == ["如何选择合适的大模型算法？"]
    assert faq[0].path[0] == "9. 附录：常见问题与解答"  # a chapter, not nested under "5. Code"
    code = next(s for s in sections if s.path[-1] == "5. Code")
    assert code.text.count("```") == 2
    assert "cómo" not in all_text(sections)
    assert "output" in code.text


def test_stray_fence_after_a_list_does_not_swallow_the_second_copy():
    raw = (
        "# T\n\n## 10. 参考资料\n\n- [TensorFlow](https://www.tensorflow.org/)\n```\n\n-----------\n"
        "# 文章标题\n## 大模型创业的核心竞争力\n\n### 1.3 大模型在创业领域的应用前景\n\n随着人工智能技术的发展，大模型在创业领域的应用前景十分广阔。\n"
    )
    _, sections = ingest_text(raw, "doc")
    assert "1.3 大模型在创业领域的应用前景" in headings(sections)
    assert "应用前景十分广阔" in all_text(sections)


def test_hash_comments_inside_code_are_not_headings():
    raw = "# T\n\n## 5.2 Code\n\n```python\n# 定义模型\nmodel = build()\n# Training loop\nfit(model)\n```\n\nAfter the code.\n"
    _, sections = ingest_text(raw, "doc")
    assert headings(sections) == ["5.2 Code"]
    assert "# 定义模型" in sections[0].text
    assert "After the code." in sections[0].text


def test_heading_without_space_after_hashes():
    _, sections = ingest_text(
        "# T\n\n### 4.2 激活函数\n\n####ReLU函数\n\nReLU函数在输入为正时输出输入本身。\n", "doc"
    )
    assert sections[-1].path[-1] == "ReLU函数"
    assert sections[-1].path[-2] == "4.2 激活函数"


def test_faq_entries_in_both_languages_and_all_styles():
    raw = (
        "# T\n\n## 9. 附录：常见问题与解答\n\n### 问题1：如何训练大模型？\n\n**解答**：训练大模型需要大量计算资源和时间。\n\n"
        "### 9.2 大模型创业的挑战有哪些？\n\n挑战包括数据隐私与安全、技术门槛。\n\n"
        "## 9. Appendix: Frequently Asked Questions and Answers\n\n### 9.1 Common Questions\n\n"
        "1. **What are large models?**\n   - Deep learning models with a huge number of parameters.\n\n"
        "2. **Insufficient computational resources**\n   - **Solution**: Use cloud services that provide GPUs.\n"
    )
    _, sections = ingest_text(raw, "doc")
    faq = {s.question: s for s in sections if s.kind == "faq"}
    assert set(faq) == {
        "如何训练大模型？",
        "大模型创业的挑战有哪些？",
        "What are large models?",
        "Insufficient computational resources",
    }
    assert faq["如何训练大模型？"].text.startswith("训练大模型需要")
    assert faq["如何训练大模型？"].lang == "zh"
    assert faq["What are large models?"].text == "Deep learning models with a huge number of parameters."
    assert faq["Insufficient computational resources"].text == "Use cloud services that provide GPUs."
    assert faq["What are large models?"].lang == "en"


def test_bold_lists_outside_faq_stay_sections():
    raw = "# T\n\n## 2.1 Skills\n\n1. **Data**: collect it.\n2. **Models**: train them.\n"
    _, sections = ingest_text(raw, "doc")
    assert [s.kind for s in sections] == ["section"]


def test_chinese_sections_pair_with_their_english_translation():
    raw = (
        "# T\n\n## 2. 核心概念\n\n### 2.1 大模型的概念\n\n大模型是参数很多的深度学习模型，可以处理海量数据。\n\n"
        "### 2.2 大模型的架构\n\n大模型通常采用Transformer架构，由编码器和解码器组成。\n\n"
        "## 2. Core Concepts\n\n### 2.1 The Concept of Large Models\n\nLarge models are deep learning models with many parameters.\n\n"
        "### 2.2 The Architecture of Large Models\n\nLarge models usually use the Transformer architecture.\n"
    )
    _, sections = ingest_text(raw, "doc")
    paired = {s.path[-1]: s for s in pair_sections(sections, no_similarity)}
    by_id = {s.id: s for s in paired.values()}
    assert by_id[paired["2.1 大模型的概念"].pair].path[-1] == "2.1 The Concept of Large Models"
    assert by_id[paired["2.2 The Architecture of Large Models"].pair].path[-1] == "2.2 大模型的架构"


def test_single_language_documents_are_not_paired():
    chinese = "## 1. 背景\n\n大模型创业的背景介绍，内容一。\n\n## 2. 挑战\n\n大模型创业面临的挑战，内容二。\n"
    english = (
        "## 1. Background\n\nWhy founders build on large models.\n\n## 2. Challenges\n\nWhat gets hard.\n"
    )

    def alike(zh: list[str], en: list[str]) -> np.ndarray:
        return np.ones((len(zh), len(en)), dtype=np.float32)

    _, apart = ingest_text(f"# T\n\n{chinese}", "zh-doc")
    _, other = ingest_text(f"# T\n\n{english}", "en-doc")
    assert all(not s.pair for s in pair_sections(apart + other, alike))
    # The same two halves in one document do pair: the check above can fail.
    _, together = ingest_text(f"# T\n\n{chinese}\n{english}", "both")
    assert sum(bool(s.pair) for s in pair_sections(together, alike)) == 4


def test_glossary_mining_and_translation():
    mined = mine_glossary("我们使用变分自编码器（VAE）和生成对抗网络（GANs）。")
    assert ("vae", "变分自编码器") in mined
    glossary = Glossary.build(mined)
    english = glossary.translate("What is the core competitiveness of a startup?")
    assert "核心竞争力" in english.to_chinese
    assert english.topics == 2  # core competitiveness, startup
    chinese = glossary.translate("如何降低技术门槛")
    assert "technical barrier" in chinese.to_english
    assert glossary.gloss("大模型创业的核心竞争力") == "large model startup core competitiveness"


def test_any_folder_of_markdown_files(tmp_path: Path):
    (tmp_path / "notes.md").write_text("# Notes\n\n## Pricing\n\nCharge per seat.\n", encoding="utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    corpus = ingest_folder(tmp_path)
    assert corpus.titles == {"notes": "Notes"}
    assert [s.text for s in corpus.sections] == ["Charge per seat."]


def test_packaged_corpus_is_cleaned():
    corpus = ingest_folder(PACKAGED_CORPUS)
    text = all_text(corpus.sections)
    assert corpus.documents == 5
    for noise in ("<|assistant|>", "<|im_sep|>", "此处", "cómo sé"):
        assert noise not in text
    names = {s.path[-1] for s in corpus.sections}
    assert "9.1 如何选择合适的大模型算法？" in names  # after 004's unclosed fence
    assert "1.13 大模型创业的机遇与未来发展方向" in names  # 002's second copy, after the stray fence
    assert "ReLU函数" in names
    # 003's article appears twice: its FAQ question survives in each copy's own wording only once.
    first_copy = "选择大模型时，需考虑任务类型、数据规模、计算资源等因素"
    assert text.count(first_copy) == 1
    faq_langs = {s.lang for s in corpus.sections if s.kind == "faq"}
    assert faq_langs == {"en", "zh"}
    assert np.mean([len(s.text) for s in corpus.sections]) > 50


def test_an_article_without_a_title_is_named_by_its_first_heading():
    title, _ = ingest_text(
        "### 2. Background Introduction\n\nWhy founders build on large models.\n", "001_7c98db10fd0b30bb"
    )
    assert title == "Background Introduction"
    packaged = ingest_folder(PACKAGED_CORPUS).titles
    assert not any(name.startswith("Article") for name in packaged.values())


def test_an_untitled_article_is_named_in_each_language_by_the_topic_its_opening_states():
    raw = (
        "### 背景介绍\n\n本文旨在探讨如何用大模型创业，并给出建议。\n\n"
        "### Background Introduction\n\nThis article aims to explore how to build a company on large models, "
        "step by step.\n"
    )
    title, sections = ingest_text(raw, "001_7c98db10fd0b30bb")
    titles = {section.lang: section.title for section in sections}
    assert titles == {"zh": "如何用大模型创业", "en": "How to build a company on large models"}
    assert title == "如何用大模型创业"
    # A language whose text states no topic borrows the other language's title.
    _, sections = ingest_text(
        "# 真正的标题\n\n## 1. 背景\n\n正文。\n\n## 2. Scope\n\nPlain text here.\n", "d"
    )
    assert {section.title for section in sections} == {"真正的标题"}
    packaged = [
        s for s in ingest_folder(PACKAGED_CORPUS).sections if s.doc.startswith("001") and s.lang == "en"
    ]
    assert packaged and all(detect_lang(s.title) == "en" for s in packaged)


def test_a_repeated_section_left_with_only_list_lead_ins_is_dropped():
    raw = (
        "# T\n\n## 1. 优势与挑战\n\n大模型创业具有以下优势：\n\n- **技术创新**：大模型技术为创业者提供了强大的技术创新手段，有助于提升项目的核心竞争力。\n\n"
        "然而，大模型创业也面临着一系列挑战：\n\n- **数据隐私与安全**：大模型在数据处理过程中涉及大量敏感信息，如何确保数据隐私和安全是一个重要问题。\n\n"
        "## 2. 优势与挑战回顾\n\n大模型创业具有以下优势：\n\n- **技术创新**：大模型技术为创业者提供了强大的技术创新手段，有助于提升项目的核心竞争力。\n\n"
        "然而，大模型创业也面临着一系列挑战：\n\n- **数据隐私与安全**：大模型在数据处理过程中涉及大量敏感信息，如何确保数据隐私和安全是一个重要问题。\n"
    )
    _, sections = ingest_text(raw, "doc")
    assert headings(sections) == ["1. 优势与挑战"]
    assert "数据隐私与安全" in sections[0].text


def test_a_heading_given_twice_is_one_section_with_both_texts():
    outline = (
        "## 2. 核心概念\n\n### 大模型原理\n\n大模型通过训练大量参数来表示输入数据的分布，这是一段概述。\n"
    )
    full = (
        "## 2. 核心概念\n\n### 大模型原理\n\n"
        "在分类任务中，输出层通常是一个softmax层，用于计算每个类别的概率分布，这是正文才有的内容。\n"
    )
    intro = "## 1. 背景介绍\n\n大模型正在改变创业公司开发产品的方式。\n\n"
    _, sections = ingest_text(f"# 大模型创业\n\n{intro}{outline}\n{full}", "doc")
    named = [s for s in sections if s.path[-1] == "大模型原理"]
    assert len(named) == 1
    assert "这是一段概述" in named[0].text and "softmax层" in named[0].text
    assert named[0].text.index("这是一段概述") < named[0].text.index("softmax层")
    assert len({s.id for s in sections}) == len(sections)
