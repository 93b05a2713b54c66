"""A retrieval and its verdict -> an Answer: a trimmed passage in the asker's language, sources."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import replace

from knowledge.api import Answer, Source
from knowledge.closeness import Closeness
from knowledge.decide import Verdict
from knowledge.index import KnowledgeIndex, unit_heading_text
from knowledge.ingest import Section
from knowledge.retrieve import Hit, QueryAnalysis, Retrieval
from knowledge.snippets import FENCE, matching_snippets, opening_code
from knowledge.text import CODE_FENCE, dedup_key, lexical_tokens, simplified, traditional

ANSWER_CHARS = {"en": 700, "zh": 350}
SOURCE_CHARS = 1500
# The least room worth filling with part of a passage that does not fit whole.
MIN_PART_CHARS = 120
# Said above a quote in the other language, so the asker knows why (a passage in the asker's language
# from another article may still be among the sources, so it claims no more than this).
OTHER_LANGUAGE_NOTE = {
    "en": "The best match is in Chinese:",
    "zh": "最匹配的内容是英文的：",
}
# The topics it can help with travel as Answer.suggestions, which the bot lists as questions to ask.
DECLINE_TEXT = {
    "en": "Sorry, I don't have an answer to that in my knowledge base.",
    "zh": "抱歉，我的知识库里没有这个问题的答案。",
}
# Said above the closest passages when the corpus touches a question's topic without answering it.
CLOSEST_LEAD = {"en": "The closest my sources come:", "zh": "我的资料中最接近的内容："}
# Said above a quote the answer model is unsure of (Verdict.TENTATIVE).
TENTATIVE_LEAD = {
    "en": "I'm not sure my sources answer this; the nearest they come:",
    "zh": "我不确定资料能回答这个问题，最接近的内容：",
}
# Said above the second source's quote: where several articles cover a topic, the source ranked second
# often holds the answer, and the reply shows quotes and titles, not the sources' passages.
SECOND_LEAD = {"en": "Source 2 adds:", "zh": "来源2补充："}
SECOND_LEAD_OTHER_LANGUAGE = {"en": "Source 2 adds, in Chinese:", "zh": "来源2补充（英文）："}
# Above the sentences a cited section's translation adds, named in that translation's language.
TRANSLATION_LEAD = {"en": "In the English version:", "zh": "中文版本："}
# Above the code of the quoted section that the question asks about.
CODE_LEAD = {"en": "From the article's code:", "zh": "文中的代码："}
SUGGESTIONS_HEADING = {"en": "It can help with topics like:", "zh": "它可以回答这些方面的问题："}
SENTENCE_END = re.compile(r"(?<=[。！？!?；;])|(?<=\.)\s+(?=[A-Z0-9*\-])")
LIST_ITEM = re.compile(r"^(?:[-*+•]|\d+[.)、])\s*")
LEAD_IN_END = ("：", ":")
# A quote starts at the block closest to the question in meaning (a cosine) plus this much for holding
# as many of its words as the best-matching block; chosen leaving each labelled set out in turn.
LEXICAL_WEIGHT = 0.5
# After its start, a quote takes the blocks that score best and fit; one that follows a block already
# taken counts this much more. Chosen leaving each labelled set out in turn.
FOLLOW_BONUS = 0.1
# Marks text left out between two quoted or cited parts of a section.
GAP = "…"


def compose(
    question: str, retrieval: Retrieval, verdict: Verdict, confidence: float, index: KnowledgeIndex, k: int
) -> Answer:
    """Build the Answer, in the question's language where a version in it exists, citing k sources."""
    analysis = retrieval.analysis
    lang = analysis.lang
    hits = _distinct(index, retrieval.hits, lang)[:k]
    closeness = retrieval.closeness
    sources = [_source(index, hit, lang, analysis, closeness) for hit in hits]
    if verdict is Verdict.DECLINE or not sources:
        topics = _suggestions(index, hits, lang)
        return Answer(question, lang, False, DECLINE_TEXT[lang], confidence, sources, topics)
    best_section, best_text = localised(index, hits[0].unit, lang)
    room = ANSWER_CHARS[best_section.lang]
    # A passage of code alone (part of a long block) is quoted from its section's prose, a section of
    # code alone by its opening code.
    text = (
        trim(best_text, analysis, room, closeness)
        or trim(best_section.text, analysis, room, closeness)
        or _fenced(opening_code(best_section.text, room))
        or best_section.text[:room].strip()
    )
    if best_section.lang != lang:
        text = f"{OTHER_LANGUAGE_NOTE[lang]}\n{text}"
    text += _code_quote(index, best_section, analysis, lang, text)
    text += _second_quote(index, hits, analysis, lang, text, closeness)
    if verdict is Verdict.CLOSEST:
        return Answer(question, lang, False, f"{CLOSEST_LEAD[lang]}\n{text}", confidence, sources, [])
    if verdict is Verdict.TENTATIVE:
        text = f"{TENTATIVE_LEAD[lang]}\n{text}"
    return Answer(question, lang, True, text, confidence, sources, [])


