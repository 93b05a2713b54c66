"""/block, /unblock and the allow-lists through the fake Bot API server: an ignored user gets no reply,
costs no model work and is counted in /stats; bad /block input gets a clear message and blocks no one."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot_doubles import FakeKnowledgeBase
from bot_e2e import ADMIN, OTHER_USER, USER, group_chat, private_chat, run_bot, visible
from fake_telegram import FakeTelegram


async def settle(fake: FakeTelegram, message: dict) -> None:
    """Until the bot has fetched `message` and had time to act on it."""
    await fake.wait_until_consumed(message["update_id"])
    await asyncio.sleep(0.5)


async def test_a_blocked_user_is_ignored_counted_and_unblocked(fake: FakeTelegram, data_dir: Path) -> None:
    knowledge = FakeKnowledgeBase()
    async with run_bot(fake, data_dir, knowledge=knowledge):
        user, admin = private_chat(fake), private_chat(fake, ADMIN)
        user.message("pricing?")
        [answer] = await fake.wait_for_reply(user.id)
        admin.message(f"/block {USER['id']}", user=ADMIN)
        [blocked] = await fake.wait_for_reply(admin.id)
        asked = len(knowledge.questions)
        await settle(fake, user.message("pricing again?"))
        user.press(answer.response["result"], answer.buttons[-1]["callback_data"])
        await fake.wait_for(lambda call: call.method == "answerCallbackQuery")
        ignored_press = fake.calls_of("answerCallbackQuery")[-1]
        replies_while_blocked = len(fake.calls_of({"sendMessage", "sendPhoto"}, user.id))
        work_while_blocked = len(knowledge.questions) - asked
        admin.message("/stats", user=ADMIN)
        [*_, stats] = await fake.wait_for_reply(admin.id, count=2)
        admin.message(f"/unblock {USER['id']}", user=ADMIN)
        [*_, unblocked] = await fake.wait_for_reply(admin.id, count=3)
        user.message("pricing, once more?")
        [*_, answered_again] = await fake.wait_for_reply(user.id, count=2)
    assert visible(blocked) == f"Blocked user {USER['id']}: they get no replies and cost no model work."
    assert replies_while_blocked == 1 and work_while_blocked == 0  # only the answer from before
    assert "text" not in ignored_press.params
    assert "Ignored: 2 from blocked users, 0 from outside the allow-lists" in visible(stats)
    assert visible(unblocked) == f"Unblocked user {USER['id']}."
    assert "Price on value" in visible(answered_again)


async def test_block_by_reply_in_a_group_and_bad_block_requests(fake: FakeTelegram, data_dir: Path) -> None:
    async with run_bot(fake, data_dir) as application:
        group = group_chat(fake)
        said = group.message("@ThisBot pricing?", user=OTHER_USER)
        await fake.wait_for_reply(group.id)
        group.message("/block", user=ADMIN, reply_to=said)
        group.message("/block", user=ADMIN)  # replying to nothing, naming no one
        group.message(f"/block {ADMIN['id']}", user=ADMIN)
        group.message("/block 999999", user=ADMIN)  # never seen
        group.message("/block abc", user=ADMIN)
        group.message(f"/unblock {USER['id']}", user=ADMIN)  # not blocked
        group.message(f"/block {OTHER_USER['id']}", user=USER)  # not an admin
        replies = await fake.wait_for_reply(group.id, count=8)
        await settle(fake, group.message("@ThisBot pricing?", user=OTHER_USER))
        store = application.bot_data.services.store
        blocked = [
            user_id
            for user_id in (USER["id"], OTHER_USER["id"], ADMIN["id"], 999999)
            if store.is_user_blocked(user_id)
        ]
    texts = sorted(visible(call) for call in replies[1:])
    assert texts == sorted(
        [
            f"Blocked user {OTHER_USER['id']}: they get no replies and cost no model work.",
            "Usage: /block <user id>, or reply /block to their message (/unblock the same way).",
            "Admins cannot be blocked.",
            "I have never seen user 999999; nothing was blocked.",
            "Usage: /block <user id>, or reply /block to their message (/unblock the same way).",
            f"User {USER['id']} is not blocked.",
            "Sorry, admins only.",
        ]
    )
    assert blocked == [OTHER_USER["id"]]
    assert len(fake.calls_of("sendMessage", group.id)) == 8  # the blocked user's last question: no reply


async def test_allow_lists_answer_only_listed_users_and_chats(fake: FakeTelegram, data_dir: Path) -> None:
    knowledge = FakeKnowledgeBase()
    listed_group, other_group = group_chat(fake, -5001), group_chat(fake, -5002)
    async with run_bot(
        fake, data_dir, knowledge=knowledge, allowed_users=str(USER["id"]), allowed_chats=str(listed_group.id)
    ):
        private_chat(fake).message("pricing?")
        private_chat(fake, ADMIN).message("pricing?", user=ADMIN)
        listed_group.message("/ask pricing?", user=OTHER_USER)  # not listed, but the chat is
        await fake.wait_for(lambda call: call.method == "sendMessage" and call.ok, count=3)
        await settle(fake, private_chat(fake, OTHER_USER).message("pricing?", user=OTHER_USER))
        await settle(fake, other_group.message("/ask pricing?", user=OTHER_USER))
    answered = {call.chat_id for call in fake.calls_of("sendMessage", ok=True)}
    assert answered == {USER["id"], ADMIN["id"], listed_group.id}
    assert len(knowledge.questions) == 3  # no model work for the others
