"""Raw Markdown-ish text files -> cleaned sections and FAQ entries, with zh/en sections paired.

Cleaning is done here, in code, so the corpus files stay exactly as the user gave them. It handles the
noise found in generated articles: chat-template tokens glued to headings, writing-template
placeholders, stray foreign phrases inside code, duplicated article halves and near-duplicate
sections, unclosed or stray code fences, `#` comments inside code that look like headings, and
headings without a space after the hashes.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

from knowledge.api import detect_lang
from knowledge.text import CODE_FENCE, cjk_ratio, dedup_key, shingles

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md", ".markdown")
CHAT_TOKEN = re.compile(r"<\|[A-Za-z_][A-Za-z0-9_]*\|>")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)\s*$")
HEADING = re.compile(r"^(#{1,6})(?!#)\s*(\S.*?)\s*#*\s*$")
# Writing-template placeholders: "(此处列出...)", "[Insert ... here]", "{title}", "<作者名>".
PLACEHOLDER = re.compile(
    r"[（(\[【<{]\s*(?:此处|在此|这里|请在|请填写|请输入|待补充|填写|insert|placeholder|your\s|todo|tbd)[^）)\]】>}\n]{0,80}[）)\]】>}]"
    r"|\{\{?\s*[a-z_]+\s*\}?\}",
    re.IGNORECASE,
)
TITLE_PLACEHOLDER = re.compile(
    r"^(?:文章标题|标题|article\s+title|title)\s*(?:[:：]\s*(.*))?$", re.IGNORECASE
)
SEPARATOR = re.compile(r"^\s*(?:-{3,}|\*{3,}|_{3,}|={3,})\s*$")
# A run of words with Latin accents at the end of a code line: a stray phrase from another language.
STRAY_ACCENTED = re.compile(r"\s+[A-Za-z]*[À-ÿ¿¡][A-Za-zÀ-ÿ]*(?:\s+[A-Za-zÀ-ÿ?¿¡!]+)*\s*$")
NUMBER_PREFIX = re.compile(r"^\s*((?:\d+\.)*\d+)\.?\s*")
FAQ_CONTAINER = re.compile(
    r"常见问题|问答|答疑|FAQ|Frequently\s+Asked|Q\s*&\s*A|Questions\s+and\s+Answers", re.IGNORECASE
)
QUESTION_HEADING = re.compile(
    r"^(?:问题\s*\d*\s*[:：]|Q\s*\d*\s*[:：.]|Question\s*\d*\s*[:：])\s*", re.IGNORECASE
)
QUESTION_WORDS = re.compile(
    r"^(?:how|what|why|when|where|which|who|is|are|can|do|does|should)\b|^(?:如何|怎样|怎么|什么|为什么|是否|哪些)",
    re.IGNORECASE,
)
ANSWER_LABEL = re.compile(
    r"^\s*(?:\*\*)?(?:解答|答案|答|回答|解决方案|解决方法|Answer|A|Solution)\s*(?:\*\*)?\s*[:：]\s*(?:\*\*)?\s*",
    re.IGNORECASE,
)
BOLD_ITEM = re.compile(r"^\s*(?:\d+[.)、]|[-*+])?\s*\*\*(.+?)\*\*\s*[:：]?\s*(.*)$")
INLINE_QA = re.compile(r"^\s*(?:\*\*)?(?:Q|问)\s*[:：]\s*(.+?)(?:\*\*)?\s*$", re.IGNORECASE)
MIN_DEDUP_CHARS = 24
# An article's opening saying what it is about, up to the first clause break: its topic.
STATED_TOPIC = {
    "zh": re.compile(r"本文(?:旨在|将|主要)?(?:深入)?(?:探讨|介绍|分析|讨论|研究)了?([^，。；：,;:\n]+)"),
    "en": re.compile(
        r"\b[Tt]his (?:article|paper|post|essay)\s+(?:aims to |will |sets out to |seeks to )?"
        r"(?:explores?|discuss(?:es)?|examines?|analy[sz]es?|introduces?|investigates?)\s+([^,.;:\n]+)"
    ),
}
OPENING_SECTIONS = 2
TITLE_CHARS = 80


@dataclass(frozen=True)
class Section:
    """One retrievable piece of an article: a section body or one FAQ entry."""

    id: str
    doc: str
    title: str
    path: tuple[str, ...]
    lang: str
    text: str
    kind: str = "section"  # "section" or "faq"
    question: str = ""
    pair: str = ""  # id of the same content in the other language, when the article has both

    @property
    def heading(self) -> str:
        """The section path as readers see it."""
        return " > ".join(self.path)


@dataclass
class Corpus:
    """Everything ingest produces from one folder."""

    sections: list[Section] = field(default_factory=list)
    titles: dict[str, str] = field(default_factory=dict)
    glossary: list[tuple[str, str]] = field(default_factory=list)  # (en, zh) mined from the text

    @property
    def documents(self) -> int:
        return len(self.titles)

    @property
    def faq_entries(self) -> int:
        return sum(1 for section in self.sections if section.kind == "faq")

    def by_id(self) -> dict[str, Section]:
        return {section.id: section for section in self.sections}


@dataclass
class _RawSection:
    level: int
    path: tuple[str, ...]
    lines: list[str]


def corpus_files(folder: Path) -> list[Path]:
    """The text files ingest reads from a folder, in a stable order."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)


