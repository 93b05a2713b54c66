"""The bot's SQLite store under DATA_DIR: usage, answers and feedback, admin audit log, job records.

WAL mode lets readers run beside one writer; busy_timeout makes concurrent writers (threads or other
processes) wait for each other instead of failing. Every write is its own committed transaction, so a
crash loses at most the write in flight. When another writer holds the file longer than the busy
timeout, counters and votes (usage, feedback, audit) are kept in memory and written by the next write
or `flush_deferred`, instead of being lost.

Two tables make replies survive faults: `inbox`, a journal of received updates (an update is recorded
before it is handled and marked done after, so updates fetched but not handled when the process died
are handled after a restart), and `outbox`, replies that could not be delivered yet and are retried:
texts and photos alike (a photo's PNG is a BLOB in its row, so the row and its bytes are written and
deleted in one transaction, with no file beside the store to leak or go missing).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # 2: outbox rows may hold a photo (then `html` is its caption) and have a parse mode
DEFER_RETRY_S = 2.0  # after a write found the file locked, later rows wait this long before trying
SQLITE_MIN_INT, SQLITE_MAX_INT = -(2**63), 2**63 - 1

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
CREATE TABLE IF NOT EXISTS inbox (
    update_id INTEGER PRIMARY KEY,
    payload TEXT NOT NULL,         -- the update as Telegram sent it (JSON)
    received_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    done_at REAL                   -- NULL while not handled to the end
);
CREATE INDEX IF NOT EXISTS inbox_pending ON inbox(done_at);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    chat_id INTEGER NOT NULL,
    html TEXT NOT NULL,            -- the message, or the photo's caption ('' for none)
    reply_to INTEGER,
    markup TEXT,                   -- JSON reply_markup, or NULL
    created_at REAL NOT NULL,
    next_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    photo BLOB,                    -- the PNG of a photo; NULL for a text message
    parse_mode TEXT DEFAULT 'HTML' -- how `html` is marked up; NULL for plain text
);
CREATE INDEX IF NOT EXISTS outbox_chat ON outbox(chat_id, id);
"""
# Columns added to the outbox after schema version 1, added to older files when they are opened.
_OUTBOX_ADDED_COLUMNS = {
    "photo": "BLOB",
    "parse_mode": "TEXT DEFAULT 'HTML'",
}


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
class OutboxItem:
    """A reply waiting to be delivered: a text message, or a photo with `html` as its caption."""

    id: int
    chat_id: int
    html: str
    reply_to: int | None
    markup: dict | None
    created_at: float
    attempts: int
    photo: bytes | None = None
    parse_mode: str | None = "HTML"

    @property
    def kind(self) -> str:
        """'photo' or 'text'."""
        return "text" if self.photo is None else "photo"


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

    def __init__(self, path: Path, busy_timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._blocked: set[int] = set()  # cached: checked on every incoming update
        self._deferred: list[tuple[str, tuple]] = []  # writes kept while another writer held the file
        self._retry_at = 0.0

    def open(self) -> None:
        """Create the file and schema if needed; idempotent."""
        if self._connection is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(
            self.path, timeout=self.busy_timeout_s, check_same_thread=False, isolation_level=None
        )
        connection.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA foreign_keys=ON")
        connection.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}COMMIT;")
        _upgrade(connection)
        self._connection = connection
        self._blocked = {row[0] for row in self._read("SELECT chat_id FROM chats WHERE blocked = 1")}

    def close(self) -> None:
        """Write what was deferred, then close the connection (a checkpoint folds the WAL back into the
        file)."""
        if self._connection is not None:
            try:
                self.flush_deferred()
            except sqlite3.OperationalError as exc:
                logger.error("closing the store with %d unwritten rows: %s", len(self._deferred), exc)
            with self._lock:
                self._connection.close()
            self._connection = None

    @property
    def is_open(self) -> bool:
        return self._connection is not None

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

    def _write_or_defer(self, sql: str, params: tuple) -> None:
        """One row that must not be lost but is not needed at once: written now, or when the file is
        free again if another writer holds it past the busy timeout."""
        if self._deferred and time.monotonic() < self._retry_at:
            # Still locked a moment ago: keep the row without stalling the caller for another timeout.
            with self._lock:
                self._deferred.append((sql, params))
            return
        try:
            self.flush_deferred()
            with self._write() as db:
                db.execute(sql, params)
        except sqlite3.OperationalError as exc:
            if not _is_locked(exc):
                raise
            with self._lock:
                self._deferred.append((sql, params))
            self._retry_at = time.monotonic() + DEFER_RETRY_S
            logger.warning("store busy (%s); %d rows kept to write later", exc, len(self._deferred))

    def flush_deferred(self) -> int:
        """Write the rows kept while the file was locked; returns how many were written."""
        if not self._deferred:
            return 0
        with self._write() as db:
            pending, self._deferred = self._deferred, []
            try:
                for sql, params in pending:
                    db.execute(sql, params)
            except BaseException:
                self._deferred = pending + self._deferred
                raise
        return len(pending)

    @property
    def deferred(self) -> int:
        """Rows waiting for the file to be free."""
        return len(self._deferred)

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
        self._write_or_defer(
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
        """The stored answer, or None (also for ids no row can have, e.g. from forged button data)."""
        if not SQLITE_MIN_INT <= answer_id <= SQLITE_MAX_INT:
            return None
        rows = self._read(
            "SELECT id, chat_id, lang, answered, question, sources FROM answers WHERE id = ?", (answer_id,)
        )
        if not rows:
            return None
        id_, chat_id, lang, answered, question, sources = rows[0]
        return StoredAnswer(id_, chat_id, lang, bool(answered), question, json.loads(sources))

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
        self._write_or_defer(
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

    # Inbox: the journal of received updates ------------------------------------------------------

    def journal_update(self, update_id: int, payload: str) -> bool:
        """Record a received update; False when it was recorded before (Telegram sent it again)."""
        with self._write() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO inbox(update_id, payload, received_at) VALUES (?,?,?)",
                (update_id, payload, time.time()),
            )
            return cursor.rowcount == 1

    def finish_update(self, update_id: int) -> None:
        """The update was handled to the end."""
        with self._write() as db:
            db.execute("UPDATE inbox SET done_at = ? WHERE update_id = ?", (time.time(), update_id))

    def unfinished_updates(self, max_attempts: int) -> tuple[list[tuple[int, str]], list[int]]:
        """Updates a previous process received but did not finish, as (update_id, payload), each
        counted as one more attempt; and the ids given up after `max_attempts` (marked done, so an
        update that crashes the process cannot crash it forever)."""
        with self._write() as db:
            rows = db.execute(
                "SELECT update_id, payload, attempts FROM inbox WHERE done_at IS NULL ORDER BY update_id"
            ).fetchall()
            retry = [(update_id, payload) for update_id, payload, attempts in rows if attempts < max_attempts]
            given_up = [update_id for update_id, _, attempts in rows if attempts >= max_attempts]
            now = time.time()
            db.executemany(
                "UPDATE inbox SET attempts = attempts + 1 WHERE update_id = ?", [(u,) for u, _ in retry]
            )
            db.executemany("UPDATE inbox SET done_at = ? WHERE update_id = ?", [(now, u) for u in given_up])
        return retry, given_up

    def prune_inbox(self, older_than_s: float) -> int:
        """Forget finished updates older than `older_than_s` (Telegram keeps updates for 24 hours)."""
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM inbox WHERE done_at IS NOT NULL AND received_at < ?",
                (time.time() - older_than_s,),
            )
            return cursor.rowcount

    # Outbox: replies not delivered yet ------------------------------------------------------------

    def queue_reply(
        self,
        chat_id: int,
        html: str,
        reply_to: int | None = None,
        markup: dict | None = None,
        delay_s: float = 0.0,
        *,
        photo: bytes | None = None,
        parse_mode: str | None = "HTML",
    ) -> int:
        """Keep a reply to deliver later: a text message, or with `photo` (PNG bytes) a photo captioned
        `html`; returns its id."""
        now = time.time()
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO outbox(chat_id, html, photo, parse_mode, reply_to, markup, created_at, next_at)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (
                    chat_id,
                    html,
                    photo,
                    parse_mode,
                    reply_to,
                    json.dumps(markup) if markup else None,
                    now,
                    now + delay_s,
                ),
            )
            return int(cursor.lastrowid)

    def due_replies(self, limit: int = 50) -> list[OutboxItem]:
        """Replies whose next attempt is due, oldest first; none that an earlier reply to the same chat,
        not due yet, must precede (a chat gets its replies in the order they were made)."""
        now = time.time()
        rows = self._read(
            "SELECT id, chat_id, html, reply_to, markup, created_at, attempts, photo, parse_mode"
            " FROM outbox AS o WHERE next_at <= ? AND NOT EXISTS (SELECT 1 FROM outbox AS e"
            " WHERE e.chat_id = o.chat_id AND e.id < o.id AND e.next_at > ?) ORDER BY id LIMIT ?",
            (now, now, limit),
        )
        return [
            OutboxItem(
                id_,
                chat_id,
                html,
                reply_to,
                json.loads(markup) if markup else None,
                created,
                attempts,
                bytes(photo) if photo is not None else None,
                parse_mode,
            )
            for id_, chat_id, html, reply_to, markup, created, attempts, photo, parse_mode in rows
        ]

    def has_queued(self, chat_id: int) -> bool:
        """Whether replies to the chat wait in the outbox (a new reply must queue behind them)."""
        return bool(self._read("SELECT 1 FROM outbox WHERE chat_id = ? LIMIT 1", (chat_id,)))

    def reply_delivered(self, item_id: int) -> None:
        """Delivered (or given up): remove it."""
        with self._write() as db:
            db.execute("DELETE FROM outbox WHERE id = ?", (item_id,))

    def reply_failed(self, item_id: int, retry_in_s: float) -> None:
        """Not delivered this time: try again in `retry_in_s`."""
        with self._write() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_at = ? WHERE id = ?",
                (time.time() + retry_in_s, item_id),
            )

    def outbox_size(self) -> int:
        """Replies waiting for delivery."""
        return int(self._read("SELECT COUNT(*) FROM outbox")[0][0])


def _upgrade(connection: sqlite3.Connection) -> None:
    """Bring a file made by an older version to the current schema (idempotent; one transaction)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        columns = {row[1] for row in connection.execute("PRAGMA table_info(outbox)")}
        for name, declaration in _OUTBOX_ADDED_COLUMNS.items():
            if name not in columns:
                connection.execute(f"ALTER TABLE outbox ADD COLUMN {name} {declaration}")
        connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _is_locked(error: sqlite3.OperationalError) -> bool:
    message = str(error).lower()
    return "locked" in message or "busy" in message
