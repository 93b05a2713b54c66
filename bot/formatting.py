"""HTML for Telegram: escaping, answers with citations, and splitting under the message limits."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

from telegram.constants import MessageLimit

from bot.texts import Lang, text
from knowledge.api import CODE_FENCE_MARK, Answer, Source

MESSAGE_LIMIT = MessageLimit.MAX_TEXT_LENGTH  # 4096
CAPTION_LIMIT = MessageLimit.CAPTION_LENGTH  # 1024
SOURCES_SHOWN = 3
PASSAGE_CHARS = 700

_TAG = re.compile(r"<(/?)([a-zA-Z-]+)[^>]*>")
# A fenced block in an answer's text (the article's code it quotes), and a fence line's marks.
_FENCE = re.escape(CODE_FENCE_MARK)
_FENCED = re.compile(rf"^{_FENCE}[^\n]*\n(.*?)\n{_FENCE}$", re.DOTALL | re.MULTILINE)
_FENCE_MARK = re.compile(rf"^{_FENCE}\w*$", re.MULTILINE)


def escape(value: object) -> str:
    """Escape text for Telegram's HTML parse mode (only <, > and & matter; quotes too, for attributes)."""
    return html.escape(str(value), quote=True)


def html_to_plain(value: str) -> str:
    """Drop tags and unescape entities: the fallback when Telegram rejects our HTML."""
    return html.unescape(_TAG.sub("", value))


def metrics_text(metrics: dict[str, Any] | None) -> str:
    """A model's numeric metrics as `name=value, ...` (sorted), or a dash when it has none."""
    if not metrics:
        return "—"
    return ", ".join(f"{name}={value:.4g}" for name, value in sorted(metrics.items()) if _is_number(value))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def passage_plain(value: str, limit: int) -> str:
    """A passage on one line (code fence marks left out), cut to `limit` as `truncate_plain` does."""
    return truncate_plain(" ".join(_FENCE_MARK.sub(" ", value).split()), limit)


def truncate_plain(value: str, limit: int) -> str:
    """Cut plain text to at most `limit` characters, at a word boundary where one is near."""
    if len(value) <= limit:
        return value
    cut = value.rfind(" ", 0, limit - 1)
    if cut < limit // 2:
        cut = limit - 1
    return value[:cut].rstrip() + "…"


def source_label(source: Source) -> str:
    """'Title — section' in HTML."""
    label = f"<i>{escape(source.title or source.doc)}</i>"
    if source.section:
        label += f" — {escape(source.section)}"
    return label


def render_answer(answer: Answer, lang: Lang) -> str:
    """The reply for an Answer: its text, then its first sources (or suggestions when it declined)."""
    parts = [_FENCED.sub(r"<pre>\1</pre>", escape(answer.text.strip()))]
    if answer.answered and answer.sources:
        cited = [
            f"{number}. {source_label(source)}"
            for number, source in enumerate(answer.sources[:SOURCES_SHOWN], start=1)
        ]
        parts.append(f"<b>{text('sources', lang)}</b>\n" + "\n".join(cited))
    if not answer.answered and answer.suggestions:
        listed = "\n".join(f"• {escape(suggestion)}" for suggestion in answer.suggestions)
        parts.append(f"{text('suggestions', lang)}\n{listed}")
    return "\n\n".join(part for part in parts if part)


def render_passages(sources: Sequence[Source], first_number: int) -> str:
    """Quoted passages for the "More sources" button, numbered from `first_number`."""
    blocks = []
    for number, source in enumerate(sources, start=first_number):
        passage = escape(passage_plain(source.text, PASSAGE_CHARS))
        blocks.append(f"{number}. {source_label(source)}\n<blockquote>{passage}</blockquote>")
    return "\n\n".join(blocks)


def split_html(value: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split HTML into messages of at most `limit` characters, preferring paragraph, then line, then
    word boundaries; tags open at a cut are closed and reopened so every part parses on its own."""
    if len(value) <= limit:
        return [value]
    parts: list[str] = []
    rest = value
    reopen = ""
    while rest:
        rest = reopen + rest
        if len(rest) <= limit:
            parts.append(rest)
            break
        cut, open_tags = _find_cut(rest, limit)
        closing = "".join(f"</{name}>" for name, _ in reversed(open_tags))
        parts.append(rest[:cut].rstrip() + closing)
        reopen = "".join(tag for _, tag in open_tags)
        rest = rest[cut:].lstrip("\n ")
    return [part for part in parts if part.strip()]


def _find_cut(value: str, limit: int) -> tuple[int, list[tuple[str, str]]]:
    """Best cut position <= limit that is outside tags and entities, and the tags open there."""
    # Room for closing tags: reserve a margin so the part plus its closing tags fits.
    budget = limit - 64
    stack: list[tuple[str, str]] = []
    safe: dict[int, list[tuple[str, str]]] = {}
    position = 0
    best = {"paragraph": 0, "line": 0, "space": 0, "any": 0}
    while position < budget:
        char = value[position]
        if char == "<":
            end = value.find(">", position)
            if end == -1 or end >= budget:
                break
            tag = value[position : end + 1]
            match = _TAG.fullmatch(tag)
            if match:
                closing, name = match.group(1), match.group(2).lower()
                if closing:
                    if stack and stack[-1][0] == name:
                        stack.pop()
                else:
                    stack.append((name, tag))
            position = end + 1
            safe[position] = list(stack)
            best["any"] = position
            continue
        if char == "&":
            end = value.find(";", position, position + 10)
            position = end + 1 if end != -1 else position + 1
        else:
            position += 1
        safe[position] = list(stack)
        best["any"] = position
        if char == "\n" and position >= 2 and value[position - 2] == "\n":
            best["paragraph"] = position
        elif char == "\n":
            best["line"] = position
        elif char == " ":
            best["space"] = position
    for kind in ("paragraph", "line", "space", "any"):
        cut = best[kind]
        if cut > budget // 2 or (kind == "any" and cut > 0):
            return cut, safe.get(cut, [])
    return max(budget, 1), []


def fit_caption(value: str, limit: int = CAPTION_LIMIT) -> str:
    """A caption of at most `limit` visible characters (captions are short; plain text, escaped)."""
    return escape(truncate_plain(value, limit))
