"""The bot's SQLite store under DATA_DIR: usage, answers and feedback, admin audit log, job records.

WAL mode lets readers run beside one writer; busy_timeout makes concurrent writers (threads or other
processes) wait for each other instead of failing. Every write is its own committed transaction, so a
crash loses at most the write in flight.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    day TEXT NOT NULL,
    kind TEXT NOT NULL,            -- question | image | text | command
    outcome TEXT NOT NULL,         -- answered | declined | ok | rate_limited | invalid | unavailable | error
    user_id INTEGER,
    chat_id INTEGER NOT NULL,
    lang TEXT
);
CREATE INDEX IF NOT EXISTS usage_day_kind ON usage(day, kind, outcome);
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    chat_id INTEGER NOT NULL,
    user_id INTEGER,
    lang TEXT NOT NULL,
    answered INTEGER NOT NULL,
    question TEXT NOT NULL,
    sources TEXT NOT NULL          -- JSON list of {doc, title, section, lang, text, score}
);
CREATE TABLE IF NOT EXISTS feedback (
    answer_id INTEGER NOT NULL REFERENCES answers(id),
    user_id INTEGER NOT NULL,
    helpful INTEGER NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (answer_id, user_id)
);
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    user_id INTEGER,
    chat_id INTEGER,
    command TEXT NOT NULL,
    args TEXT NOT NULL,
    result TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,          -- running | succeeded | failed | cancelled
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    requested_by INTEGER,
    chat_id INTEGER,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS chats (
    chat_id INTEGER PRIMARY KEY,
    blocked INTEGER NOT NULL DEFAULT 0,
    migrated_to INTEGER
);
"""


@dataclass(frozen=True)
class StoredAnswer:
    """An answer as kept for "More sources" and feedback."""

    id: int
    chat_id: int
    lang: str
    answered: bool
    question: str
    sources: list[dict]


@dataclass(frozen=True)
class JobRecord:
    """A background job (a retrain) as recorded; `detail` holds its options, pid, last progress,
    the trainer's report and the error, if any."""

    id: str
    kind: str
    status: str
    created_at: float
    updated_at: float
    requested_by: int | None
    chat_id: int | None
    detail: dict


def _day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


