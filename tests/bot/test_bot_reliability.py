"""The pieces behind the reliability guarantees, one at a time: the update journal, the outbox, writes
kept while another writer locks the store, and the per-chat flood guard."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from telegram import Update

from bot.journal import MAX_ATTEMPTS, JournalQueue
from bot.ratelimit import ChatFloodGuard
from bot.store import Store


def open_store(data_dir: Path, **options) -> Store:
    store = Store(data_dir / "bot.sqlite3", **options)
    store.open()
    return store


def update(update_id: int) -> Update:
    chat = {"id": 1, "type": "private", "first_name": "A"}
    message = {"message_id": update_id, "date": 0, "chat": chat, "text": "hi"}
    return Update.de_json({"update_id": update_id, "message": message}, None)


def test_journal_keeps_each_update_once_and_drops_what_telegram_sends_again(data_dir: Path) -> None:
    store = open_store(data_dir)
    queue = JournalQueue()
    queue.store = store
    queue.put_nowait(update(1))
    queue.put_nowait(update(2))
    queue.put_nowait(update(1))  # re-sent after a restart before its offset was confirmed
    assert queue.qsize() == 2 and queue.duplicates == 1
    store.finish_update(1)
    queue.put_nowait(update(1))  # even once handled
    assert queue.qsize() == 2
    unfinished, given_up = store.unfinished_updates(MAX_ATTEMPTS)
    assert [update_id for update_id, _ in unfinished] == [2] and given_up == []
    assert json.loads(unfinished[0][1])["message"]["text"] == "hi"
    store.close()


def test_an_update_that_never_finishes_is_given_up_not_replayed_forever(data_dir: Path) -> None:
    store = open_store(data_dir)
    store.journal_update(7, json.dumps(update(7).to_dict()))
    replays = 0
    for _ in range(MAX_ATTEMPTS + 2):  # every start replays it; it "crashes the process" each time
        unfinished, given_up = store.unfinished_updates(MAX_ATTEMPTS)
        replays += len(unfinished)
        if given_up:
            break
    assert given_up == [7]
    assert replays == MAX_ATTEMPTS - 1  # the first attempt was the original delivery
    assert store.unfinished_updates(MAX_ATTEMPTS) == ([], [])
    store.close()


def test_outbox_keeps_replies_in_order_until_delivered(data_dir: Path) -> None:
    store = open_store(data_dir)
    first = store.queue_reply(5, "<b>one</b>", reply_to=9, markup={"inline_keyboard": []})
    second = store.queue_reply(5, "two")
    later = store.queue_reply(6, "later", delay_s=3600)
    due = store.due_replies()
    assert [item.id for item in due] == [first, second]
    assert due[0].reply_to == 9 and due[0].markup == {"inline_keyboard": []} and due[1].markup is None
    store.reply_failed(first, retry_in_s=3600)
    assert store.due_replies() == []  # "two" waits for "one": a chat gets its replies in order
    store.reply_delivered(first)
    assert [item.id for item in store.due_replies()] == [second]
    store.close()
    reopened = open_store(data_dir)  # the outbox survives a restart
    assert reopened.outbox_size() == 2 and later not in [item.id for item in reopened.due_replies()]
    reopened.close()


def test_votes_and_stats_written_while_another_writer_holds_the_file_are_kept(data_dir: Path) -> None:
    store = open_store(data_dir, busy_timeout_s=0.05)
    answer_id = store.record_answer(1, 2, "en", True, "q", [])
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    store.record_feedback(answer_id, 2, helpful=True)
    store.record_usage("question", "answered", 1, 2, "en")
    store.audit(2, 1, "stats", "", "ok")
    assert store.deferred == 3
    other.execute("COMMIT")
    other.close()
    assert store.flush_deferred() == 3 and store.deferred == 0
    assert store.feedback_counts() == (1, 0)
    assert sum(store.usage_counts().values()) == 1 and len(store.audit_entries()) == 1
    store.close()


def test_rows_still_deferred_are_written_when_the_store_closes(data_dir: Path) -> None:
    store = open_store(data_dir, busy_timeout_s=0.05)
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    store.record_usage("image", "ok", 1)
    other.execute("COMMIT")
    other.close()
    store.close()
    reopened = open_store(data_dir)
    assert sum(reopened.usage_counts().values()) == 1
    reopened.close()


def test_flood_guard_admits_the_rate_then_tells_the_chat_once_per_window() -> None:
    now = [0.0]
    guard = ChatFloodGuard(limit=2, window=60.0, clock=lambda: now[0])
    assert guard.admit(1) == (True, 0) and guard.admit(1) == (True, 0)
    admitted, wait = guard.admit(1)
    assert not admitted and wait == 60
    assert guard.admit(1) == (False, 0)  # already told: silence
    assert guard.admit(2) == (True, 0)  # other chats are not affected
    now[0] = 61.0
    assert guard.admit(1) == (True, 0)


def test_answer_ids_no_row_can_have_are_not_found(data_dir: Path) -> None:
    store = open_store(data_dir)
    assert store.answer(10**30) is None and store.answer(-(10**30)) is None
    store.close()
