"""The inbox table: the journal of received updates. An update is recorded before it is handled and
marked done after, so updates fetched but not handled when the process died are handled after a restart."""

from __future__ import annotations

import time
from textwrap import dedent

from bot.store.database import Database


class InboxTable(Database):
    """Received updates, from the moment they are queued until they are handled and pruned."""

    TABLES = dedent(
        """
        CREATE TABLE IF NOT EXISTS inbox (
            update_id INTEGER PRIMARY KEY,
            payload TEXT NOT NULL,         -- the update as Telegram sent it (JSON)
            received_at REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 1,
            done_at REAL                   -- NULL while not handled to the end
        );
        CREATE INDEX IF NOT EXISTS inbox_pending ON inbox(done_at);
        """
    )

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
