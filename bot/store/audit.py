"""The audit_log table: who ran which admin command, when, and how it ended."""

from __future__ import annotations

import time
from textwrap import dedent

from bot.store.database import Database


class AuditTable(Database):
    """The admin audit log."""

    TABLES = dedent(
        """
        CREATE TABLE IF NOT EXISTS audit_log (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            user_id INTEGER,
            chat_id INTEGER,
            command TEXT NOT NULL,
            args TEXT NOT NULL,
            result TEXT NOT NULL
        );
        """
    )

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
