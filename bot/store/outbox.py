"""The outbox table: replies that could not be delivered yet and are retried, texts and photos alike.

A photo's PNG is a BLOB in its row, so the row and its bytes are written and deleted in one transaction,
with no file beside the store to leak or go missing."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from textwrap import dedent
from typing import ClassVar

from bot.store.database import Database


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
    thread_id: int | None = None  # the forum topic it goes to; None: the chat itself (or General)

    @property
    def kind(self) -> str:
        """'photo' or 'text'."""
        return "text" if self.photo is None else "photo"


class OutboxTable(Database):
    """Replies waiting for delivery, handed out in per-chat order."""

    TABLES = dedent(
        """
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
            parse_mode TEXT DEFAULT 'HTML', -- how `html` is marked up; NULL for plain text
            thread_id INTEGER              -- the forum topic (message_thread_id); NULL for none
        );
        CREATE INDEX IF NOT EXISTS outbox_chat ON outbox(chat_id, id);
        """
    )
    ADDED_COLUMNS: ClassVar[Mapping[str, Mapping[str, str]]] = {
        # photo and parse_mode came in schema version 2, thread_id in 3
        "outbox": {"photo": "BLOB", "parse_mode": "TEXT DEFAULT 'HTML'", "thread_id": "INTEGER"},
    }

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
        thread_id: int | None = None,
    ) -> int:
        """Keep a reply to deliver later: a text message, or with `photo` (PNG bytes) a photo captioned
        `html`; returns its id."""
        now = time.time()
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO outbox(chat_id, html, photo, parse_mode, reply_to, markup, created_at, next_at,"
                " thread_id) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    chat_id,
                    html,
                    photo,
                    parse_mode,
                    reply_to,
                    json.dumps(markup) if markup else None,
                    now,
                    now + delay_s,
                    thread_id,
                ),
            )
            return int(cursor.lastrowid)

    def due_replies(self, limit: int = 50) -> list[OutboxItem]:
        """Replies whose next attempt is due, oldest first; none that an earlier reply to the same chat,
        not due yet, must precede (a chat gets its replies in the order they were made)."""
        now = time.time()
        rows = self._read(
            "SELECT id, chat_id, html, reply_to, markup, created_at, attempts, photo, parse_mode, thread_id"
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
                thread_id,
            )
            for id_, chat_id, html, reply_to, markup, created, attempts, photo, parse_mode, thread_id in rows
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
