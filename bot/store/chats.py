"""The chats table: chats whose user blocked the bot, and groups that became supergroups."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

from bot.store.database import BUSY_TIMEOUT_S, Database


class ChatTable(Database):
    """What the bot learned about chats from Telegram's errors and service messages."""

    TABLES = dedent(
        """
        CREATE TABLE IF NOT EXISTS chats (
            chat_id INTEGER PRIMARY KEY,
            blocked INTEGER NOT NULL DEFAULT 0,
            migrated_to INTEGER
        );
        """
    )

    def __init__(self, path: Path, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        super().__init__(path, busy_timeout_s)
        self._blocked: set[int] = set()  # cached: checked on every incoming update

    def open(self) -> None:
        """Open the file (see Database.open), then load the blocked chats."""
        if not self.is_open:
            super().open()
            self._blocked = {row[0] for row in self._read("SELECT chat_id FROM chats WHERE blocked = 1")}

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
        """A group became a supergroup: remember the new id and carry its answers over."""
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