def ingest_folder(folder: Path) -> Corpus:
    """Read every text file in a folder into one Corpus."""
    corpus = Corpus()
    for path in corpus_files(folder):
        raw = path.read_text(encoding="utf-8", errors="replace")
        title, sections = ingest_text(raw, doc=path.stem)
        corpus.titles[path.stem] = title
        corpus.sections.extend(sections)
        corpus.glossary.extend(mine_glossary(raw))
    log.info("ingested %d documents, %d sections", corpus.documents, len(corpus.sections))
    return corpus


def ingest_text(raw: str, doc: str) -> tuple[str, list[Section]]:
    """Clean one article and split it into sections and FAQ entries (pairs are set later); each
    section carries the article's title in the section's language (see `titles_by_language`)."""
    lines = clean_lines(raw)
    title, lines = extract_title(lines, fallback="")
    raw_sections = split_sections(lines)
    raw_sections = drop_duplicates(raw_sections)
    sections: list[Section] = []
    for raw_section in raw_sections:
        sections.extend(_to_sections(raw_section, doc, title, len(sections)))
    sections = merge_repeated_headings(sections)
    titles = titles_by_language(title, sections, first_heading(lines) or _readable_name(doc))
    sections = [replace(section, title=titles[section.lang]) for section in sections]
    return titles[detect_lang(title)] if title else next(iter(titles.values())), sections


def titles_by_language(title: str, sections: list[Section], fallback: str) -> dict[str, str]:
    """The article's title in each of its languages: the file's own title in its language; else the
    topic its opening says it explores ("本文旨在探讨…", "This article aims to explore…"); else the
    title in the other language; else `fallback`."""
    titles: dict[str, str] = {}
    if title:
        titles[detect_lang(title)] = title
    for lang in ("zh", "en"):
        opening = [s.text for s in sections if s.lang == lang][:OPENING_SECTIONS]
        if lang not in titles:
            titles[lang] = _stated_topic(opening, lang)
    known = [t for t in titles.values() if t]
    return {lang: t or (known[0] if known else fallback) for lang, t in titles.items()}


def _stated_topic(texts: list[str], lang: str) -> str:
    for text in texts:
        match = STATED_TOPIC[lang].search(text)
        if match:
            topic = match.group(1).strip()
            if 4 <= len(topic) <= TITLE_CHARS:
                return topic[0].upper() + topic[1:]
    return ""


# --- cleaning -------------------------------------------------------------------------------------


