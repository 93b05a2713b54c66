"""The SQLite store: persistence, concurrent writers (threads and processes), jobs, chats, and files
made by an older version upgraded in place."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import threading
from pathlib import Path

from bot.store import SCHEMA_VERSION, Store
from knowledge.api import Source

# A file as schema version 1 made it, with a row in each table: the outbox had no photo or parse_mode.
VERSION_1_FILE = """
CREATE TABLE usage (id INTEGER PRIMARY KEY, ts REAL NOT NULL, day TEXT NOT NULL, kind TEXT NOT NULL,
    outcome TEXT NOT NULL, user_id INTEGER, chat_id INTEGER NOT NULL, lang TEXT);
CREATE INDEX usage_day_kind ON usage(day, kind, outcome);
CREATE TABLE answers (id INTEGER PRIMARY KEY, ts REAL NOT NULL, chat_id INTEGER NOT NULL, user_id INTEGER,
    lang TEXT NOT NULL, answered INTEGER NOT NULL, question TEXT NOT NULL, sources TEXT NOT NULL);
CREATE TABLE feedback (answer_id INTEGER NOT NULL REFERENCES answers(id), user_id INTEGER NOT NULL,
    helpful INTEGER NOT NULL, ts REAL NOT NULL, PRIMARY KEY (answer_id, user_id));
CREATE TABLE audit_log (id INTEGER PRIMARY KEY, ts REAL NOT NULL, user_id INTEGER, chat_id INTEGER,
    command TEXT NOT NULL, args TEXT NOT NULL, result TEXT NOT NULL);
CREATE TABLE jobs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, created_at REAL NOT NULL,
    updated_at REAL NOT NULL, requested_by INTEGER, chat_id INTEGER, detail TEXT NOT NULL DEFAULT '{}');
CREATE TABLE chats (chat_id INTEGER PRIMARY KEY, blocked INTEGER NOT NULL DEFAULT 0, migrated_to INTEGER);
CREATE TABLE inbox (update_id INTEGER PRIMARY KEY, payload TEXT NOT NULL, received_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1, done_at REAL);
CREATE INDEX inbox_pending ON inbox(done_at);
CREATE TABLE outbox (id INTEGER PRIMARY KEY, chat_id INTEGER NOT NULL, html TEXT NOT NULL, reply_to INTEGER,
    markup TEXT, created_at REAL NOT NULL, next_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0);
