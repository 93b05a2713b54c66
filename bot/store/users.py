"""The blocked_users table: people an admin blocked with /block (the bot ignores them)."""

from __future__ import annotations

import time
from pathlib import Path
from textwrap import dedent

from bot.store.database import BUSY_TIMEOUT_S, Database


class BlockedUserTable(Database):
    """Users the bot ignores; checked on every update, so kept in memory too."""

    TABLES = dedent(
        """
        CREATE TABLE IF NOT EXISTS blocked_users (
            user_id INTEGER PRIMARY KEY,
            blocked_at REAL NOT NULL,
            blocked_by INTEGER             -- the admin who blocked them
        );
        """
    )

    def __init__(self, path: Path, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        super().__init__(path, busy_timeout_s)
        self._blocked_users: set[int] = set()

    def open(self) -> None:
        """Open the file (see Database.open), then load the blocked users."""
        if not self.is_open:
            super().open()
            self._blocked_users = {row[0] for row in self._read("SELECT user_id FROM blocked_users")}

    def block_user(self, user_id: int, by: int | None) -> bool:
        """Block `user_id`; False when they were blocked already."""
        with self._write() as db:
            added = db.execute(
                "INSERT OR IGNORE INTO blocked_users(user_id, blocked_at, blocked_by) VALUES (?,?,?)",
                (user_id, time.time(), by),
            ).rowcount
        self._blocked_users.add(user_id)
        return bool(added)

    def unblock_user(self, user_id: int) -> bool:
        """Unblock `user_id`; False when they were not blocked."""
        with self._write() as db:
            removed = db.execute("DELETE FROM blocked_users WHERE user_id = ?", (user_id,)).rowcount
        self._blocked_users.discard(user_id)
        return bool(removed)

    def is_user_blocked(self, user_id: int) -> bool:
        return user_id in self._blocked_users

    def has_seen_user(self, user_id: int) -> bool:
        """Whether any request, answer or journalled update of `user_id` is on record."""
        return bool(
            self._read(
                "SELECT 1 FROM usage WHERE user_id = :u UNION ALL SELECT 1 FROM answers WHERE user_id = :u"
                " UNION ALL SELECT 1 FROM inbox WHERE json_extract(payload, '$.message.from.id') = :u LIMIT 1",
                {"u": user_id},
            )
        )