def clean_lines(raw: str) -> list[str]:
    """Normalise line ends, drop chat tokens and placeholders, and repair code fences."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    # A chat token glued before a heading starts a new line, so the heading is seen as one.
    text = CHAT_TOKEN.sub("\n", text)
    lines = []
    for line in text.split("\n"):
        line = PLACEHOLDER.sub("", line).rstrip()
        lines.append(line)
    return repair_fences(lines)


def repair_fences(lines: list[str]) -> list[str]:
    """Close code blocks that a heading or prose interrupts, and drop stray phrases inside code.

    A fence with no closing partner before the next Markdown heading (two or more hashes) is
    closed there, so an unclosed or stray fence cannot swallow the rest of the article. Single
    `#` lines inside code stay code: they are comments, not headings.
    """
    out: list[str] = []
    in_code = False
    fence_mark = ""
    for line in lines:
        fence = FENCE.match(line)
        if in_code:
            if fence and fence.group(1)[0] == fence_mark[0] and not fence.group(2):
                in_code = False
                out.append("```")
                continue
            if _breaks_code(line):
                out.append("```")
                in_code = False
            else:
                out.append(STRAY_ACCENTED.sub("", line) if _has_accent(line) else line)
                continue
        fence = FENCE.match(line)
        if fence:
            in_code = True
            fence_mark = fence.group(1)
            out.append("```" + fence.group(2))
            continue
        out.append(line)
    if in_code:
        out.append("```")
    return _drop_empty_code(out)


def _has_accent(line: str) -> bool:
    return any("À" <= ch <= "ÿ" or ch in "¿¡" for ch in line)


def _breaks_code(line: str) -> bool:
    """A line no code block contains: a Markdown heading, or a paragraph of CJK prose."""
    stripped = line.strip()
    if re.match(r"^#{2,6}(?!#)\s*\S", stripped) and not re.match(r"^#{2,}\s*[-=#*]*$", stripped):
        return True
    if len(stripped) >= 30 and not stripped.startswith(("#", "//", "--", "'", '"', "*")):
        return cjk_ratio(stripped) > 0.5 and not re.search(r"[=(){}\[\];]", stripped)
    return False


def _drop_empty_code(lines: list[str]) -> list[str]:
    """Remove code blocks left with nothing but blank lines or separators."""
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("```") and len(line) >= 3:
            end = index + 1
            while end < len(lines) and lines[end] != "```":
                end += 1
            body = [b for b in lines[index + 1 : end] if b.strip() and not SEPARATOR.match(b)]
            if body:
                out.extend(lines[index : end + 1])
            index = end + 1
            continue
        out.append(line)
        index += 1
    return out


def extract_title(lines: list[str], fallback: str) -> tuple[str, list[str]]:
    """Find the article title, resolving "文章标题" template headings; return it (or `fallback`
    when the file names none) and the rest."""
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        heading = HEADING.match(line)
        if heading:
            text = heading.group(2).strip()
            placeholder = TITLE_PLACEHOLDER.match(text)
            if placeholder:
                if placeholder.group(1):
                    return _strip_title(placeholder.group(1)), lines[:index] + lines[index + 1 :]
                # The title is the next heading or paragraph line.
                for follow in range(index + 1, min(index + 6, len(lines))):
                    candidate = lines[follow].strip()
                    if candidate:
                        nested = HEADING.match(candidate)
                        title = nested.group(2) if nested else candidate
                        return _strip_title(title), lines[:index] + lines[follow + 1 :]
            if len(heading.group(1)) == 1:
                return _strip_title(text), lines[:index] + lines[index + 1 :]
        break
    for line in lines:
        heading = HEADING.match(line)
        if heading and len(heading.group(1)) == 1 and not _in_code_before(lines, line):
            return _strip_title(heading.group(2)), lines
    return fallback, lines


def first_heading(lines: list[str]) -> str:
    """The first heading outside code: it names an untitled article better than its file name does."""
    for line in lines:
        heading = HEADING.match(line)
        if heading and not _in_code_before(lines, line):
            title = _strip_title(NUMBER_PREFIX.sub("", clean_heading(heading.group(2))))
            if title:
                return title
    return ""


def _readable_name(stem: str) -> str:
    """A file name as a title: "001_7c98db10fd0b30bb" -> "Article 001", "pricing-notes" -> "Pricing notes"."""
    match = re.fullmatch(r"(\d+)[_-][0-9a-f]{8,}", stem)
    if match:
        return f"Article {match.group(1)}"
    return stem.replace("_", " ").replace("-", " ").strip().capitalize() or stem


def _in_code_before(lines: list[str], target: str) -> bool:
    in_code = False
    for line in lines:
        if line.startswith("```"):
            in_code = not in_code
        if line is target:
            return in_code
    return False


def _strip_title(text: str) -> str:
    return text.strip().strip("《》\"'*").strip()


# --- sections -------------------------------------------------------------------------------------


def split_sections(lines: list[str]) -> list[_RawSection]:
    """Split cleaned lines at headings outside code, tracking each section's heading path."""
    sections: list[_RawSection] = [_RawSection(0, (), [])]
    stack: list[tuple[int, str]] = []
    in_code = False
    for line in lines:
        if line.startswith("```"):
            in_code = not in_code
            sections[-1].lines.append(line)
            continue
        heading = None if in_code else HEADING.match(line)
        if heading and not re.fullmatch(r"[-=*#\s]*", heading.group(2)):
            level = len(heading.group(1))
            text = clean_heading(heading.group(2))
            while stack and _closes(stack[-1], level, text):
                stack.pop()
            stack.append((level, text))
            sections.append(_RawSection(level, tuple(t for _, t in stack), []))
            continue
        sections[-1].lines.append(line)
    return sections


