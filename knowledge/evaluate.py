"""Score a question set (JSONL: id, question, expect_any, kind) against a KnowledgeBase."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from knowledge.api import Answer, detect_lang

EVAL_DIR = Path(__file__).parent / "eval"
# The question sets written blind, by helpers who saw only the seed articles (a locked part is
# never read for training).
BLIND_SETS = (
    "blind.jsonl",
    "blind2.jsonl",
    "blind4.jsonl",
    "blind5.jsonl",
    "blind6.jsonl",
    "blind7.jsonl",
    "blind8.jsonl",
    "blind9.jsonl",
    "blind10.jsonl",
    "blind11.jsonl",
    "blind12.jsonl",
    "blind13.jsonl",
    "blind14.jsonl",
    "blind15.jsonl",
)
# Every labelled question set training reads: the team's own, then the blind ones.
LABELLED_SETS = ("dev.jsonl", "probe.jsonl", *BLIND_SETS)
# Blind sets kept out of the memory and out of training, so that their figures stay out of sample:
# written like the others, scored, never fitted on.
HELD_OUT_SETS = ("blind16.jsonl", "blind17.jsonl")


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    expect_any: tuple[str, ...]
    kind: str
    split: str = ""  # "tune" or "locked" in the blind set; empty elsewhere
    doc: str = ""

    @property
    def off_topic(self) -> bool:
        return not self.expect_any

    @property
    def answerable(self) -> bool:
        """The corpus answers it: it has expected phrases and is not marked in-domain but uncovered."""
        return bool(self.expect_any) and self.kind != "uncovered"


@dataclass
class Scores:
    """Hit@1, hit@5 and MRR per group, and decline shares."""

    hits1: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    hits5: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    ranks: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    off_topic_declined: list[bool] = field(default_factory=list)
    uncovered_declined: list[bool] = field(default_factory=list)  # in-domain, not in the corpus
    answerable_declined: list[bool] = field(default_factory=list)
    # Of the answerable: the answer's own text holds the answer (what a reader sees without opening
    # the sources), and the first source does (the ranking alone); hit@1 counts either.
    text_holds: list[bool] = field(default_factory=list)
    first_source_holds: list[bool] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)

    def table(self) -> dict[str, dict[str, float]]:
        return {
            group: {
                "n": len(values),
                "hit@1": _mean(self.hits1[group]),
                "hit@5": _mean(self.hits5[group]),
                "mrr": _mean(self.ranks[group]),
            }
            for group, values in sorted(self.hits5.items())
        }

    @property
    def off_topic_declined_share(self) -> float:
        return _mean([float(x) for x in self.off_topic_declined])

    @property
    def uncovered_declined_share(self) -> float:
        return _mean([float(x) for x in self.uncovered_declined])

    @property
    def answerable_declined_share(self) -> float:
        return _mean([float(x) for x in self.answerable_declined])


def read_questions(path: Path) -> list[Question]:
    """Parse a JSONL question set; a bad line names its number."""
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            questions.append(
                Question(
                    str(row.get("id", number)),
                    row["question"],
                    tuple(row.get("expect_any") or ()),
                    row.get("kind", ""),
                    row.get("split") or "",
                    row.get("doc") or "",
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a question line ({exc})") from None
    return questions


def labelled_questions(folder: Path = EVAL_DIR) -> tuple[list[Question], dict[str, int]]:
    """The labelled questions (of the blind set, its tuning part only), and how many came from each
    file: what the ranker and answer models are fitted on, and what the index remembers."""
    questions: list[Question] = []
    counts: dict[str, int] = {}
    for name in LABELLED_SETS:
        path = folder / name
        if not path.exists():
            continue
        usable = [q for q in read_questions(path) if q.split != "locked"]
        counts[name] = len(usable)
        questions.extend(usable)
    return questions, counts


def rank_of_hit(answer: Answer, expect_any: tuple[str, ...], k: int) -> int | None:
    """1-based rank of the first source (the answer text counts as rank 1) holding an expected substring."""
    if not answer.answered:
        return None
    if holds(answer.text, expect_any):
        return 1
    for rank, source in enumerate(answer.sources[:k], 1):
        if holds(source.text, expect_any):
            return rank
    return None


def holds(text: str, expect_any: tuple[str, ...]) -> bool:
    """Whether text holds one of the expected substrings (case aside)."""
    lowered = text.lower()
    return any(e.lower() in lowered for e in expect_any)


def groups_of(question: Question) -> list[str]:
    """The groups a question counts in: its kind, its language (or cross), and overall."""
    if question.kind == "cross":
        return ["kind:cross", "lang:cross", "all"]
    return [f"kind:{question.kind}", f"lang:{detect_lang(question.question)}", "all"]


def evaluate(ask, questions: list[Question], k: int = 5) -> Scores:
    """Run every question through `ask(question, k) -> Answer` and score it."""
    scores = Scores()
    for question in questions:
        answer = ask(question.question, k)
        if question.off_topic:
            declined = (
                scores.uncovered_declined if question.kind == "uncovered" else scores.off_topic_declined
            )
            declined.append(not answer.answered)
            continue
        scores.answerable_declined.append(not answer.answered)
        rank = rank_of_hit(answer, question.expect_any, k)
        scores.text_holds.append(answer.answered and holds(answer.text, question.expect_any))
        scores.first_source_holds.append(
            answer.answered and bool(answer.sources) and holds(answer.sources[0].text, question.expect_any)
        )
        for group in groups_of(question):
            scores.hits1[group].append(1.0 if rank == 1 else 0.0)
            scores.hits5[group].append(1.0 if rank is not None else 0.0)
            scores.ranks[group].append(1.0 / rank if rank else 0.0)
        if rank != 1:
            top = answer.sources[0].section if answer.sources else "-"
            scores.misses.append(
                f"{question.id} rank={rank} answered={answer.answered} q={question.question!r} top={top!r}"
            )
    return scores


def report(scores: Scores) -> str:
    """Plain-text table of the figures."""
    lines = [f"{'group':<16}{'n':>5}{'hit@1':>8}{'hit@5':>8}{'MRR':>8}"]
    for group, row in scores.table().items():
        lines.append(f"{group:<16}{row['n']:>5}{row['hit@1']:>8.3f}{row['hit@5']:>8.3f}{row['mrr']:>8.3f}")
    lines.append(
        f"off-topic declined: {scores.off_topic_declined_share:.3f} (n={len(scores.off_topic_declined)}); "
        f"answerable declined: {scores.answerable_declined_share:.3f} (n={len(scores.answerable_declined)}); "
        f"uncovered not answered: {scores.uncovered_declined_share:.3f} (n={len(scores.uncovered_declined)})"
    )
    lines.append(
        f"answer text holds the answer: {_mean([float(x) for x in scores.text_holds]):.3f}; "
        f"first source holds it: {_mean([float(x) for x in scores.first_source_holds]):.3f} "
        "(hit@1 counts either)"
    )
    return "\n".join(lines)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
