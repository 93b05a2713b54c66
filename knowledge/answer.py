"""Retrieved hits + the question's language -> an Answer: a trimmed passage, sources, confidence."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from knowledge.index import KnowledgeIndex, unit_heading_text
from knowledge.ingest import Section
from knowledge.retrieve import Hit, QueryAnalysis
from knowledge.text import CODE_FENCE, lexical_tokens

ANSWER_CHARS = {"en": 480, "zh": 220}
SOURCE_CHARS = 1500
# Below this confidence the question is declined; measured on the dev set's off-topic questions.
DECLINE_BELOW = 0.4
# The quoted passage must hold at least this idf-weighted share of the question's key terms
# (Hit.support), else the knowledge base does not cover the question however close the topic is
# ("How should I price an AI product?"); measured on the dev set's uncovered questions.
SUPPORT_MIN = 0.5
# A passage in the asker's language is quoted instead of a better-ranked one in the other
# language when it scores at least this share of it and holds about as much of the question.
SAME_LANGUAGE_SCORE = 0.85
SAME_LANGUAGE_SUPPORT_SLACK = 0.1
# A passage scoring at least SUPPORTED_SCORE of the top one is quoted instead when it holds the
# question and the top one does not, or when it holds SUPPORT_GAIN more of it ("如何控制推理成本"
# quoted cost savings in general; 0.15 measured best on the dev set, 0.2 also fixes that question).
SUPPORTED_SCORE = 0.8
SUPPORT_GAIN = 0.15
# Said above a quote in the other language, so the asker knows why.
OTHER_LANGUAGE_NOTE = {
    "en": "Only the Chinese text covers this:",
    "zh": "只有英文资料涉及这个问题：",
}
# The topics it can help with travel as Answer.suggestions, which the bot lists as questions to ask.
DECLINE_TEXT = {
    "en": "Sorry, I don't have an answer to that in my knowledge base.",
    "zh": "抱歉，我的知识库里没有这个问题的答案。",
}
SUGGESTIONS_HEADING = {"en": "It can help with topics like:", "zh": "它可以回答这些方面的问题："}
SENTENCE_END = re.compile(r"(?<=[。！？!?；;])|(?<=\.)\s+(?=[A-Z0-9*\-])|\n+")


@dataclass(frozen=True)
class Source:
    """A cited passage: article, section path, language, text and retrieval score."""

    doc: str
    title: str
    section: str
    lang: str
    text: str
    score: float


@dataclass(frozen=True)
class Answer:
    """What the knowledge base says to one question."""

    question: str
    lang: str
    answered: bool
    text: str
    confidence: float
    sources: list[Source] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """The `knowledge ask --json` object."""
        return {
            "question": self.question,
            "lang": self.lang,
            "answered": self.answered,
            "answer": self.text,
            "confidence": round(self.confidence, 4),
            "sources": [
                {
                    "doc": s.doc,
                    "title": s.title,
                    "section": s.section,
                    "lang": s.lang,
                    "text": s.text,
                    "score": round(s.score, 4),
                }
                for s in self.sources
            ],
            "suggestions": list(self.suggestions),
        }


def confidence_of(hits: list[Hit], analysis: QueryAnalysis) -> float:
    """0..1 from the best hit's dense similarity and how much of the question the corpus knows."""
    if not hits:
        return 0.0
    best = hits[0]
    dense_part = best.dense if analysis.lang == "en" else 0.5 * best.dense
    evidence = 2.2 * analysis.coverage + 3.0 * dense_part + 0.25 * min(analysis.domain_terms, 3) - 2.2
    return 1.0 / (1.0 + math.exp(-3.0 * evidence))


def support_confidence(support: float) -> float:
    """Passage support mapped onto the confidence scale: SUPPORT_MIN lands on DECLINE_BELOW."""
    if support < SUPPORT_MIN:
        return DECLINE_BELOW * support / SUPPORT_MIN
    return DECLINE_BELOW + (1.0 - DECLINE_BELOW) * (support - SUPPORT_MIN) / (1.0 - SUPPORT_MIN)


def choose(hits: list[Hit], index: KnowledgeIndex, lang: str) -> int:
    """Which hit to quote: the best that holds the question, preferring the asker's language."""
    chosen = 0
    for n, hit in enumerate(hits[1:], 1):
        if hit.score < SUPPORTED_SCORE * hits[0].score:
            break
        answers = hits[0].support < SUPPORT_MIN <= hit.support
        if answers or hit.support >= hits[chosen].support + SUPPORT_GAIN:
            chosen = n
            break
    if _shown_lang(index, hits[chosen], lang) != lang:
        best = hits[chosen]
        for n, hit in enumerate(hits):
            if (
                _shown_lang(index, hit, lang) == lang
                and hit.score >= SAME_LANGUAGE_SCORE * best.score
                and hit.support >= min(best.support - SAME_LANGUAGE_SUPPORT_SLACK, SUPPORT_MIN)
            ):
                return n
    return chosen