def _closes(open_heading: tuple[int, str], level: int, text: str) -> bool:
    """Whether a new heading ends an open one; section numbers win over inconsistent hash counts."""
    open_level, open_text = open_heading
    number = NUMBER_PREFIX.match(text)
    open_number = NUMBER_PREFIX.match(open_text)
    if (number and number.group(0).strip().endswith(".")) or (number and "." in number.group(1)):
        parts = number.group(1).split(".")
        if len(parts) == 1:
            # A chapter ("9. FAQ") sits right under the article title, whatever its hashes say.
            return open_level > 1 or bool(open_number)
        if open_number:
            open_parts = open_number.group(1).split(".")
            return not (len(open_parts) < len(parts) and parts[: len(open_parts)] == open_parts)
    return open_level >= level


def clean_heading(text: str) -> str:
    """Heading text without Markdown emphasis, trailing colons or placeholder remnants."""
    text = re.sub(r"[*_`]+", "", text).strip()
    text = re.sub(r"\s+", " ", text)
    return text.rstrip("：:").strip()


def drop_duplicates(sections: list[_RawSection]) -> list[_RawSection]:
    """Drop repeated sections and paragraphs (exact or nearly word for word) said earlier.

    A paragraph goes only when almost all of it is contained in one earlier paragraph, so text
    that only the later copy has is kept. It goes only from a section that repeats an earlier one
    (same heading, or mostly repeated paragraphs): an FAQ answer quoting a list from the body keeps
    its list. Code is compared exactly: translated comments differ.
    """
    seen_exact: dict[str, int] = {}
    seen_shingles: list[set[str]] = []
    owner: list[int] = []
    posting: dict[str, list[int]] = defaultdict(list)
    out: list[_RawSection] = []
    for number, section in enumerate(sections):
        paragraphs = _paragraphs(section.lines)
        verdicts: list[int | None] = []  # index of the earlier section this paragraph repeats
        for paragraph in paragraphs:
            key = dedup_key(paragraph)
            if len(key) < MIN_DEDUP_CHARS:
                verdicts.append(None)
                continue
            if key in seen_exact:
                verdicts.append(seen_exact[key])
                continue
            seen_exact[key] = number
            earlier = None
            if not paragraph.startswith("```"):
                grams = shingles(key)
                match = _contained(grams, seen_shingles, posting)
                earlier = owner[match] if match is not None else None
                for gram in grams:
                    posting[gram].append(len(seen_shingles))
                seen_shingles.append(grams)
                owner.append(number)
            verdicts.append(earlier)
        checked = [
            v for v, p in zip(verdicts, paragraphs, strict=True) if len(dedup_key(p)) >= MIN_DEDUP_CHARS
        ]
        repeated = [v for v in checked if v is not None]
        mostly_repeated = len(checked) >= 2 and len(repeated) >= 0.6 * len(checked)
        kept = [
            paragraph
            for paragraph, earlier in zip(paragraphs, verdicts, strict=True)
            if earlier is None
            or not (mostly_repeated or _same_heading(sections[earlier], section) or earlier == number)
        ]
        out.append(_RawSection(section.level, section.path, kept))
    return out


