"""Security properties, end to end: admin rights by user id (never by name), the token kept out of
every log line and error message, and no user able to make the bot send more than the configured rate
to a chat. (Webhook secret: test_e2e_errors.py and tests/bot/test_bot_app.py; no pickle loading:
test_e2e_reliability_disk.py.)"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from bot_doubles import FakeKnowledgeBase
from bot_e2e import ADMIN, USER, group_chat, private_chat, run_bot, visible
from fake_telegram import FakeTelegram

HERE = Path(__file__).resolve().parent
ADMINS_ONLY = "Sorry, admins only."


async def test_admin_rights_follow_the_user_id_not_the_name(fake: FakeTelegram, data_dir: Path) -> None:
    knowledge = FakeKnowledgeBase()
    admin = {**ADMIN, "username": "founder"}
    # Same first name and username as the admin, another id (usernames can be changed and reused).
    impostor = {**admin, "id": 31337}
    renamed_admin = {**ADMIN, "username": "someone_else", "first_name": "Renamed"}
    anonymous_admin = {
        "id": 1087968824,
        "is_bot": True,
        "first_name": "Group",
        "username": "GroupAnonymousBot",
    }
    async with run_bot(fake, data_dir, knowledge=knowledge):
        chat = private_chat(fake, impostor)
        chat.message("/reindex", user=impostor)
        [refused] = await fake.wait_for_reply(chat.id)
        group = group_chat(fake)
        group.message("/reindex@ThisBot", user=anonymous_admin, sender_chat=group.chat)
        [group_refused] = await fake.wait_for_reply(group.id)
        assert knowledge.rebuilt == 0
        own = private_chat(fake, renamed_admin)
        own.message("/reindex", user=renamed_admin)
        [done] = await fake.wait_for_reply(own.id)
    assert visible(refused) == visible(group_refused) == ADMINS_ONLY
    assert visible(done) != ADMINS_ONLY and knowledge.rebuilt == 1


@pytest.mark.slow
async def test_rejected_token_and_unreachable_telegram_never_print_the_token(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    """PTB quotes a rejected token in its exception; the process must not print it anywhere."""
    outputs = []
    for base_url in (fake.base_url, "http://127.0.0.1:9/bot"):  # wrong token for the fake; nothing on port 9
        env = {
            **os.environ,
            "TELEGRAM_BOT_TOKEN": "987654321:AAwrong-token-NOT-the-fakes_0123456",
            "TELEGRAM_API_BASE_URL": base_url,
            "DATA_DIR": str(tmp_path / "var"),
            "TRAIN_MISSING_MODELS": "false",
            "LOG_LEVEL": "DEBUG",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HERE / "bot_process.py"),
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), 60)
        except TimeoutError:
            process.send_signal(signal.SIGKILL)
            raise
        outputs.append((process.returncode, output.decode(errors="replace")))
    (rejected_code, rejected), (unreachable_code, unreachable) = outputs
    assert rejected_code == 1 and "rejected TELEGRAM_BOT_TOKEN" in rejected
    assert unreachable_code == 1
    for text in (rejected, unreachable):
        assert "AAwrong-token-NOT-the-fakes_0123456" not in text and "987654321:" not in text, text


async def test_a_user_cannot_make_the_bot_exceed_the_chat_rate(fake: FakeTelegram, data_dir: Path) -> None:
    """CHAT_RATE replies per window per chat, whatever the messages are, plus one "slow down" notice."""
    async with run_bot(fake, data_dir, chat_rate=5, question_rate=3, generation_rate=2, rate_window_s=60):
        chat = private_chat(fake)
        group = group_chat(fake)
        spam = ["pricing?", "/help", "/image 3 1", "/nonsense", "/ask", "/text hi", "/start"]
        for index in range(40):
            chat.message(spam[index % len(spam)])
            group.message(f"/help@ThisBot {index}")
            group.message("chatter the bot ignores", user={**USER, "id": 5555})
        await asyncio.sleep(0.5)
        await fake.wait_for(
            lambda call: call.method == "getUpdates" and fake.pending_updates == 0, timeout=20
        )
        await asyncio.sleep(1.0)
    for chat_id in (chat.id, group.id):
        sent = fake.calls_of({"sendMessage", "sendPhoto"}, chat_id, ok=True)
        notices = [call for call in sent if "going a bit fast" in call.text]
        assert len(notices) == 1 and len(sent) <= 5 + 1, [call.text[:40] for call in sent]