INSERT INTO usage VALUES (1, 0, '1970-01-01', 'question', 'answered', 7, 5, 'en');
INSERT INTO answers VALUES (1, 0, 5, 7, 'en', 1, 'Why?', '[{"doc": "d"}]');
INSERT INTO feedback VALUES (1, 7, 1, 0);
INSERT INTO audit_log VALUES (1, 0, 7, 5, 'reindex', '', 'ok');
INSERT INTO jobs VALUES ('job-1', 'retrain-gan', 'running', 0, 0, 7, 5, '{"epochs": 1}');
INSERT INTO chats VALUES (9, 1, NULL);
INSERT INTO inbox VALUES (3, '{"update_id": 3}', 0, 1, NULL);
INSERT INTO outbox VALUES (1, 5, 'old', 4, NULL, 0, 0, 0);
PRAGMA user_version=1;
"""


def open_store(path: Path) -> Store:
    store = Store(path)
    store.open()
    return store


def schema_of(path: Path) -> dict:
    """The file's schema version, every table's columns (types, defaults, keys) and every index."""
    with sqlite3.connect(path) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        indexes = db.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'").fetchall()
        schema = {
            "version": db.execute("PRAGMA user_version").fetchone()[0],
            "columns": {table: db.execute(f"PRAGMA table_info({table})").fetchall() for table in tables},
            "indexes": {
                (name, table): db.execute(f"PRAGMA index_info({name})").fetchall() for name, table in indexes
            },
        }
    db.close()
    return schema


def test_everything_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "var" / "bot.sqlite3"
    store = open_store(path)
    answer_id = store.record_answer(5, 7, "en", False, "Why is the sky blue?", [])
    store.record_feedback(answer_id, 7, helpful=False)
    store.record_feedback(answer_id, 7, helpful=True)  # a second vote replaces the first
    store.record_usage("question", "declined", 5, 7, "en")
    store.audit(7, 5, "reindex", "", "ok")
    store.set_blocked(9, True)
    store.close()

    store = open_store(path)
    assert store.feedback_counts() == (1, 0)
    assert store.top_unanswered() == [("why is the sky blue?", 1)]
    assert sum(store.usage_counts().values()) == 1
    assert store.audit_entries()[0]["command"] == "reindex"
    assert store.is_blocked(9)
    assert store.answer(answer_id).question == "Why is the sky blue?"
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_concurrent_threads_lose_no_writes(tmp_path: Path) -> None:
    store = open_store(tmp_path / "bot.sqlite3")

    def write(worker: int) -> None:
        for index in range(50):
            store.record_usage("question", "answered", worker, index, "en")

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(store.usage_counts().values()) == 400
    store.close()


def _write_from_process(path: str, worker: int) -> None:
    store = open_store(Path(path))
    for index in range(100):
        store.record_usage("image", "ok", worker, index)
        store.audit(worker, worker, "stats", "", "ok")
    store.close()


def test_concurrent_processes_lose_no_writes(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_write_from_process, args=(str(path), worker)) for worker in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    store = open_store(path)
    assert sum(store.usage_counts().values()) == 300
    assert len(store.audit_entries(limit=1000)) == 300
    store.close()


def test_running_jobs_are_marked_failed_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    store = open_store(path)
    store.create_job("job-1", "retrain-gan", 4242, 4242, {"epochs": 1})
    store.create_job("job-2", "reindex", 4242, 4242)
    store.update_job("job-2", "succeeded")
    store.close()

    store = open_store(path)
    [interrupted] = store.fail_interrupted_jobs()
    assert interrupted.id == "job-1"
    [job] = [job for job in store.jobs() if job.id == "job-1"]
    assert job.status == "failed" and job.detail == {"epochs": 1, "error": "interrupted by a restart"}
    assert store.fail_interrupted_jobs() == []
    store.close()


def test_migration_moves_answers_to_the_supergroup(tmp_path: Path) -> None:
    store = open_store(tmp_path / "bot.sqlite3")
    answer_id = store.record_answer(-5, 1, "en", True, "q", [Source("d", "", "", "", "", 0.0)])
    store.record_migration(-5, -1005)
    assert store.migrated_to(-5) == -1005
    assert store.answer(answer_id).chat_id == -1005
    assert store.answer(answer_id).sources == [Source("d", "", "", "", "", 0.0)]
    store.close()


def test_pruning_the_inbox_forgets_only_finished_updates(tmp_path: Path) -> None:
    store = open_store(tmp_path / "bot.sqlite3")
    assert store.journal_update(1, '{"update_id": 1}')
    assert store.journal_update(2, '{"update_id": 2}')
    store.finish_update(1)
    assert store.prune_inbox(3600) == 0  # finished, but recent: still needed to drop re-sent copies
    assert store.journal_update(1, '{"update_id": 1}') is False
    assert store.prune_inbox(-1) == 1  # everything finished is now "old"
    unfinished, given_up = store.unfinished_updates(max_attempts=3)
    assert [update_id for update_id, _ in unfinished] == [2] and given_up == []
    store.close()


def test_a_version_1_file_is_upgraded_in_place_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old" / "bot.sqlite3"
    path.parent.mkdir()
    with sqlite3.connect(path) as old:
        old.executescript(VERSION_1_FILE)
    old.close()

    store = open_store(path)
    upgraded = schema_of(path)
    assert sum(store.usage_counts(since_days=100_000).values()) == 1
    assert store.answer(1).sources == [Source("d", "", "", "", "", 0.0)] and store.feedback_counts() == (1, 0)
    assert store.audit_entries()[0]["command"] == "reindex"
    assert store.job("job-1").detail == {"epochs": 1} and store.is_blocked(9)
    assert store.unfinished_updates(max_attempts=3) == ([(3, '{"update_id": 3}')], [])
    [reply] = store.due_replies()
    assert (reply.kind, reply.html, reply.reply_to, reply.photo, reply.parse_mode, reply.thread_id) == (
        "text",
        "old",
        4,
        None,
        "HTML",
        None,
    )
    store.reply_delivered(reply.id)
    store.queue_reply(5, "in a topic", thread_id=77)
    assert [item.thread_id for item in store.due_replies()] == [77]
    store.close()

    open_store(path).close()  # opening again changes nothing
    assert schema_of(path) == upgraded
    new_path = tmp_path / "new" / "bot.sqlite3"
    open_store(new_path).close()
    assert upgraded == schema_of(new_path)  # the columns, defaults and indexes of a new file
    assert upgraded["version"] == SCHEMA_VERSION


def test_forget_removes_one_users_data_and_keeps_the_counts_anonymous(tmp_path: Path) -> None:
    store = open_store(tmp_path / "bot.sqlite3")
    ada, bob, group = 1001, 1002, -5001
    private = store.record_answer(
        ada, ada, "en", False, "how do I fire my cofounder?", [Source("d", "", "", "", "", 1.0)]
    )
    in_group = store.record_answer(group, ada, "en", True, "pricing?", [])
    bobs = store.record_answer(bob, bob, "en", False, "bob's secret question", [])
    store.record_feedback(bobs, ada, helpful=True)
    store.record_feedback(private, bob, helpful=False)
    for user, chat in ((ada, ada), (ada, group), (bob, bob)):
        store.record_usage("question", "declined", chat, user, "en")
    store.journal_update(1, json.dumps({"update_id": 1, "message": {"from": {"id": ada}, "text": "hi"}}))
    store.journal_update(2, json.dumps({"update_id": 2, "callback_query": {"from": {"id": ada}}}))
    store.journal_update(3, json.dumps({"update_id": 3, "message": {"from": {"id": bob}, "text": "yo"}}))
    store.queue_reply(ada, "a reply to Ada")
    store.queue_reply(group, "a reply in the group")
    usage_before, votes_before = store.usage_counts(), store.feedback_counts()

    forgotten = store.forget_user(ada)

    assert (forgotten.questions, forgotten.votes, forgotten.usage) == (2, 1, 2)
    assert (forgotten.messages, forgotten.replies) == (2, 1) and forgotten.held_data
    assert store.answer(private).question == "" and store.answer(private).sources == []
    assert store.answer(private).chat_id == 0 and store.answer(in_group).chat_id == group
    assert store.answer(bobs).question == "bob's secret question"
    assert store.top_unanswered() == [("bob's secret question", 1)]
    assert store.usage_counts() == usage_before and store.feedback_counts() == votes_before
    with sqlite3.connect(tmp_path / "bot.sqlite3") as db:
        assert db.execute(
            "SELECT COUNT(*) FROM usage WHERE user_id = ? OR chat_id = ?", (ada, ada)
        ).fetchone() == (0,)
        assert db.execute("SELECT COUNT(*) FROM feedback WHERE user_id = ?", (ada,)).fetchone() == (0,)
        assert [row[0] for row in db.execute("SELECT update_id FROM inbox")] == [3]
    assert [item.chat_id for item in store.due_replies()] == [group]
    again = store.forget_user(ada)
    assert again.total == 0 and not again.held_data  # a second /forget changes nothing
    store.close()


def test_retention_prunes_only_rows_older_than_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    store = open_store(path)
    old = store.record_answer(7, 7, "en", False, "old question", [])
    new = store.record_answer(7, 7, "en", False, "new question", [])
    store.record_feedback(old, 8, helpful=True)
    store.record_feedback(new, 8, helpful=True)
    store.record_usage("question", "declined", 7, 7, "en")
    store.record_usage("question", "declined", 7, 7, "en")
    with sqlite3.connect(path) as db:  # age one row of each table by 100 days
        db.execute("UPDATE answers SET ts = ts - 100 * 86400 WHERE id = ?", (old,))
        db.execute("UPDATE usage SET ts = ts - 100 * 86400 WHERE id = 1")
    assert store.prune_older_than(90) == 3  # the old answer, the vote on it, the old usage row
    assert store.answer(old) is None and store.answer(new).question == "new question"
    assert store.feedback_counts() == (1, 0) and sum(store.usage_counts().values()) == 1
    assert store.prune_older_than(90) == 0
    store.close()