def _same_heading(a: _RawSection, b: _RawSection) -> bool:
    def name(section: _RawSection) -> str:
        return dedup_key(NUMBER_PREFIX.sub("", section.path[-1])) if section.path else ""

    return name(a) == name(b)


def _contained(grams: set[str], seen: list[set[str]], posting: dict[str, list[int]]) -> int | None:
    """The earlier paragraph that holds nearly all of these shingles, if any."""
    if not grams:
        return None
    overlap: Counter[int] = Counter()
    for gram in grams:
        overlap.update(posting.get(gram, ()))
    if not overlap:
        return None
    best, count = overlap.most_common(1)[0]
    if count / len(grams) >= 0.85 and count / max(len(seen[best]), 1) >= 0.5:
        return best
    return None


def _paragraphs(lines: list[str]) -> list[str]:
    """Blank-line separated blocks; a code block is one paragraph; separators are dropped."""
    out: list[str] = []
    current: list[str] = []
    in_code = False
    for line in lines:
        if line.startswith("```"):
            if not in_code and current:
                out.append("\n".join(current))
                current = []
            current.append(line)
            in_code = not in_code
            if not in_code:
                out.append("\n".join(current))
                current = []
            continue
        if in_code:
            current.append(line)
        elif not line.strip() or SEPARATOR.match(line):
            if current:
                out.append("\n".join(current))
                current = []
        else:
            current.append(line)
    if current:
        out.append("\n".join(current))
    return [p.strip("\n") for p in out if p.strip()]


def _to_sections(raw: _RawSection, doc: str, title: str, start: int) -> list[Section]:
    """One raw section -> a Section, or several FAQ entries when it holds a list of questions."""
    body = "\n\n".join(raw.lines).strip()
    prose = CODE_FENCE.sub("", body)
    if not body or (_only_lead_ins(prose) and "```" not in body):
        # Nothing left, or only the lead-ins of lists that were duplicates (said in full earlier).
        return []
    lang = detect_lang(prose or body)
    path = raw.path or (title,)
    in_faq = any(FAQ_CONTAINER.search(part) for part in path)
    name = path[-1]
    question = _heading_question(name, in_faq)
    made: list[Section] = []
    if question:
        made.append(_make(doc, title, path, lang, _strip_answer_label(body), start, "faq", question))
        return made
    entries = _list_questions(raw.lines, force=in_faq)
    if entries:
        rest = [p for p in raw.lines if not _is_entry_paragraph(p)]
        intro = "\n\n".join(rest).strip()
        if intro and len(dedup_key(intro)) >= MIN_DEDUP_CHARS:
            made.append(_make(doc, title, path, lang, intro, start, "section"))
        for q, answer in entries:
            entry_lang = detect_lang(q + CODE_FENCE.sub("", answer))
            made.append(_make(doc, title, (*path, q), entry_lang, answer, start + len(made), "faq", q))
        return made
    return [_make(doc, title, path, lang, body, start, "section")]


def merge_repeated_headings(sections: list[Section]) -> list[Section]:
    """One section per heading: text an article gives twice under one heading (an outline, then the
    full article; an entry answered twice) joins the first, so it is found, shown and cited as one
    section. Ids follow the merged order."""
    merged: dict[tuple, tuple[Section, list[str]]] = {}
    for section in sections:
        key = (section.path, section.lang, section.kind, section.question)
        merged.setdefault(key, (section, []))[1].append(section.text)
    return [
        replace(section, id=f"{section.doc}#{n}", text="\n\n".join(texts))
        for n, (section, texts) in enumerate(merged.values())
    ]


