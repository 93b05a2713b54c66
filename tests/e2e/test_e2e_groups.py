"""Groups, supergroup migration and channels end to end."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot_e2e import ADMIN, USER, channel, group_chat, run_bot
from fake_telegram import FakeTelegram, parse_telegram_html


def visible(call) -> str:
    problem, text = parse_telegram_html(call.text)
    assert problem is None
    return text


async def settle(fake: FakeTelegram, update_id: int) -> None:
    """Wait until the bot fetched `update_id`, then give its handlers a moment to act (or not)."""
    await fake.wait_until_consumed(update_id)
    await asyncio.sleep(0.3)


async def test_group_answers_only_when_addressed_and_quotes_the_asker(
    fake: FakeTelegram, data_dir: Path
) -> None:
    async with run_bot(fake, data_dir):
        group = group_chat(fake)
        group.message("pricing chatter between humans")
        group.message("/ask@OtherBot pricing?")
        ignored = group.message("/help@OtherBot")
        await settle(fake, ignored["update_id"])
        assert fake.calls_of({"sendMessage", "sendChatAction"}, group.id) == []

        mention = group.message("@ThisBot what about pricing?")
        [first] = await fake.wait_for_reply(group.id)
        command = group.message("/ask@ThisBot pricing again?")
        [_, second] = await fake.wait_for_reply(group.id, count=2)
        bare = group.message("/ask pricing once more")
        [*_, third] = await fake.wait_for_reply(group.id, count=3)
        reply = group.message("and pricing for teams?", reply_to=first.response["result"])
        [*_, fourth] = await fake.wait_for_reply(group.id, count=4)
    assert first.reply_to == mention["message_id"]
    assert second.reply_to == command["message_id"]
    assert third.reply_to == bare["message_id"]
    assert fourth.reply_to == reply["message_id"]
    assert "You asked: what about pricing?" in visible(first)  # the mention is not part of the question
    assert len(fake.calls_of("sendMessage", group.id)) == 4


async def test_reply_to_someone_else_is_ignored(fake: FakeTelegram, data_dir: Path) -> None:
    async with run_bot(fake, data_dir):
        group = group_chat(fake)
        human = group.message("pricing?", user=ADMIN)
        update = group.message("pricing indeed", reply_to=human)
        await settle(fake, update["update_id"])
    assert fake.calls_of("sendMessage", group.id) == []


async def test_group_migrated_to_supergroup_keeps_working(fake: FakeTelegram, data_dir: Path) -> None:
    supergroup_id = -1005001
    async with run_bot(fake, data_dir) as application:
        group = group_chat(fake, -5001)
        fake.migrated[group.id] = supergroup_id  # Telegram now refuses the old id
        group.message("/ask pricing?")
        [_reply] = await fake.wait_for_reply(supergroup_id)
        supergroup = group_chat(fake, supergroup_id, kind="supergroup")
        supergroup.message("", migrate_from_chat_id=group.id)
        supergroup.message("@ThisBot pricing after the upgrade?")
        [_, later] = await fake.wait_for_reply(supergroup_id, count=2)
        store = application.bot_data.services.store
        assert store.migrated_to(group.id) == supergroup_id
    assert fake.calls_of("sendMessage", group.id, ok=False)  # the first try hit the old id
    assert "pricing after the upgrade" in visible(later)


async def test_channel_posts_answer_commands_addressed_to_the_bot(fake: FakeTelegram, data_dir: Path) -> None:
    async with run_bot(fake, data_dir):
        news = channel(fake)
        news.message("pricing news for everyone", user=None)
        news.message("/ask@OtherBot pricing?", user=None)
        post = news.message("/ask@ThisBot pricing?", user=None)
        [reply] = await fake.wait_for_reply(news.id)
        await settle(fake, post["update_id"])
    assert reply.reply_to == post["message_id"]
    assert len(fake.calls_of("sendMessage", news.id)) == 1


async def test_group_rate_limit_says_when_to_retry(fake: FakeTelegram, data_dir: Path) -> None:
    async with run_bot(fake, data_dir, chat_rate=2, rate_window_s=60):
        group = group_chat(fake)
        for user_id in range(3):
            user = {**USER, "id": 2000 + user_id}
            group.message("/ask pricing?", user=user)
            await fake.wait_for_reply(group.id, count=user_id + 1)
    texts = [visible(call) for call in fake.calls_of("sendMessage", group.id, ok=True)]
    assert sum("You asked" in text for text in texts) == 2
    [limited] = [text for text in texts if "try again in" in text]
    seconds = int(limited.split("try again in ")[1].split(" s")[0])
    assert 1 <= seconds <= 60


async def test_group_members_each_vote_once_and_buttons_stay(fake: FakeTelegram, data_dir: Path) -> None:
    async with run_bot(fake, data_dir) as application:
        group = group_chat(fake)
        group.message("/ask pricing?")
        [answer] = await fake.wait_for_reply(group.id)
        helpful = next(button["callback_data"] for button in answer.buttons if "Helpful" in button["text"])
        unhelpful = next(
            button["callback_data"] for button in answer.buttons if "Not helpful" in button["text"]
        )
        presses = [(helpful, USER), (unhelpful, ADMIN), (helpful, ADMIN)]  # the admin changes their mind
        for count, (data, user) in enumerate(presses, start=1):
            group.press(answer.response["result"], data, user=user)
            await fake.wait_for(lambda call: call.method == "answerCallbackQuery", count=count)
        counts = application.bot_data.services.store.feedback_counts()
    assert counts == (2, 0)
    assert fake.calls_of("editMessageReplyMarkup") == []
