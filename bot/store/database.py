"""The store's SQLite file: the connection (WAL), the schema version and in-place upgrades, transactions,
and rows kept in memory while another writer holds the file.

WAL mode lets readers run beside one writer; busy_timeout makes concurrent writers (threads or other
processes) wait for each other instead of failing. Every write is its own committed transaction, so a
crash loses at most the write in flight. When another writer holds the file longer than the busy
timeout, rows written with `_write_or_defer` (counters and votes) are kept in memory and written by the
next write or `flush_deferred`, instead of being lost.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

logger = logging.getLogger(__name__)

# 2: outbox rows may hold a photo (then `html` is its caption) and have a parse mode; 3: and a topic
SCHEMA_VERSION = 3
BUSY_TIMEOUT_S = 10.0  # how long a write waits for another writer before it fails (or is deferred)
DEFER_RETRY_S = 2.0  # after a write found the file locked, later rows wait this long before trying


def utc_day(ts: float) -> str:
    """The UTC day of a timestamp as rows keep it, e.g. '2024-05-31'."""
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


class Database:
    """One SQLite file; safe to share between the event loop and worker threads.

    Each table class builds on it and declares its tables; the Store joins them."""

    TABLES: ClassVar[str] = ""  # the CREATE ... IF NOT EXISTS statements of the tables and their indexes
    # {table: {column: declaration}}: columns added after schema version 1, added to older files on open
    ADDED_COLUMNS: ClassVar[Mapping[str, Mapping[str, str]]] = {}

    def __init__(self, path: Path, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()
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
        connection.executescript(f"BEGIN IMMEDIATE;{self.TABLES}COMMIT;")
        _upgrade(connection, self.ADDED_COLUMNS)
        self._connection = connection

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
        """Whether `open` ran and `close` did not since."""
        return self._connection is not None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed when the block ends (rolled back if it raises)."""
        connection = self._require()
        with self._lock, _transaction(connection):
            yield connection

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
        """All rows of one query."""
        connection = self._require()
        with self._lock:
            return connection.execute(sql, params).fetchall()

    def _require(self) -> sqlite3.Connection:
        """The open connection; raises when the store is not open."""
        if self._connection is None:
            raise RuntimeError("Store is not open")
        return self._connection


@contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE (take the write lock now, not at the first write) ... COMMIT, or ROLLBACK on error."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _upgrade(connection: sqlite3.Connection, added_columns: Mapping[str, Mapping[str, str]]) -> None:
    """Bring a file made by an older version to the current schema (idempotent; one transaction)."""
    with _transaction(connection):
        for table, columns in added_columns.items():
            present = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
            for name, declaration in columns.items():
                if name not in present:
                    connection.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")
        connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def _is_locked(error: sqlite3.OperationalError) -> bool:
    """Whether the error means another writer holds the file (past the busy timeout)."""
    message = str(error).lower()
    return "locked" in message or "busy" in message