def _only_lead_ins(prose: str) -> bool:
    """Whether every paragraph left is a sentence leading into a list ("...面临着一系列挑战：")."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", prose) if p.strip()]
    return bool(paragraphs) and all(p.endswith(("：", ":")) and "\n" not in p for p in paragraphs)


def _make(
    doc: str, title: str, path: tuple[str, ...], lang: str, text: str, n: int, kind: str, q: str = ""
) -> Section:
    return Section(f"{doc}#{n}", doc, title, path, lang, text.strip(), kind, q)


def _heading_question(name: str, in_faq: bool) -> str:
    """The question a heading asks, if the heading is an FAQ question."""
    text = NUMBER_PREFIX.sub("", name).strip()
    labelled = QUESTION_HEADING.match(text)
    if labelled:
        return text[labelled.end() :].strip()
    if text.endswith(("?", "？")) and (in_faq or QUESTION_WORDS.search(text)):
        return text
    return ""


def _strip_answer_label(body: str) -> str:
    return ANSWER_LABEL.sub("", body, count=1)


def _is_entry_paragraph(paragraph: str) -> bool:
    first = paragraph.split("\n", 1)[0]
    return bool(BOLD_ITEM.match(first) or INLINE_QA.match(first))


def _list_questions(paragraphs: list[str], force: bool) -> list[tuple[str, str]]:
    """FAQ entries written as list items: `1. **Question?**` then the answer, or `Q: ... A: ...`.

    Outside an FAQ section only items ending in a question mark count, so ordinary bold lists
    ("**Data**: ...") stay plain sections.
    """
    lines = [line for paragraph in paragraphs for line in paragraph.split("\n")]
    entries: list[tuple[str, list[str]]] = []
    for line in lines:
        bold = BOLD_ITEM.match(line)
        inline = INLINE_QA.match(line)
        indented = line.startswith((" ", "\t"))
        if bold and not indented and not ANSWER_LABEL.match(line):
            q, tail = bold.group(1).strip(), bold.group(2).strip()
            is_question = q.endswith(("?", "？"))
            if is_question or (force and not tail):
                entries.append((q.rstrip("：:"), [tail] if tail else []))
                continue
        if inline and not indented:
            entries.append((inline.group(1).strip(), []))
            continue
        if entries:
            entries[-1][1].append(line)
    out = []
    for q, answer_lines in entries:
        answer = "\n".join(
            _strip_answer_label(re.sub(r"^\s*[-*+]\s+", "", a)) for a in answer_lines if a.strip()
        )
        if answer.strip():
            out.append((q, answer.strip()))
    return out if len(out) >= (1 if force else 2) else []


# --- zh/en pairing --------------------------------------------------------------------------------


def bilingual_docs(sections: list[Section]) -> set[str]:
    """Documents that hold a real share of both languages (one article written twice)."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for section in sections:
        counts[section.doc][section.lang] += len(section.text)
    docs = set()
    for doc, count in counts.items():
        total = sum(count.values())
        if total and min(count["en"], count["zh"]) / total >= 0.25:
            docs.add(doc)
    return docs


