"""Faults while the real bot runs on the fake Bot API server: random 429/5xx/timeouts under load, a poll
dropped mid-wait, Telegram unreachable for longer than a handler retries (the outbox delivers later),
the SQLite file locked by another writer, and the generation service killed and restarted."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import threading
from pathlib import Path

import pytest
from bot_doubles import FakeGenerationClient, FakeKnowledgeBase, tiny_png
from bot_e2e import USER, bot_settings, group_chat, private_chat, run_bot
from fake_telegram import FakeTelegram, Fault

from bot.app import build_application, running
from bot.context import Services
from bot.store import Store

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "generation"))

from benchmarks.reliability import FAULTS, READ_TIMEOUT_S, one_round  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")


@pytest.mark.slow
async def test_small_load_with_random_faults_answers_every_message_once(
    fake: FakeTelegram, data_dir: Path
) -> None:
    """The CI-sized run of benchmarks.reliability's faulty round (10 chats x 6 messages)."""
    async with run_bot(
        fake,
        data_dir,
        telegram_read_timeout_s=READ_TIMEOUT_S,
        outbox_interval_s=0.5,
        train_missing_models=False,
    ) as application:
        result = await one_round("ci", fake, application, chats=10, messages=6, seed=3, faults=True)
    assert sum(result.chaos.values()) > 0, "no fault was injected"
    assert result.lost == 0 and result.unexpected == 0 and result.duplicates_other == 0, result
    assert result.answered == result.expected > 0
    # Only a send that timed out after Telegram accepted it may be repeated.
    assert result.duplicates_ambiguous <= result.chaos.get("timeout_after_accept", 0)
    assert FAULTS.flood == 0.10 and FAULTS.server_error + FAULTS.timeout == 0.10


async def test_poll_dropped_mid_wait_is_resumed(fake: FakeTelegram, data_dir: Path) -> None:
    async with run_bot(fake, data_dir):
        await fake.wait_for(lambda call: call.method == "getUpdates")
        fake.fail_next("getUpdates", Fault(0, "", drop_connection=True, delay_s=0.2), times=2)
        await fake.wait_for(lambda call: call.method == "getUpdates" and call.status == 599, count=2)
        chat = private_chat(fake)
        chat.message("pricing?")
        [reply] = await fake.wait_for_reply(chat.id, timeout=20)
    assert "Price on value" in reply.text


async def test_answer_made_during_an_outage_is_delivered_once_telegram_is_back(
    fake: FakeTelegram, data_dir: Path
) -> None:
    # Every attempt the handler makes fails (4 tries), then the outbox's first try fails too.
    fake.fail_next("sendMessage", Fault(502, "Bad Gateway"), times=5)
    async with run_bot(fake, data_dir, outbox_interval_s=0.3) as application:
        chat = private_chat(fake)
        chat.message("pricing?")
        [reply] = await fake.wait_for_reply(chat.id, timeout=30)
        await asyncio.sleep(1.0)
        assert application.bot_data.services.store.outbox_size() == 0
        usage = application.bot_data.services.store.usage_counts()
    assert "Price on value" in reply.text
    assert len(fake.calls_of("sendMessage", chat.id, ok=True)) == 1
    assert len(fake.calls_of("sendMessage", chat.id, ok=False)) == 5
    assert sum(count for (_, kind, _), count in usage.items() if kind == "question") == 1


async def test_outbox_survives_a_restart(fake: FakeTelegram, data_dir: Path) -> None:
    fake.fail_next("sendMessage", Fault(500, "Internal Server Error"), times=4)
    async with run_bot(fake, data_dir, outbox_interval_s=60) as application:
        chat = private_chat(fake)
        chat.message("pricing?")
        store = application.bot_data.services.store
        for _ in range(100):
            if store.outbox_size():
                break
            await asyncio.sleep(0.1)
        assert store.outbox_size() == 1
    assert not fake.calls_of("sendMessage", chat.id, ok=True)
    async with run_bot(fake, data_dir, outbox_interval_s=0.2):
        [reply] = await fake.wait_for_reply(chat.id, timeout=10)
    assert "Price on value" in reply.text
    assert len(fake.calls_of("sendMessage", chat.id, ok=True)) == 1