def compose(question: str, hits: list[Hit], analysis: QueryAnalysis, index: KnowledgeIndex) -> Answer:
    """Build the Answer, in the question's language where a version in it exists.

    Declined when retrieval is unsure (confidence_of) or when the quoted passage does not hold the
    question's key terms (Hit.support); the reported confidence is the weaker of the two.
    """
    lang = analysis.lang
    confidence = confidence_of(hits, analysis)
    if hits:
        chosen = choose(hits, index, lang)
        hits = [hits[chosen], *hits[:chosen], *hits[chosen + 1 :]]  # the quoted passage is cited first
        confidence = min(confidence, support_confidence(hits[0].support))
    sources = [_source(index, hit, lang) for hit in hits]
    if confidence < DECLINE_BELOW or not sources:
        topics = _suggestions(index, hits, lang)
        text = DECLINE_TEXT[lang]
        return Answer(question, lang, False, text, confidence, sources, topics)
    best_section, best_text = _localised(index, hits[0], lang)
    text = trim(best_text, question, analysis, ANSWER_CHARS[best_section.lang])
    if best_section.lang != lang:
        text = f"{OTHER_LANGUAGE_NOTE[lang]}\n{text}"
    return Answer(question, lang, True, text, confidence, sources, [])


def _shown_lang(index: KnowledgeIndex, hit: Hit, lang: str) -> str:
    """The language the hit's passage would be quoted in for an asker of `lang`."""
    section = index.sections[index.units[hit.unit].section]
    return lang if section.lang == lang or section.pair else section.lang


def _localised(index: KnowledgeIndex, hit: Hit, lang: str) -> tuple[Section, str]:
    """The hit's section in the asker's language when its translation exists, with its text."""
    unit = index.units[hit.unit]
    section = index.sections[unit.section]
    if section.lang != lang and section.pair:
        other = index.section_by_id(section.pair)
        if other is not None:
            return other, other.text
    return section, unit.text


def _source(index: KnowledgeIndex, hit: Hit, lang: str) -> Source:
    section, text = _localised(index, hit, lang)
    if len(text) > SOURCE_CHARS:
        text = text[:SOURCE_CHARS].rstrip() + "…"
    return Source(
        doc=section.doc,
        title=section.title,
        section=section.heading,
        lang=section.lang,
        text=text,
        score=round(hit.score, 4),
    )


def _suggestions(index: KnowledgeIndex, hits: list[Hit], lang: str) -> list[str]:
    """Closest topics the knowledge base covers, as section titles in the asker's language."""
    topics: list[str] = []
    for hit in hits:
        section, _ = _localised(index, hit, lang)
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


def trim(text: str, question: str, analysis: QueryAnalysis, limit: int) -> str:
    """A readable answer: the sentences that best match the question, in order, within limit."""
    prose = CODE_FENCE.sub(" ", text)
    prose = re.sub(r"\*\*|__|`", "", prose)
    prose = re.sub(r"\$\$.*?\$\$", " ", prose, flags=re.DOTALL)
    sentences = [s.strip() for s in SENTENCE_END.split(prose) if s and s.strip()]
    if not sentences:
        return text[:limit].strip()
    if sum(len(s) for s in sentences) <= limit:
        return _join(sentences)
    terms = {**analysis.translated, **analysis.terms}
    scores = []
    for position, sentence in enumerate(sentences):
        tokens = set(lexical_tokens(sentence))
        overlap = sum(weight for term, weight in terms.items() if term in tokens)
        scores.append(overlap + (0.5 if position == 0 else 0.0))
    start = max(range(len(sentences)), key=lambda i: scores[i])
    chosen: list[str] = []
    used = 0
    for sentence in sentences[start:]:
        if used and used + len(sentence) > limit:
            break
        chosen.append(sentence if len(sentence) <= limit else sentence[:limit].rstrip() + "…")
        used += len(sentence)
    return _join(chosen)


def _join(sentences: list[str]) -> str:
    out = ""
    for sentence in sentences:
        if not out:
            out = sentence
        elif re.match(r"^[-*•\d]", sentence) or out.endswith(("：", ":")):
            out += "\n" + sentence
        elif re.search(r"[\u4e00-\u9fff]$", out[-1:]) or out.endswith(("。", "！", "？", "；")):
            out += sentence
        else:
            out += " " + sentence
    return out.strip()