def pair_sections(sections: list[Section], similarity) -> list[Section]:
    """Set `pair` on zh/en sections that translate each other, within each bilingual document.

    `similarity(zh_texts, en_texts)` returns a cross-lingual similarity matrix; a pair must be each
    other's best match, and matching section numbers ("2.1") count in its favour.
    """
    by_doc: dict[str, list[int]] = defaultdict(list)
    for index, section in enumerate(sections):
        by_doc[section.doc].append(index)
    updated = list(sections)
    for doc in sorted(bilingual_docs(sections)):
        zh = [i for i in by_doc[doc] if sections[i].lang == "zh"]
        en = [i for i in by_doc[doc] if sections[i].lang == "en"]
        if not zh or not en:
            continue
        scores = similarity([_pair_text(sections[i]) for i in zh], [_pair_text(sections[i]) for i in en])
        for a, zi in enumerate(zh):
            for b, ei in enumerate(en):
                scores[a][b] += _structure_bonus(sections[zi], sections[ei], a / len(zh), b / len(en))
        best_en = [max(range(len(en)), key=lambda b, a=a: scores[a][b]) for a in range(len(zh))]
        best_zh = [max(range(len(zh)), key=lambda a, b=b: scores[a][b]) for b in range(len(en))]
        for a, b in enumerate(best_en):
            same_number = _number(sections[zh[a]]) and _number(sections[zh[a]]) == _number(sections[en[b]])
            if best_zh[b] == a and (scores[a][b] >= 0.45 or (same_number and scores[a][b] >= 0.15)):
                zi, ei = zh[a], en[b]
                updated[zi] = replace(updated[zi], pair=sections[ei].id)
                updated[ei] = replace(updated[ei], pair=sections[zi].id)
    return updated


def _number(section: Section) -> str:
    match = NUMBER_PREFIX.match(section.path[-1]) if section.path else None
    return match.group(1) if match and "." in match.group(0) else ""


def _pair_text(section: Section) -> str:
    # Headings alone pair well and keep the multilingual encoder's build-time cost low.
    return section.question or section.path[-1]


def _structure_bonus(zh: Section, en: Section, zh_pos: float, en_pos: float) -> float:
    bonus = 0.0
    zh_number = NUMBER_PREFIX.match(zh.path[-1])
    en_number = NUMBER_PREFIX.match(en.path[-1])
    if zh_number and en_number:
        bonus += 0.15 if zh_number.group(1) == en_number.group(1) else -0.1
    if zh.kind == en.kind:
        bonus += 0.05
    # Translations keep the article's order.
    bonus -= 0.3 * abs(zh_pos - en_pos)
    return bonus


# --- glossary mining ------------------------------------------------------------------------------

PARENTHESISED_TRANSLATION = re.compile(
    r"([\u4e00-\u9fff]{2,12})\s*[（(]\s*([A-Za-z][A-Za-z0-9 \-,.&']{1,60}?)\s*[）)]"
)


# Words that lead into a term inside a sentence ("我们使用变分自编码器"): what precedes them is not the term.
LEAD_IN = re.compile(r"^.*?(?:使用|采用|利用|通过|基于|包括|例如|比如|特别是|引入|一个|一种)")


def mine_glossary(raw: str) -> list[tuple[str, str]]:
    """(English, Chinese) term pairs written as `中文（English）` in the text itself.

    The Chinese side of a match may carry words before the term ("我们使用一个变分自编码器"); the
    term is the ending its captures share, or the shortest capture.
    """
    captures: dict[str, list[str]] = defaultdict(list)
    for match in PARENTHESISED_TRANSLATION.finditer(raw):
        zh, en = match.group(1), match.group(2).strip(" ,.")
        for part in re.split(r",\s*", en):
            part = part.strip().lower()
            if 2 <= len(part) <= 60 and not part.isdigit():
                captures[part].append(zh)
    pairs = []
    for en, zhs in captures.items():
        shared = _common_suffix(zhs) if len(set(zhs)) > 1 else zhs[0]
        term = shared if len(shared) >= 2 else min(zhs, key=len)
        while (lead := LEAD_IN.match(term)) and len(term) - lead.end() >= 2:
            term = term[lead.end() :]
        pairs.append((en, term.lstrip("和与及或是的在")))
    return [(en, zh) for en, zh in pairs if len(zh) >= 2]


def _common_suffix(words: list[str]) -> str:
    reversed_words = [w[::-1] for w in words]
    shortest = min(reversed_words, key=len)
    size = 0
    while size < len(shortest) and all(w[size] == shortest[size] for w in reversed_words):
        size += 1
    return shortest[:size][::-1]
