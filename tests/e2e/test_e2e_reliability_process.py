"""The bot as a process against the fake Bot API server: killed with SIGKILL mid-run and restarted
(updates already fetched but unanswered are answered after the restart), and stopped with SIGTERM
(replies in flight finish within the grace period, the poller stops, the store is closed cleanly; what
outlasts the grace period is answered after the restart)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from bot_e2e import TOKEN, private_chat
from fake_telegram import FakeTelegram

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent


def spawn(fake: FakeTelegram, data_dir: Path, log: Path, **env: str) -> subprocess.Popen:
    """tests/e2e/bot_process.py: `python -m bot run`'s start-up with the test doubles behind it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    environment = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": fake.base_url,
        "DATA_DIR": str(data_dir),
        "TELEGRAM_FLOOD_RATE": "0",
        "TRAIN_MISSING_MODELS": "false",
        "QUESTION_RATE": "1000",
        "CHAT_RATE": "1000",
        "LOG_LEVEL": "INFO",
        "HF_HUB_OFFLINE": "1",
        **env,
    }
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, str(HERE / "bot_process.py")],
        env=environment,
        cwd=data_dir.parent,  # no .env from the repository
        stdout=handle,
        stderr=subprocess.STDOUT,
    )


async def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def exit_code(process: subprocess.Popen, timeout: float) -> int:
    return await asyncio.to_thread(process.wait, timeout)


def replies_by_chat(fake: FakeTelegram, chat_ids: list[int]) -> Counter[int]:
    return Counter(
        call.chat_id
        for call in fake.calls_of({"sendMessage", "sendPhoto"}, ok=True)
        if call.chat_id in chat_ids
    )


def unfinished_in_journal(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "bot.sqlite3") as db:
        return db.execute("SELECT COUNT(*) FROM inbox WHERE done_at IS NULL").fetchone()[0]


async def test_updates_fetched_before_sigkill_are_answered_after_restart(
    fake: FakeTelegram, data_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "bot.log"
    first = spawn(fake, data_dir, log, BOT_TEST_KNOWLEDGE_DELAY_S="2", MAX_CONCURRENT_UPDATES="2")
    try:
        await fake.wait_for(lambda call: call.method == "getUpdates", timeout=60)
        users = [{"id": 5000 + n, "is_bot": False, "first_name": f"U{n}"} for n in range(6)]
        chats = [private_chat(fake, user) for user in users]
        last = 0
        for chat, user in zip(chats, users, strict=True):
            last = chat.message(f"pricing question {user['id']}?", user=user)["update_id"]
        # Telegram counts them delivered once the bot asks for the next offset: from here on, only the
        # bot's journal still has them.
        await fake.wait_until_consumed(last, timeout=30)
        await asyncio.sleep(0.3)
    finally:
        first.send_signal(signal.SIGKILL)
        await exit_code(first, 10)
    ids = [chat.id for chat in chats]
    before = replies_by_chat(fake, ids)
    assert sum(before.values()) < len(ids), "all answered before the kill: the test proves nothing"

    second = spawn(fake, data_dir, log, MAX_CONCURRENT_UPDATES="8")
    try:
        await wait_until(lambda: len(replies_by_chat(fake, ids)) == len(ids), 60, "every chat answered")
        await asyncio.sleep(0.5)
        assert second.poll() is None, "the restarted bot exited"
    finally:
        second.send_signal(signal.SIGTERM)
        assert await exit_code(second, 30) == 0
    after = replies_by_chat(fake, ids)
    assert set(after) == set(ids)
    # At least once: a reply sent just before the kill may go out again, but only for updates that
    # were in flight (at most MAX_CONCURRENT_UPDATES of them); nothing else is repeated.
    repeated = [chat_id for chat_id, count in after.items() if count > 1]
    assert len(repeated) <= 2 and all(after[chat_id] == 2 for chat_id in repeated), after
    assert unfinished_in_journal(data_dir) == 0
    assert TOKEN not in log.read_text(errors="replace")


async def test_sigterm_finishes_replies_in_flight_stops_polling_and_closes_the_store(
    fake: FakeTelegram, data_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "bot.log"
    process = spawn(fake, data_dir, log, BOT_TEST_KNOWLEDGE_DELAY_S="1.5", SHUTDOWN_GRACE_S="20")
    users = [{"id": 6000 + n, "is_bot": False, "first_name": f"U{n}"} for n in range(3)]
    try:
        await fake.wait_for(lambda call: call.method == "getUpdates", timeout=60)
        for user in users:
            private_chat(fake, user).message("pricing?", user=user)
        # Every question is being worked on (the typing indicator is up) when SIGTERM arrives.
        await fake.wait_for(lambda call: call.method == "sendChatAction", count=len(users), timeout=20)
        assert not replies_by_chat(fake, [user["id"] for user in users])
        stopped_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = await exit_code(process, 30)
    finally:
        if process.poll() is None:
            process.kill()
    took = time.monotonic() - stopped_at
    assert code == 0
    assert took < 15, f"shutdown took {took:.1f} s"
    replies = replies_by_chat(fake, [user["id"] for user in users])
    assert replies == Counter({user["id"]: 1 for user in users})
    polls = len(fake.calls_of("getUpdates"))
    await asyncio.sleep(1.5)
    assert len(fake.calls_of("getUpdates")) == polls, "still polling after exit"
    # Closed cleanly: the WAL was folded back into the database file and nothing is left unfinished.
    wal = data_dir / "bot.sqlite3-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    assert unfinished_in_journal(data_dir) == 0
    with sqlite3.connect(data_dir / "bot.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM usage WHERE kind = 'question'").fetchone()[0] == len(users)


async def test_sigterm_is_bounded_and_what_did_not_finish_is_answered_after_restart(
    fake: FakeTelegram, data_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "bot.log"
    slow = spawn(fake, data_dir, log, BOT_TEST_KNOWLEDGE_DELAY_S="20", SHUTDOWN_GRACE_S="1")
    user = {"id": 7001, "is_bot": False, "first_name": "Slow"}
    try:
        await fake.wait_for(lambda call: call.method == "getUpdates", timeout=60)
        private_chat(fake, user).message("pricing?", user=user)
        await fake.wait_for(lambda call: call.method == "sendChatAction", timeout=20)
        stopped_at = time.monotonic()
        slow.send_signal(signal.SIGTERM)
        assert await exit_code(slow, 15) == 0
    finally:
        if slow.poll() is None:
            slow.kill()
    assert time.monotonic() - stopped_at < 8
    assert not replies_by_chat(fake, [user["id"]])
    assert unfinished_in_journal(data_dir) == 1
    quick = spawn(fake, data_dir, log)
    try:
        await wait_until(lambda: replies_by_chat(fake, [user["id"]])[user["id"]] == 1, 60, "the answer")
    finally:
        quick.send_signal(signal.SIGTERM)
        assert await exit_code(quick, 30) == 0
    assert unfinished_in_journal(data_dir) == 0
