"""The usage table: one row per request the bot handled, counted per day for /stats."""

from __future__ import annotations

import time
from textwrap import dedent

from bot.store.database import Database, utc_day


class UsageTable(Database):
    """Requests counted by kind and outcome."""

    TABLES = dedent(
        """
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
        """
    )

    def record_usage(
        self, kind: str, outcome: str, chat_id: int, user_id: int | None = None, lang: str | None = None
    ) -> None:
        """Count one request."""
        now = time.time()
        self._write_or_defer(
            "INSERT INTO usage(ts, day, kind, outcome, user_id, chat_id, lang) VALUES (?,?,?,?,?,?,?)",
            (now, utc_day(now), kind, outcome, user_id, chat_id, lang),
        )

    def usage_counts(self, since_days: int = 7) -> dict[tuple[str, str, str], int]:
        """{(day, kind, outcome): count} for the last `since_days` days."""
        since = utc_day(time.time() - (since_days - 1) * 86400)
        rows = self._read(
            "SELECT day, kind, outcome, COUNT(*) FROM usage WHERE day >= ? GROUP BY day, kind, outcome",
            (since,),
        )
        return {(day, kind, outcome): count for day, kind, outcome, count in rows}