class Store:
    """One SQLite file; safe to share between the event loop and worker threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._blocked: set[int] = set()  # cached: checked on every incoming update

    def open(self) -> None:
        """Create the file and schema if needed; idempotent."""
        if self._connection is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False, isolation_level=None)
        connection.execute("PRAGMA busy_timeout=10000")
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA foreign_keys=ON")
        connection.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}PRAGMA user_version={SCHEMA_VERSION};COMMIT;")
        self._connection = connection
        self._blocked = {row[0] for row in self._read("SELECT chat_id FROM chats WHERE blocked = 1")}

    def close(self) -> None:
        """Close the connection (a checkpoint folds the WAL back into the file)."""
        if self._connection is not None:
            with self._lock:
                self._connection.close()
            self._connection = None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        connection = self._require()
        with self._lock:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def _read(self, sql: str, params: tuple = ()) -> list[tuple]:
        connection = self._require()
        with self._lock:
            return connection.execute(sql, params).fetchall()

    def _require(self) -> sqlite3.Connection:
        if self._connection is None:
            raise RuntimeError("Store is not open")
        return self._connection

    # Usage -----------------------------------------------------------------------------------------

    def record_usage(
        self, kind: str, outcome: str, chat_id: int, user_id: int | None = None, lang: str | None = None
    ) -> None:
        """Count one request."""
        now = time.time()
        with self._write() as db:
            db.execute(
                "INSERT INTO usage(ts, day, kind, outcome, user_id, chat_id, lang) VALUES (?,?,?,?,?,?,?)",
                (now, _day(now), kind, outcome, user_id, chat_id, lang),
            )

    def usage_counts(self, since_days: int = 7) -> dict[tuple[str, str, str], int]:
        """{(day, kind, outcome): count} for the last `since_days` days."""
        since = _day(time.time() - (since_days - 1) * 86400)
        rows = self._read(
            "SELECT day, kind, outcome, COUNT(*) FROM usage WHERE day >= ? GROUP BY day, kind, outcome",
            (since,),
        )
        return {(day, kind, outcome): count for day, kind, outcome, count in rows}

    # Answers and feedback --------------------------------------------------------------------------

    def record_answer(
        self, chat_id: int, user_id: int | None, lang: str, answered: bool, question: str, sources: list[dict]
    ) -> int:
        """Keep an answer's sources for "More sources"; returns its id."""
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO answers(ts, chat_id, user_id, lang, answered, question, sources)"
                " VALUES (?,?,?,?,?,?,?)",
                (time.time(), chat_id, user_id, lang, int(answered), question, json.dumps(sources)),
            )
            return int(cursor.lastrowid)

    def answer(self, answer_id: int) -> StoredAnswer | None:
        """The stored answer, or None."""
        rows = self._read(
            "SELECT id, chat_id, lang, answered, question, sources FROM answers WHERE id = ?", (answer_id,)
        )
        if not rows:
            return None
        id_, chat_id, lang, answered, question, sources = rows[0]
        return StoredAnswer(id_, chat_id, lang, bool(answered), question, json.loads(sources))

    def record_feedback(self, answer_id: int, user_id: int, helpful: bool) -> None:
        """One vote per user and answer; a second vote replaces the first."""
        with self._write() as db:
            db.execute(
                "INSERT INTO feedback(answer_id, user_id, helpful, ts) VALUES (?,?,?,?)"
                " ON CONFLICT(answer_id, user_id) DO UPDATE SET helpful = excluded.helpful, ts = excluded.ts",
                (answer_id, user_id, int(helpful), time.time()),
            )

    def feedback_by_day(self, since_days: int = 7) -> dict[str, tuple[int, int]]:
        """{day: (helpful, not helpful)} for votes cast in the last `since_days` days (UTC days)."""
        since = time.time() - since_days * 86400
        rows = self._read("SELECT ts, helpful FROM feedback WHERE ts >= ?", (since,))
        first_day = _day(time.time() - (since_days - 1) * 86400)
        days: dict[str, list[int]] = {}
        for ts, helpful in rows:
            day = _day(ts)
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
            " GROUP BY q ORDER BY n DESC, q LIMIT ?",
            (since, limit),
        )
        return [(question, count) for question, count in rows]

    # Admin audit log -------------------------------------------------------------------------------

    def audit(self, user_id: int | None, chat_id: int | None, command: str, args: str, result: str) -> None:
        """Record who ran which admin command, when, and how it ended."""
        with self._write() as db:
            db.execute(
                "INSERT INTO audit_log(ts, user_id, chat_id, command, args, result) VALUES (?,?,?,?,?,?)",
                (time.time(), user_id, chat_id, command, args, result),
            )

    def audit_entries(self, limit: int = 50) -> list[dict]:
        """Newest first."""
        rows = self._read(
            "SELECT ts, user_id, chat_id, command, args, result FROM audit_log ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        keys = ("ts", "user_id", "chat_id", "command", "args", "result")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    # Job records -----------------------------------------------------------------------------------

    def create_job(
        self,
        job_id: str,
        kind: str,
        requested_by: int | None,
        chat_id: int | None,
        detail: dict | None = None,
    ) -> None:
        """Record a job as running."""
        now = time.time()
        with self._write() as db:
            db.execute(
                "INSERT INTO jobs(id, kind, status, created_at, updated_at, requested_by, chat_id, detail)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (job_id, kind, "running", now, now, requested_by, chat_id, json.dumps(detail or {})),
            )

    def update_job(self, job_id: str, status: str, detail: dict | None = None) -> None:
        """Set a job's status (and detail, when given)."""
        with self._write() as db:
            if detail is None:
                db.execute(
                    "UPDATE jobs SET status = ?, updated_at = ? WHERE id = ?", (status, time.time(), job_id)
                )
            else:
                db.execute(
                    "UPDATE jobs SET status = ?, detail = ?, updated_at = ? WHERE id = ?",
                    (status, json.dumps(detail), time.time(), job_id),
                )

    def jobs(self, status: str | None = None) -> list[JobRecord]:
        """Job records, newest first, optionally only those with `status`."""
        sql = "SELECT id, kind, status, created_at, updated_at, requested_by, chat_id, detail FROM jobs"
        params: tuple = ()
        if status is not None:
            sql += " WHERE status = ?"
            params = (status,)
        rows = self._read(sql + " ORDER BY created_at DESC", params)
        return [JobRecord(*row[:7], detail=json.loads(row[7])) for row in rows]

    def job(self, job_id: str) -> JobRecord | None:
        """One job record, or None."""
        rows = self._read(
            "SELECT id, kind, status, created_at, updated_at, requested_by, chat_id, detail FROM jobs WHERE id = ?",
            (job_id,),
        )
        return JobRecord(*rows[0][:7], detail=json.loads(rows[0][7])) if rows else None

    def fail_interrupted_jobs(self) -> list[JobRecord]:
        """Mark jobs left 'running' by a previous process as failed; returns them (call once at start)."""
        interrupted = self.jobs("running")
        for job in interrupted:
            self.update_job(job.id, "failed", {**job.detail, "error": "interrupted by a restart"})
        return interrupted

    # Chats -----------------------------------------------------------------------------------------

    def set_blocked(self, chat_id: int, blocked: bool) -> None:
        """Remember that a user blocked (or unblocked) the bot."""
        with self._write() as db:
            db.execute(
                "INSERT INTO chats(chat_id, blocked) VALUES (?, ?)"
                " ON CONFLICT(chat_id) DO UPDATE SET blocked = excluded.blocked",
                (chat_id, int(blocked)),
            )
        if blocked:
            self._blocked.add(chat_id)
        else:
            self._blocked.discard(chat_id)

    def is_blocked(self, chat_id: int) -> bool:
        """True when our last message to the chat failed because the user blocked the bot."""
        return chat_id in self._blocked

    def record_migration(self, old_chat_id: int, new_chat_id: int) -> None:
        """A group became a supergroup: remember the new id and carry history over."""
        with self._write() as db:
            db.execute(
                "INSERT INTO chats(chat_id, migrated_to) VALUES (?, ?)"
                " ON CONFLICT(chat_id) DO UPDATE SET migrated_to = excluded.migrated_to",
                (old_chat_id, new_chat_id),
            )
            db.execute("UPDATE answers SET chat_id = ? WHERE chat_id = ?", (new_chat_id, old_chat_id))

    def migrated_to(self, chat_id: int) -> int | None:
        """The supergroup id a group became, if it did."""
        rows = self._read("SELECT migrated_to FROM chats WHERE chat_id = ?", (chat_id,))
        return rows[0][0] if rows and rows[0][0] is not None else None
