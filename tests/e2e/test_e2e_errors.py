"""Telegram's failures end to end: flood waits, network errors, blocked users, bad HTML, crashes,
the global error handler, secret redaction in logs, and webhook mode."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from bot_doubles import FakeGenerationClient, FakeKnowledgeBase
from bot_e2e import TOKEN, USER, bot_settings, private_chat, run_bot, visible
from fake_telegram import FakeTelegram, Fault

from bot.app import ALLOWED_UPDATES, build_application, running
from bot.context import Services
from bot.logs import setup_logging
from bot.store import Store

# PTB's own rate limiter reads RetryAfter.retry_after, which warns about its future type (bot.delivery
# accepts both the int and the timedelta form).
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")


async def test_flood_wait_is_retried_after_retry_after(fake: FakeTelegram, data_dir: Path) -> None:
    fault = Fault(429, "Too Many Requests: retry after 1", {"retry_after": 1})
    fake.fail_next("sendMessage", fault)
    async with run_bot(fake, data_dir):
        chat = private_chat(fake)
        chat.message("pricing?")
        [reply] = await fake.wait_for_reply(chat.id)
    attempts = fake.calls_of("sendMessage", chat.id)
    assert [call.status for call in attempts] == [429, 200]
    assert "Price on value" in visible(reply)


async def test_server_errors_and_dropped_connections_are_retried(fake: FakeTelegram, data_dir: Path) -> None:
    fake.fail_next("sendMessage", Fault(502, "Bad Gateway"))
    fake.fail_next("sendMessage", Fault(0, "", drop_connection=True))
    async with run_bot(fake, data_dir):
        chat = private_chat(fake)
        chat.message("pricing?")
        await fake.wait_for_reply(chat.id)
    assert [call.status for call in fake.calls_of("sendMessage", chat.id)] == [502, 599, 200]


async def test_blocked_user_is_skipped_and_others_are_served(fake: FakeTelegram, data_dir: Path) -> None:
    blocked_user = {**USER, "id": 3003}
    fake.blocked.add(blocked_user["id"])
    async with run_bot(fake, data_dir) as application:
        blocked = private_chat(fake, blocked_user)
        blocked.message("pricing?", user=blocked_user)
        await fake.wait_for(lambda call: call.method == "sendMessage" and call.status == 403)
        other = private_chat(fake)
        other.message("pricing?")
        await fake.wait_for_reply(other.id)
        assert application.bot_data.services.store.is_blocked(blocked_user["id"])
        # Unblocking and writing again clears the flag and gets an answer.
        fake.blocked.clear()
        blocked.message("pricing now?", user=blocked_user)
        await fake.wait_for_reply(blocked.id)
        assert not application.bot_data.services.store.is_blocked(blocked_user["id"])
    assert len(fake.calls_of("sendMessage", blocked_user["id"], ok=False)) == 1  # no retry loop on 403


async def test_rejected_html_falls_back_to_plain_text(fake: FakeTelegram, data_dir: Path) -> None:
    fake.fail_next(
        "sendMessage",
        Fault(400, 'Bad Request: can\'t parse entities: Unsupported start tag "x" at byte offset 3'),
    )
    async with run_bot(fake, data_dir):
        chat = private_chat(fake)
        chat.message("pricing?")
        [reply] = await fake.wait_for_reply(chat.id)
    assert "parse_mode" not in reply.params
    assert reply.text.startswith("Price on value")
    assert "<b>" not in reply.text and "Sources" in reply.text


class ExplodingKnowledgeBase(FakeKnowledgeBase):
    def ask(self, question: str, k: int = 5):
        raise RuntimeError(f"index corrupted while answering {question!r}")


@pytest.fixture
def debug_logging() -> Iterator[None]:
    """Everything logged at DEBUG (httpx request lines included) with the token registered as secret."""
    setup_logging("DEBUG", [TOKEN])
    yield
    setup_logging("WARNING", [])


async def test_crash_is_logged_with_update_id_user_told_and_token_never_logged(
    fake: FakeTelegram, data_dir: Path, caplog, debug_logging: None
) -> None:
    caplog.set_level(logging.DEBUG)
    secret_question = "pricing for my-secret-project-zeta?"
    async with run_bot(fake, data_dir, knowledge=ExplodingKnowledgeBase()):
        chat = private_chat(fake)
        message = chat.message(secret_question)
        [reply] = await fake.wait_for_reply(chat.id)
    assert visible(reply) == "Sorry, something went wrong. Please try again."
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert any(
        f"update {message['update_id']} failed: RuntimeError" in record.getMessage() for record in errors
    )
    info_and_up = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert "my-secret-project-zeta" not in info_and_up
    # The whole captured log (PTB's request lines at DEBUG included) never shows the token.
    assert TOKEN not in caplog.text and TOKEN.split(":")[1] not in caplog.text


async def test_too_long_error_from_telegram_reaches_the_error_handler(
    fake: FakeTelegram, data_dir: Path
) -> None:
    fake.fail_next("sendMessage", Fault(400, "Bad Request: message is too long"))
    async with run_bot(fake, data_dir):
        chat = private_chat(fake)
        chat.message("pricing?")
        [reply] = await fake.wait_for_reply(chat.id)
    assert visible(reply) == "Sorry, something went wrong. Please try again."


async def test_webhook_mode_checks_the_secret_token(
    fake: FakeTelegram, data_dir: Path, unused_tcp_port: int
) -> None:
    settings = bot_settings(fake, data_dir)
    services = Services(FakeKnowledgeBase(), FakeGenerationClient(), Store(data_dir / "bot.sqlite3"))
    application = build_application(settings, services)
    secret = "s3cret-Webhook_token"
    update = {
        "update_id": 99,
        "message": {
            "message_id": 5,
            "date": 0,
            "chat": {"id": USER["id"], "type": "private"},
            "from": USER,
            "text": "pricing?",
        },
    }
    async with running(application):
        await application.updater.stop()  # running() polls; switch this instance to a webhook
        await application.updater.start_webhook(
            listen="127.0.0.1",
            port=unused_tcp_port,
            url_path="hook",
            webhook_url="https://example.invalid/hook",
            secret_token=secret,
            allowed_updates=ALLOWED_UPDATES,
        )
        url = f"http://127.0.0.1:{unused_tcp_port}/hook"
        async with httpx.AsyncClient() as client:
            refused = await client.post(url, json=update)
            wrong = await client.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "nope"})
            accepted = await client.post(
                url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": secret}
            )
        [reply] = await fake.wait_for_reply(USER["id"])
    assert refused.status_code == 403 and wrong.status_code == 403 and accepted.status_code == 200
    assert fake.webhook["secret_token"] == secret and fake.webhook["url"] == "https://example.invalid/hook"
    assert "Price on value" in visible(reply)
