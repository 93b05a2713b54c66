"""The jobs table: background jobs (retrains) as recorded, so they outlive the process that ran them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from textwrap import dedent

from bot.store.database import Database

_SELECT_JOBS = "SELECT id, kind, status, created_at, updated_at, requested_by, chat_id, detail FROM jobs"


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


def _job_record(row: tuple) -> JobRecord:
    """A row of `_SELECT_JOBS` as a JobRecord (its detail decoded)."""
    return JobRecord(*row[:7], detail=json.loads(row[7]))


class JobTable(Database):
    """Job records: created running, updated as they progress and end."""

    TABLES = dedent(
        """
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
        """
    )

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
        sql = _SELECT_JOBS
        params: tuple = ()
        if status is not None:
            sql += " WHERE status = ?"
            params = (status,)
        return [_job_record(row) for row in self._read(sql + " ORDER BY created_at DESC", params)]

    def job(self, job_id: str) -> JobRecord | None:
        """One job record, or None."""
        rows = self._read(_SELECT_JOBS + " WHERE id = ?", (job_id,))
        return _job_record(rows[0]) if rows else None

    def fail_interrupted_jobs(self, runs_on: Callable[[JobRecord], bool] | None = None) -> list[JobRecord]:
        """Mark jobs left 'running' by a previous process as failed, except those `runs_on` says still run
        elsewhere; returns the failed ones (call once at start)."""
        interrupted = [job for job in self.jobs("running") if runs_on is None or not runs_on(job)]
        for job in interrupted:
            self.update_job(job.id, "failed", {**job.detail, "error": "interrupted by a restart"})
        return interrupted
