"""What the knowledge base answers, as the bot and the store see it: plain types, no torch, no faiss."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, get_args

Lang = Literal["en", "zh"]
# What a free-text message asks for: the knowledge base, a picture, a text, a chat, or nothing we do.
Intent = Literal["question", "image", "text", "smalltalk", "offtopic"]
INTENTS: tuple[Intent, ...] = get_args(Intent)
INTENT_MODEL = "intent"  # the intent classifier's kind, as /retrain and training reports name it

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")


def detect_lang(text: str | None, language_code: str | None = None) -> Lang:
    """ "zh" when Chinese characters make up a real share of the text, "en" when English words
    outweigh them; text with neither (emoji, numbers) follows the client's language code."""
    cjk = len(_CJK.findall(text or ""))
    latin = len(_LATIN_WORD.findall(text or ""))
    # One Chinese character carries about as much as one English word.
    if cjk and cjk >= 0.5 * latin:
        return "zh"
    if latin:
        return "en"
    return "zh" if language_code and language_code.lower().startswith("zh") else "en"


@dataclass(frozen=True)
class Source:
    """A cited passage: article, section path, language, text and retrieval score."""

    doc: str
    title: str
    section: str
    lang: str
    text: str
    score: float
    link: str = ""  # the section's deep-link payload (t.me/<bot>?start=<link>); "" when unknown

    def to_json(self, with_link: bool = False) -> dict:
        """The `knowledge ask --json` source object; `with_link` adds the deep-link payload (as the
        bot stores sources)."""
        data = {
            "doc": self.doc,
            "title": self.title,
            "section": self.section,
            "lang": self.lang,
            "text": self.text,
            "score": round(self.score, 4),
        }
        return {**data, "link": self.link} if with_link else data

    @classmethod
    def from_json(cls, data: dict) -> Source:
        """A stored source; fields it lacks read as empty."""
        return cls(
            str(data.get("doc", "")),
            str(data.get("title", "")),
            str(data.get("section", "")),
            str(data.get("lang", "")),
            str(data.get("text", "")),
            float(data.get("score", 0.0)),
            str(data.get("link", "")),
        )


# Code an answer quotes stands in its text between two lines of this mark (a Markdown fence), so that
# a reply can show it preformatted.
CODE_FENCE_MARK = "```"


@dataclass(frozen=True)
class Answer:
    """What the knowledge base says to one question."""

    question: str
    lang: Lang
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
            "sources": [source.to_json() for source in self.sources],
            "suggestions": list(self.suggestions),
        }


@dataclass(frozen=True)
class Understanding:
    """How a free-text message was read, and what to act on: the answer to a question, the digit and
    count of a picture request, the topic of a text request. A message answered as a question only
    because the classifier was unsure it asked for a picture or a text has `leaning` set to that
    intent, with its digit and count or topic read, so the reply can offer the command; small talk
    the knowledge base would likely answer has `leaning` "question", so the reply can offer /ask."""

    intent: Intent
    confidence: float
    answer: Answer | None = None
    digit: int | None = None
    count: int = 0
    prompt: str = ""
    leaning: Intent | None = None
