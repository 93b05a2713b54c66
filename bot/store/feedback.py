"""The answers and feedback tables: each answer's question and sources (for "More sources" and the
/stats list of unanswered questions) and the users' helpful / not helpful votes on it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from textwrap import dedent

from bot.store.database import Database, utc_day
from knowledge.api import Source

SQLITE_MIN_INT, SQLITE_MAX_INT = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class StoredAnswer:
    """An answer as kept for "More sources" and feedback."""

    id: int
    chat_id: int
    lang: str
    answered: bool
    question: str
    sources: list[Source]


class FeedbackTables(Database):
    """Answers given and the votes on them."""

    TABLES = dedent(
        """
        CREATE TABLE IF NOT EXISTS answers (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            chat_id INTEGER NOT NULL,
            user_id INTEGER,
            lang TEXT NOT NULL,
            answered INTEGER NOT NULL,
            question TEXT NOT NULL,
            sources TEXT NOT NULL          -- JSON list of knowledge.api.Source objects
        );
        CREATE TABLE IF NOT EXISTS feedback (
            answer_id INTEGER NOT NULL REFERENCES answers(id),
            user_id INTEGER NOT NULL,
            helpful INTEGER NOT NULL,
            ts REAL NOT NULL,
            PRIMARY KEY (answer_id, user_id)
        );
        """
    )

    def record_answer(
        self,
        chat_id: int,
        user_id: int | None,
        lang: str,
        answered: bool,
        question: str,
        sources: list[Source],
    ) -> int:
        """Keep an answer's sources for "More sources"; returns its id."""
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO answers(ts, chat_id, user_id, lang, answered, question, sources)"
                " VALUES (?,?,?,?,?,?,?)",
                (
                    time.time(),
                    chat_id,
                    user_id,
                    lang,
                    int(answered),
                    question,
                    json.dumps([s.to_json(with_link=True) for s in sources]),
                ),
            )
            return int(cursor.lastrowid)

    def answer(self, answer_id: int) -> StoredAnswer | None:
        """The stored answer, or None (also for ids no row can have, e.g. from forged button data)."""
        if not SQLITE_MIN_INT <= answer_id <= SQLITE_MAX_INT:
            return None
        rows = self._read(
            "SELECT id, chat_id, lang, answered, question, sources FROM answers WHERE id = ?", (answer_id,)
        )
        if not rows:
            return None
        id_, chat_id, lang, answered, question, sources = rows[0]
        return StoredAnswer(
            id_, chat_id, lang, bool(answered), question, [Source.from_json(s) for s in json.loads(sources)]
        )

    def record_feedback(self, answer_id: int, user_id: int, helpful: bool) -> None:
        """One vote per user and answer; a second vote replaces the first."""
        self._write_or_defer(
            "INSERT INTO feedback(answer_id, user_id, helpful, ts) VALUES (?,?,?,?)"
            " ON CONFLICT(answer_id, user_id) DO UPDATE SET helpful = excluded.helpful, ts = excluded.ts",
            (answer_id, user_id, int(helpful), time.time()),
        )

    def feedback_by_day(self, since_days: int = 7) -> dict[str, tuple[int, int]]:
        """{day: (helpful, not helpful)} for votes cast in the last `since_days` days (UTC days)."""
        since = time.time() - since_days * 86400
        rows = self._read("SELECT ts, helpful FROM feedback WHERE ts >= ?", (since,))
        first_day = utc_day(time.time() - (since_days - 1) * 86400)
        days: dict[str, list[int]] = {}
        for ts, helpful in rows:
            day = utc_day(ts)
            if day >= first_day:
                counts = days.setdefault(day, [0, 0])
                counts[0 if helpful else 1] += 1
        return {day: (good, bad) for day, (good, bad) in days.items()}

    def feedback_counts(self) -> tuple[int, int]:
        """(helpful, not helpful) over all answers."""
        rows = self._read("SELECT COALESCE(SUM(helpful), 0), COUNT(*) FROM feedback")
        helpful, total = rows[0]
        return int(helpful), int(total) - int(helpful)

    def top_unanswered(self, limit: int = 10, since_days: int = 7) -> list[tuple[str, int]]:
        """Most frequent declined questions (normalised by case and spaces), most frequent first."""
        since = time.time() - since_days * 86400
        rows = self._read(
            "SELECT lower(trim(question)) AS q, COUNT(*) AS n FROM answers WHERE answered = 0 AND ts >= ?"
            " AND question != ''"  # forgotten
            " GROUP BY q ORDER BY n DESC, q LIMIT ?",
            (since, limit),
        )
        return [(question, count) for question, count in rows]
