"""The SQLite store: persistence, concurrent writers (threads and processes), jobs, chats."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path

from bot.store import Store


def open_store(path: Path) -> Store:
    store = Store(path)
    store.open()
    return store


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
    answer_id = store.record_answer(-5, 1, "en", True, "q", [{"doc": "d"}])
    store.record_migration(-5, -1005)
    assert store.migrated_to(-5) == -1005
    assert store.answer(answer_id).chat_id == -1005
    assert store.answer(answer_id).sources == [{"doc": "d"}]
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