def _code_quote(
    index: KnowledgeIndex, section: Section, analysis: QueryAnalysis, lang: str, quoted: str
) -> str:
    """The section's code that the question's words point to ("what learning rate does the example
    use?"), as a fenced block under a lead; nothing when no snippet matches or the quote holds it."""
    # The question's own words only: glossary translations ("LSTM" -> 循环神经网络) match comments
    # by chance ("# 训练循环"). Words the prose quote holds say what the section is about (BERT, 模型),
    # not which code the question means.
    terms = set(analysis.terms) - set(lexical_tokens(quoted))
    found = [
        snippet
        for snippet in matching_snippets(section.text, terms, index.lexical.term_idf)
        if snippet.strip() not in quoted
    ]
    return f"\n\n{CODE_LEAD[lang]}\n{_fenced(found)}" if found else ""


def _fenced(snippets: list[str]) -> str:
    return f"{FENCE}\n" + "\n\n".join(snippets) + f"\n{FENCE}" if snippets else ""


def _second_quote(
    index: KnowledgeIndex,
    hits: list[Hit],
    analysis: QueryAnalysis,
    lang: str,
    first: str,
    closeness: Closeness | None = None,
) -> str:
    """The second source's best sentences in half the room, under a lead naming it, leaving out lines
    the first quote already holds; nothing when there is no second source or nothing new to add."""
    if len(hits) < 2:
        return ""
    section, text = localised(index, hits[1].unit, lang)
    said = dedup_key(first)
    lines = [
        line
        for line in trim(text, analysis, ANSWER_CHARS[section.lang] // 2, closeness).split("\n")
        if dedup_key(line) and dedup_key(line) not in said
    ]
    if not [line for line in lines if not _bare_lead_in(line)]:
        return ""
    lead = SECOND_LEAD[lang] if section.lang == lang else SECOND_LEAD_OTHER_LANGUAGE[lang]
    return f"\n\n{lead}\n" + "\n".join(lines)


def in_script_of(question: str, answer: Answer) -> Answer:
    """The answer in traditional Chinese script when the question was written in it (the corpus and
    every reply are simplified), its question as asked; otherwise the answer as is."""
    if simplified(question) == question:
        return answer
    return replace(
        answer,
        question=" ".join(question.split()),
        text=traditional(answer.text),
        sources=[
            replace(
                source,
                title=traditional(source.title),
                section=traditional(source.section),
                text=traditional(source.text),
            )
            for source in answer.sources
        ],
        suggestions=[traditional(topic) for topic in answer.suggestions],
    )


def _distinct(index: KnowledgeIndex, hits: list[Hit], lang: str) -> list[Hit]:
    """Hits whose shown passages differ: a section repeated under the same heading is cited once."""
    kept: list[Hit] = []
    seen: set[tuple[str, str]] = set()
    for hit in hits:
        section, text = localised(index, hit.unit, lang)
        keys = {(section.doc, section.heading), ("", dedup_key(text)[:200])}
        if keys & seen:
            continue
        seen |= keys
        kept.append(hit)
    return kept


def localised(index: KnowledgeIndex, unit_number: int, lang: str) -> tuple[Section, str]:
    """A unit's section in the asker's language when its translation exists, with the text shown."""
    unit = index.units[unit_number]
    section = index.sections[unit.section]
    if section.lang != lang and section.pair:
        other = index.section_by_id(section.pair)
        if other is not None:
            return other, other.text
    return section, index.shown_text(unit_number)


def _source(
    index: KnowledgeIndex, hit: Hit, lang: str, analysis: QueryAnalysis, closeness: Closeness | None
) -> Source:
    section, _ = localised(index, hit.unit, lang)
    ranked = hit.ranked or (hit.unit,)
    return section_source(index, section, ranked, round(hit.score, 4), analysis, closeness)


def section_source(
    index: KnowledgeIndex,
    section: Section,
    ranked: tuple[int, ...],
    score: float,
    analysis: QueryAnalysis | None = None,
    closeness: Closeness | None = None,
) -> Source:
    """A section cited: its article, heading, language, best passages for the question (see
    `excerpt`), then, in the room left, the sentences of its translation that best match the question
    (a translation may drop a detail: "数十亿乃至千亿" for "hundreds of millions or even trillions"),
    and link."""
    text = excerpt(index, section, ranked, analysis, closeness)
    other = index.section_by_id(section.pair) if section.pair and analysis is not None else None
    if other is not None:
        lead = TRANSLATION_LEAD[other.lang]
        room = SOURCE_CHARS - len(text) - len(f"\n\n{lead}\n")
        if room >= MIN_PART_CHARS:
            text = _clip(f"{text}\n\n{lead}\n{trim(other.text, analysis, room, closeness)}")
    return Source(
        doc=section.doc,
        title=section.title,
        section=section.heading,
        lang=section.lang,
        text=text,
        score=score,
        link=index.link_of(section),
    )


def entry_answer(index: KnowledgeIndex, section: Section) -> Answer:
    """A section or FAQ entry shown by itself (a deep link's answer): its text, citing itself."""
    question = section.question or section.heading
    source = section_source(index, section, (), 1.0)
    text = opening(section.text, ANSWER_CHARS[section.lang])
    lang = "zh" if section.lang == "zh" else "en"
    return Answer(question, lang, True, text, 1.0, [source], [])


def excerpt(
    index: KnowledgeIndex,
    section: Section,
    ranked: tuple[int, ...],
    analysis: QueryAnalysis | None = None,
    closeness: Closeness | None = None,
) -> str:
    """A cited section's passages that best match the question, within SOURCE_CHARS, in document order.

    A long section is indexed in several units; the ranker scored some of them (`ranked`, best
    first) and those lead, then the rest of the section. The best passage is always shown. Room left
    when the next passage does not fit whole holds that passage's sentences that best match the
    question (`trim`), so a long section's answer is not cut off for want of a few hundred characters.
    """
    rank = {unit: n for n, unit in enumerate(ranked)}
    members = index.units_in(section)
    if not members:
        return _clip(section.text)
    shown: dict[int, str] = {}
    first_left_out: int | None = None
    used = 0
    for unit in sorted(members, key=lambda u: (rank.get(u, len(rank)), u)):
        text = index.shown_text(unit)
        if shown and used + len(text) > SOURCE_CHARS:
            if first_left_out is None:
                first_left_out = unit
            continue
        shown[unit] = text
        used += len(text)
    room = SOURCE_CHARS - used - len(f"\n\n{GAP}\n\n")
    if analysis is not None and first_left_out is not None and room >= MIN_PART_CHARS:
        part = trim(index.shown_text(first_left_out), analysis, room, closeness)
        if part:
            shown[first_left_out] = part
    parts: list[str] = []
    for unit in sorted(shown):
        whole = shown[unit] == index.shown_text(unit)
        if (unit != members[0] and unit - 1 not in shown) or not whole:
            parts.append(GAP)  # a passage, or part of one, left out before this
        parts.append(shown[unit])
    # Consecutive passages of one code block read as one block.
    return _clip("\n\n".join(parts).replace(f"\n{FENCE}\n\n{FENCE}\n", "\n\n"))


def _clip(text: str) -> str:
    return text if len(text) <= SOURCE_CHARS else text[:SOURCE_CHARS].rstrip() + "…"


def _suggestions(index: KnowledgeIndex, hits: list[Hit], lang: str) -> list[str]:
    """Closest topics the knowledge base covers, as section titles in the asker's language."""
    topics: list[str] = []
    for hit in hits:
        section, _ = localised(index, hit.unit, lang)
        if section.lang != lang:
            continue
        topic = unit_heading_text(section).split(" / ")[-1]
        topic = re.sub(r"[（(][^）)]*[）)]", "", topic).strip(" ：:?？")
        if topic and topic not in topics:
            topics.append(topic)
        if len(topics) == 3:
            break
    if len(topics) < 3:
        for section in index.sections:
            if section.lang == lang and section.kind == "faq":
                topic = section.question.strip(" ?？")
                if topic not in topics:
                    topics.append(topic)
            if len(topics) == 3:
                break
    return topics


def _prose_blocks(text: str) -> list[str]:
    """The text's readable blocks: code, formulas and emphasis marks left out."""
    prose = CODE_FENCE.sub(" ", text)
    prose = re.sub(r"\*\*|__|`", "", prose)
    prose = re.sub(r"\$\$.*?\$\$", " ", prose, flags=re.DOTALL)
    return _blocks(prose)


def _fill(blocks: list[str], limit: int) -> list[str]:
    """The leading blocks that fit within limit (the first always, shortened if it must be)."""
    chosen: list[str] = []
    used = 0
    for block in blocks:
        if used and used + len(block) > limit:
            break
        chosen.append(block if len(block) <= limit else _shorten(block, limit))
        used += len(block)
    return chosen


def opening(text: str, limit: int) -> str:
    """The text's first blocks within limit (at least the first, shortened if it must be)."""
    blocks = _prose_blocks(text)
    return _join(_fill(blocks, limit)) if blocks else text[:limit].strip()


def trim(
    text: str, analysis: QueryAnalysis, limit: int, closeness: Callable[[str], float | None] | None = None
) -> str:
    """A readable answer: the block (sentence, or list with its lead-in) that best matches the
    question, then the best-matching blocks that fit within limit, in document order (`_choose`); a
    list too long to quote whole keeps its lead-in and the items that best match. A block matches by
    the question's words it holds and, where `closeness` reads it, by how close its sentences come to
    the question's meaning. Empty when the text has no prose."""
    blocks = _prose_blocks(text)
    if not blocks:
        return ""  # code or formulas alone: nothing readable to quote
    if sum(len(b) for b in blocks) <= limit:
        return _join(blocks)
    terms = {**analysis.translated, **analysis.terms}

    def score(block: str) -> float:
        tokens = set(lexical_tokens(block))
        return sum(w for t, w in terms.items() if t in tokens)

    # A lead-in whose list was left out ("...具有以下优势：") says nothing on its own.
    lexical = [-1.0 if _bare_lead_in(block) else score(block) for block in blocks]
    scores, items = lexical, score
    if closeness is not None:
        top = max(max(lexical), 0.0) or 1.0  # the best block's matching words

        def blend(cosine: float, words: float) -> float:
            return cosine + LEXICAL_WEIGHT * words / top

        scores = _with_closeness(blocks, lexical, closeness, blend)
        items = lambda item: blend(closeness(item) or 0.0, score(item))  # noqa: E731
    start = max(range(len(blocks)), key=lambda i: (scores[i], -i))
    if _bare_lead_in(blocks[start]):  # every block is one
        return _shorten(_join(blocks), limit)
    if len(blocks[start]) > limit:
        return _shorten(blocks[start], limit, items)
    return _join_with_gaps(blocks, _choose(blocks, scores, start, limit))


def _choose(blocks: list[str], scores: list[float], start: int, limit: int) -> list[int]:
    """The start block, then, while any fits, the best-scoring block left (one right after a chosen
    block counts FOLLOW_BONUS more, so that a quote reads on where it can), in document order."""
    chosen = {start}
    used = len(blocks[start])
    left = [n for n, block in enumerate(blocks) if n != start and not _bare_lead_in(block)]
    while True:
        fitting = [n for n in left if n not in chosen and used + len(blocks[n]) <= limit]
        if not fitting:
            return sorted(chosen)
        best = max(fitting, key=lambda n: (scores[n] + FOLLOW_BONUS * (n - 1 in chosen), -n))
        chosen.add(best)
        used += len(blocks[best])


def _join_with_gaps(blocks: list[str], chosen: list[int]) -> str:
    """The chosen blocks joined, with a gap mark where blocks were left out between them."""
    parts: list[str] = []
    for place, n in enumerate(chosen):
        if place and n != chosen[place - 1] + 1:
            parts.append(GAP)
        parts.append(blocks[n])
    return _join(parts)


def _with_closeness(
    blocks: list[str],
    lexical: list[float],
    closeness: Callable[[str], float | None],
    blend: Callable[[float, float], float],
) -> list[float]:
    """Each block's `blend` of its cosine with the question and its matching words (a block the
    sentence vectors do not cover counts as the least close one; a bare lead-in never starts a
    quote); the lexical scores alone when no block is covered. A list too long to quote whole keeps
    its items by the same blend."""
    cosines = [closeness(block) for block in blocks]
    known = [c for c in cosines if c is not None]
    if not known:
        return lexical
    floor = min(known)
    return [
        -math.inf if words < 0 else blend(floor if c is None else c, words)
        for c, words in zip(cosines, lexical, strict=True)
    ]


def _blocks(prose: str) -> list[str]:
    """Sentences and list items, each whole; a list led in by a sentence ("...以下优势：") is one
    block with that sentence, so the lead-in never stands without its items."""
    blocks: list[str] = []
    led_list = False
    for line in (line.strip() for line in prose.split("\n")):
        if not line:
            continue
        item = LIST_ITEM.match(line) is not None
        if item and blocks and (led_list or blocks[-1].endswith(LEAD_IN_END)):
            blocks[-1] += "\n" + line
            led_list = True
            continue
        led_list = False
        if item:
            # An item split into sentences would let the next item follow its last sentence.
            blocks.append(line)
            continue
        blocks.extend(s.strip() for s in SENTENCE_END.split(line) if s and s.strip())
    return blocks


def _bare_lead_in(block: str) -> bool:
    return block.endswith(LEAD_IN_END) and "\n" not in block


def _shorten(block: str, limit: int, score: Callable[[str], float] | None = None) -> str:
    """A block cut to limit: a list keeps its lead-in and whole items while they fit (at least one):
    those that best match (by `score`) where any does, else the first; a sentence is cut."""
    lines = block.split("\n")
    if len(lines) == 1:
        return block[:limit].rstrip() + "…"
    lead, items = lines[0], lines[1:]
    scores = [score(item) for item in items] if score is not None else [0.0] * len(items)
    if max(scores) <= 0:
        scores = [-n for n in range(len(items))]  # none matches: the first items, in order
    order = sorted(range(len(items)), key=lambda n: (-scores[n], n))
    kept = {order[0]}
    used = len(lead) + len(items[order[0]])
    for n in order[1:]:
        if used + len(items[n]) > limit:
            break
        kept.add(n)
        used += len(items[n])
    shown = "\n".join([lead, *(items[n] for n in sorted(kept))])
    return shown if len(shown) <= limit + 80 else shown[:limit].rstrip() + "…"


def _join(blocks: list[str]) -> str:
    out = ""
    for block in blocks:
        if not out:
            out = block
        elif LIST_ITEM.match(block) or "\n" in block or out.endswith(LEAD_IN_END) or "\n" in out[-80:]:
            out += "\n" + block
        elif re.search(r"[\u4e00-\u9fff]$", out[-1:]) or out.endswith(("。", "！", "？", "；")):
            out += block
        else:
            out += " " + block
    return out.strip()
