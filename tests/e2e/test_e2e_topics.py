"""Forum topics through the fake Bot API server: every reply, photo, chat action, button reply, error
apology and outbox retry goes to the topic the asker wrote in (General included), across a restart."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bot_doubles import FakeKnowledgeBase
from bot_e2e import ADMIN, forum_chat, in_topic, run_bot, visible
from fake_telegram import FakeTelegram, Fault

PRICING_TOPIC = 77
IMAGES_TOPIC = 78


async def test_replies_photos_actions_and_buttons_stay_in_the_askers_topic(
    fake: FakeTelegram, data_dir: Path
) -> None:
    forum = forum_chat(fake, {PRICING_TOPIC, IMAGES_TOPIC})
    # Slow enough that the typing action shows.
    async with run_bot(fake, data_dir, knowledge=FakeKnowledgeBase(delay_s=0.6)):
        forum.message("/ask pricing?", **in_topic(PRICING_TOPIC))
        [answer] = await fake.wait_for_reply(forum.id)
        forum.message("/image 3 2", **in_topic(IMAGES_TOPIC))
        [_, photo] = await fake.wait_for_reply(forum.id, count=2)
        forum.message("@ThisBot what about pricing in General?")  # General: no thread id
        [*_, general] = await fake.wait_for_reply(forum.id, count=3)
        more = next(b["callback_data"] for b in answer.buttons if "more" in b["callback_data"].lower())
        forum.press(answer.response["result"], more)
        [*_, passages] = await fake.wait_for_reply(forum.id, count=4)
    assert "Price on value" in visible(answer) and answer.thread_id == PRICING_TOPIC
    assert photo.method == "sendPhoto" and photo.thread_id == IMAGES_TOPIC
    assert "Price on value" in visible(general) and general.thread_id is None
    assert (
        passages.thread_id == PRICING_TOPIC and passages.reply_to == answer.response["result"]["message_id"]
    )
    actions = [call for call in fake.calls if call.method == "sendChatAction" and call.chat_id == forum.id]
    assert actions and {call.thread_id for call in actions} <= {PRICING_TOPIC, IMAGES_TOPIC, None}
    assert any(call.thread_id == PRICING_TOPIC for call in actions)
    assert all(call.ok for call in fake.calls if call.chat_id == forum.id)  # no thread Telegram refused


async def test_a_reply_queued_in_an_outage_reaches_its_topic_after_a_restart(
    fake: FakeTelegram, data_dir: Path
) -> None:
    forum = forum_chat(fake, {PRICING_TOPIC})
    fake.fail_next("sendMessage", Fault(500, "Internal Server Error"), times=4)
    async with run_bot(fake, data_dir, outbox_interval_s=60) as application:
        forum.message("/ask pricing?", **in_topic(PRICING_TOPIC))
        store = application.bot_data.services.store
        for _ in range(100):
            if store.outbox_size():
                break
            await asyncio.sleep(0.1)
        assert store.outbox_size() == 1
    async with run_bot(fake, data_dir, outbox_interval_s=0.2):
        [reply] = await fake.wait_for_reply(forum.id, timeout=10)
    assert "Price on value" in visible(reply) and reply.thread_id == PRICING_TOPIC


async def test_admin_retrain_progress_and_report_go_to_the_topic(fake: FakeTelegram, data_dir: Path) -> None:
    fake_trainer = [sys.executable, str(Path(__file__).resolve().parents[1] / "bot" / "fake_trainer.py")]
    forum = forum_chat(fake, {PRICING_TOPIC})
    async with run_bot(fake, data_dir, retrain_progress_interval_s=0.2) as app:
        app.bot_data.jobs.use_trainer(fake_trainer)
        forum.message("/retrain lstm", user=ADMIN, **in_topic(PRICING_TOPIC))
        started, progress, report, curve = await fake.wait_for_reply(forum.id, count=4, timeout=30)
    assert [call.thread_id for call in (started, progress, report, curve)] == [PRICING_TOPIC] * 4
    assert curve.method == "sendPhoto"
    assert visible(report).startswith("Job lstm-") and "Candidate lstm-v2" in visible(report)
