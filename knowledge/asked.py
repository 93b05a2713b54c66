"""Questions readers are expected to ask, each tied to the passage that answers it.

A user's question is matched against these as well as against the passages: two questions read
alike even where a question and its answer share few words, and across languages. They live in
`<questions folder>/<article file stem>.jsonl`, one object a line:
    {"heading": ..., "lang": "en"|"zh", "question": ..., "quote": <verbatim text from the answer>}
(`line`, the heading's line in the article, is kept for readers). A question is tied to the unit
whose text holds its quote, else to the first unit of the section under its heading; one that
fits neither is left out with a warning, as is a line that does not parse.

The labelled questions users' style was learned from (`knowledge.evaluate.labelled_questions`, never a
locked part) are remembered the same way (`labelled_as_expected`): a new question worded like one of
them finds its passage through it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from knowledge.ingest import NUMBER_PREFIX

if TYPE_CHECKING:
    from knowledge.evaluate import Question

log = logging.getLogger(__name__)

SUFFIX = ".jsonl"


@dataclass(frozen=True)
class ExpectedQuestion:
    """One question a reader may ask, and where its answer is."""

    doc: str  # the article's file stem
    heading: str
    question: str
    quote: str


def question_files(folder: Path | None) -> list[Path]:
    """The question files of a folder, in a stable order (none when there is no folder)."""
    if folder is None or not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == SUFFIX)


def read_expected_questions(folder: Path | None, docs: Iterable[str]) -> list[ExpectedQuestion]:
    """The expected questions for the given articles; files for other articles are ignored."""
    wanted = set(docs)
    found: list[ExpectedQuestion] = []
    for path in question_files(folder):
        if path.stem not in wanted:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                question = " ".join(str(row["question"]).split())
                entry = ExpectedQuestion(path.stem, str(row.get("heading", "")), question, str(row["quote"]))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                log.warning("%s:%d: not an expected-question line (%s); left out", path.name, number, exc)
                continue
            if question:
                found.append(entry)
    return found


def labelled_as_expected(questions: Iterable[Question], docs: Iterable[str]) -> list[ExpectedQuestion]:
    """The labelled questions the corpus answers, as expected questions of their article, each quoting
    its first expected phrase. A question's `doc` names its article by file stem or by the stem's
    number ("002" for "002_217cc1a7b3c28abb"); one naming no article here, or with no answer, is left
    out."""
    stems = list(docs)
    found: list[ExpectedQuestion] = []
    for question in questions:
        if not question.doc or not question.answerable:
            continue
        stem = next((s for s in stems if s == question.doc or s.startswith(f"{question.doc}_")), None)
        text = " ".join(question.question.split())
        if stem is not None and text:
            found.append(ExpectedQuestion(stem, "", text, question.expect_any[0]))
    return found


def questions_digest(questions: Iterable[Question]) -> str:
    """A short digest of labelled questions (text, answer phrases, article), for an index fingerprint."""
    digest = hashlib.sha256()
    for question in questions:
        digest.update(json.dumps([question.doc, question.question, *question.expect_any]).encode())
    return digest.hexdigest()[:12]


def answering_units(questions: list[ExpectedQuestion], sections, units) -> tuple[list[str], list[int]]:
    """(question texts, the unit answering each), ordered by unit; questions that fit no unit are left out."""
    keys = [_plain(unit.text) for unit in units]
    by_doc: dict[str, list[int]] = {}
    for n, unit in enumerate(units):
        by_doc.setdefault(sections[unit.section].doc, []).append(n)
    tied: list[tuple[int, str]] = []
    lost = 0
    for entry in questions:
        unit = _unit_of(entry, by_doc.get(entry.doc, []), keys, sections, units)
        if unit is None:
            lost += 1
        else:
            tied.append((unit, entry.question))
    if lost:
        log.warning("%d expected questions fit no passage (quote and heading not found); left out", lost)
    tied.sort(key=lambda pair: pair[0])
    return [question for _, question in tied], [unit for unit, _ in tied]


def _unit_of(entry: ExpectedQuestion, candidates: list[int], keys: list[str], sections, units) -> int | None:
    quote = _plain(entry.quote)
    if quote:
        for n in candidates:
            if quote in keys[n]:
                return n
    heading = _heading_key(entry.heading)
    if heading:
        for n in candidates:
            path = sections[units[n].section].path
            if path and heading in _heading_key(path[-1]):
                return n
    return None


def _heading_key(heading: str) -> str:
    return _plain(NUMBER_PREFIX.sub("", heading))


def _plain(text: str) -> str:
    """Lower case, single spaces, no Markdown emphasis: how a quote is found in cleaned text."""
    return " ".join(text.replace("**", "").replace("`", "").lower().split())