async def test_photo_made_during_an_outage_is_delivered_once_before_the_reply_after_it(
    fake: FakeTelegram, data_dir: Path
) -> None:
    # sendPhoto fails (5xx and dropped connections) through the handler's tries and the outbox's first
    # ones, until the test says Telegram is back; sendMessage works all along.
    outage = [
        Fault(502, "Bad Gateway"),
        Fault(0, "", drop_connection=True),
        Fault(500, "Internal Server Error"),
    ]
    for _ in range(100):
        for fault in outage:
            fake.fail_next("sendPhoto", fault)
    group = group_chat(fake)
    async with run_bot(fake, data_dir, outbox_interval_s=0.3) as application:
        store = application.bot_data.services.store
        request = group.message("/image@ThisBot 7 2")
        # The handler gave up (4 tries) and queued the photo; the outbox has failed with it too.
        await fake.wait_for(lambda call: call.method == "sendPhoto", count=5, timeout=20)
        assert store.outbox_size() == 1
        question = group.message("@ThisBot pricing?")
        for _ in range(100):  # the answer queues behind the photo although sendMessage works
            if store.outbox_size() == 2:
                break
            await asyncio.sleep(0.05)
        assert store.outbox_size() == 2 and not fake.calls_of("sendMessage", group.id)
        fake.clear_faults("sendPhoto")  # Telegram is back
        photo, answer = await fake.wait_for_reply(group.id, count=2, timeout=20)
        await asyncio.sleep(1.0)  # time for a duplicate, were there one
        assert store.outbox_size() == 0
        usage = store.usage_counts()
    assert photo.method == "sendPhoto" and photo.reply_to == request["message_id"]
    assert photo.files["photo"] == tiny_png()  # the PNG, uploaded as multipart
    assert "2 × digit 7" in photo.text and photo.params.get("parse_mode") == "HTML"
    assert answer.method == "sendMessage" and answer.reply_to == question["message_id"]
    assert "Price on value" in answer.text
    assert len(fake.calls_of("sendPhoto", group.id, ok=True)) == 1
    assert len(fake.calls_of("sendMessage", group.id, ok=True)) == 1  # no apology
    failed = fake.calls_of("sendPhoto", group.id, ok=False)
    assert {call.status for call in failed} >= {502, 599} and all(call.files["photo"] for call in failed)
    assert (
        sum(count for (_, kind, outcome), count in usage.items() if (kind, outcome) == ("image", "ok")) == 1
    )


def hold_write_lock(path: Path, locked: threading.Event, release: threading.Event) -> None:
    """Another process's writer: holds the database's write lock until `release` (at most 10 s)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    locked.set()
    release.wait(10)
    db.execute("COMMIT")
    db.close()


async def test_store_locked_by_another_writer_loses_no_votes_or_stats(
    fake: FakeTelegram, data_dir: Path
) -> None:
    settings = bot_settings(fake, data_dir, outbox_interval_s=0.2)
    store = Store(data_dir / "bot.sqlite3", busy_timeout_s=0.2)
    application = build_application(settings, Services(FakeKnowledgeBase(), FakeGenerationClient(), store))
    async with running(application, poll_timeout=0.25):
        chat = private_chat(fake)
        chat.message("pricing?")
        [answer] = await fake.wait_for_reply(chat.id)
        bot_message = answer.response["result"]
        # Held until the rows are seen waiting: a fixed duration raced with the bot's busy timeouts.
        locked, release = threading.Event(), threading.Event()
        holder = threading.Thread(target=hold_write_lock, args=(store.path, locked, release))
        holder.start()
        await asyncio.to_thread(locked.wait, 5)
        # While the file is locked: votes from three users, and a question.
        voters = [{**USER, "id": 9100 + n} for n in range(3)]
        for voter in voters:
            chat.press(bot_message, f"fb:1:{voter['id'] % 2}", user=voter)
        await fake.wait_for(lambda call: call.method == "answerCallbackQuery", count=3)
        chat.message("/text hello")
        await fake.wait_for_reply(chat.id, count=2)
        assert store.deferred > 0  # the rows wait in memory
        release.set()
        await asyncio.to_thread(holder.join, 10)
        for _ in range(50):
            if store.deferred == 0:
                break
            await asyncio.sleep(0.1)
        assert store.deferred == 0
    assert all(call.ok for call in fake.calls_of("answerCallbackQuery"))
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == 3
        kinds = dict(db.execute("SELECT kind, COUNT(*) FROM usage GROUP BY kind").fetchall())
    assert kinds == {"question": 1, "text": 1}


@pytest.mark.slow
async def test_generation_service_killed_and_restarted(
    fake: FakeTelegram, data_dir: Path, tmp_path: Path
) -> None:
    from service_fixtures import FakeModelStore, ServiceThread, fake_engine

    from generation.client import CircuitBreaker, GenerationClient, HttpBackend
    from generation.settings import GenerationSettings

    service_settings = GenerationSettings(data_dir=tmp_path / "gen")
    service = ServiceThread(service_settings, fake_engine(FakeModelStore(), tmp_path)).start()
    port = service.port
    client = GenerationClient(
        HttpBackend(
            service.url,
            timeout_s=3.0,
            retries=1,
            backoff_s=0.05,
            breaker=CircuitBreaker(2, reset_after_s=0.5),
        )
    )
    group = group_chat(fake)
    try:
        async with run_bot(fake, data_dir, generation=client):
            group.message("/image@ThisBot 3 1")
            await fake.wait_for(lambda call: call.method == "sendPhoto" and call.ok)
            service.stop()  # the service is gone: requests are refused
            down = [group.message(f"/image@ThisBot {digit} 1") for digit in (1, 2, 3)]
            replies = await fake.wait_for(
                lambda call: call.method == "sendMessage" and call.ok and call.chat_id == group.id, count=3
            )
            assert {call.reply_to for call in replies} == {message["message_id"] for message in down}
            assert all("generator" in call.text.lower() for call in replies), [c.text for c in replies]
            service = ServiceThread(
                service_settings, fake_engine(FakeModelStore(), tmp_path), port=port
            ).start()
            await asyncio.sleep(0.6)  # the circuit half-opens
            back = group.message("/image@ThisBot 4 1")
            await fake.wait_for(
                lambda call: call.method == "sendPhoto" and call.ok and call.reply_to == back["message_id"],
                timeout=20,
            )
    finally:
        service.stop()
    errors = [call for call in fake.calls_of("sendMessage") if "something went wrong" in call.text]
    assert errors == []
