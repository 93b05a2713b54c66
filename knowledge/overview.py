"""What the articles are about, for a question about "this article" as a whole.

Such a question ("What is this article about?", "这篇文章讲了啥？") names no article, and every
article answers it, so retrieval would pick one by its wording (an author line, say). The reply lists
each article's title and the opening of its abstract, citing each abstract. Only a question that asks
nothing else is read so: "What does the article say about GANs?" is an ordinary question.
"""

from __future__ import annotations

import re

from knowledge.answer import ANSWER_CHARS, localised, opening, section_source
from knowledge.api import Answer
from knowledge.index import KnowledgeIndex
from knowledge.ingest import Section

_ARTICLE_EN = r"(?:article|articles|piece|paper|guide|post|sources|knowledge\s+base)"
_SIZE = r"(?:an?\s+|the\s+)?(?:quick\s+|short\s+|brief\s+)?"  # "a quick" summary, "the" gist
_OVERVIEW_EN = (
    # "what is this article about", after an opening such as "Give me the gist:" or "quick one -"
    re.compile(
        rf"^(?:(?:hi|hey|ok|okay|so|please|pls|quick\s+one|give\s+me\s+{_SIZE}(?:summary|gist|overview))\W+)?"
        r"what(?:'s|\s+is|\s+are|\s+does|\s+do)\s+(?:this|the|these|that|your)"
        rf"\s+{_ARTICLE_EN}\s+(?:(?:all|actually|mainly|really)\s+)?(?:about|cover|covers|say)"
        r"(?:\s+overall)?(?:,?\s+and\s+what\s+(?:topics\s+)?(?:does|do)\s+(?:it|they)\s+(?:cover|walk\s+through))?"
        r"\s*[?.!]*$",
        re.IGNORECASE,
    ),
    # "summarize the article", "give me a quick summary", "tl;dr?"
    re.compile(
        r"^(?:(?:give|send)\s+me\s+|can\s+you\s+give\s+me\s+|please\s+|pls\s+)?"
        rf"{_SIZE}(?:summary|gist|overview|tl;?dr|summari[sz]e)"
        rf"(?:\s+(?:of\s+)?(?:this|the|these|your)\s+{_ARTICLE_EN})?\s*[?.!]*$",
        re.IGNORECASE,
    ),
)
_OVERVIEW_ZH = re.compile(
    r"^(?:(?:这篇|本篇|这个|该)(?:文章|文|东西|资料)?|本文|(?:这些|你的)?文章|你的资料)"
    r"(?:主要|整体|大概|到底|都)?想?(?:讲|说|写|谈|介绍)了?些?(?:什么|啥)(?:内容)?[\s？?。！!]*$"
)
# Said above the list of articles.
OVERVIEW_LEAD = {"en": "My sources are {count} articles:", "zh": "我的资料共有 {count} 篇文章："}
# An abstract's labels, and the keyword lines before it, are not what the article is about.
_LABEL = re.compile(r"^\s*(?:>\s*)?(?:摘要|abstract)\s*[:：]\s*", re.IGNORECASE)
_KEYWORDS = re.compile(r"^\s*(?:>\s*)?(?:关键词|keywords?)\s*[:：]", re.IGNORECASE)
_ABSTRACT_HEADINGS = ("摘要", "abstract")


def asks_for_overview(question: str) -> bool:
    """Whether the question asks only what the article (or the articles) are about."""
    question = " ".join(question.split())
    return any(pattern.match(question) for pattern in _OVERVIEW_EN) or bool(_OVERVIEW_ZH.match(question))


def overview_answer(index: KnowledgeIndex, question: str, lang: str, k: int) -> Answer:
    """Each article's title and its abstract's opening, in the asker's language where a version in it
    exists, citing up to k abstracts."""
    abstracts = [localised_section(index, section, lang) for section in article_abstracts(index)]
    lines = [OVERVIEW_LEAD[lang].format(count=len(abstracts))]
    for number, (section, text) in enumerate(abstracts, 1):
        lines.append(f"{number}. 《{section.title}》\n{opening(text, ANSWER_CHARS[section.lang] // 3)}")
    sources = [section_source(index, section, (), 1.0) for section, _ in abstracts[: max(1, k)]]
    return Answer(question, lang, True, "\n\n".join(lines), 1.0, sources, [])


def article_abstracts(index: KnowledgeIndex) -> list[Section]:
    """Each article's abstract: a section headed so, else its front matter (the section under the
    title alone), else its first section; in corpus order."""
    by_doc: dict[str, list[Section]] = {}
    for section in index.sections:
        if section.kind == "section":
            by_doc.setdefault(section.doc, []).append(section)
    found = []
    for sections in by_doc.values():
        headed = [s for s in sections if s.path and s.path[-1].strip().lower() in _ABSTRACT_HEADINGS]
        front = [s for s in sections if list(s.path) == [s.title]]
        found.append((headed or front or sections)[0])
    return found


def localised_section(index: KnowledgeIndex, section: Section, lang: str) -> tuple[Section, str]:
    """The section in the asker's language where its translation exists, with its text as an
    abstract reads: without the keyword lines and the "摘要：" label."""
    units = index.units_in(section)
    shown = localised(index, units[0], lang)[0] if units else section
    kept = [_LABEL.sub("", line) for line in shown.text.splitlines() if not _KEYWORDS.match(line)]
    return shown, "\n".join(kept).strip() or shown.text
