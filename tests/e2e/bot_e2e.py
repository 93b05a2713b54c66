"""End-to-end helpers: chats that inject updates, and the real PTB Application on the fake server.

A uniquely named module (not conftest) so test files can import it whatever else the suite collects.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bot_doubles import FakeGenerationClient, FakeKnowledgeBase
from fake_telegram import Call, FakeTelegram, parse_telegram_html

from bot.app import build_application, running
from bot.context import Services
from bot.settings import BotSettings
from bot.store import Store

TOKEN = "123456789:AAE-secret-TEST-token_0123456789abc"
USER = {"id": 1001, "is_bot": False, "first_name": "Ada", "language_code": "en"}
OTHER_USER = {"id": 1002, "is_bot": False, "first_name": "Lin", "language_code": "zh-hans"}
ADMIN = {"id": 4242, "is_bot": False, "first_name": "Root", "language_code": "en"}
_ENTITY = re.compile(r"@\w+")


class Chat:
    """Builds the updates a Telegram client would send from one chat."""

    def __init__(self, fake: FakeTelegram, chat: dict) -> None:
        self.fake = fake
        self.chat = chat
        self.id: int = chat["id"]

    def message(
        self, text: str, user: dict | None = USER, reply_to: dict | None = None, **extra: Any
    ) -> dict:
        """Inject a message; returns it (with its message_id)."""
        message: dict[str, Any] = {
            "message_id": self.fake.new_message_id(),
            "date": int(time.time()),
            "chat": self.chat,
            "text": text,
            **extra,
        }
        if user is not None:
            message["from"] = user
        entities = []
        if text.startswith("/"):
            entities.append({"type": "bot_command", "offset": 0, "length": len(text.split()[0])})
        entities += [
            {"type": "mention", "offset": match.start(), "length": len(match.group())}
            for match in _ENTITY.finditer(text)
            if match.start() > 0 or not text.startswith("/")
        ]
        if entities:
            message["entities"] = entities
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        kind = "channel_post" if self.chat["type"] == "channel" else "message"
        message["update_id"] = self.fake.inject(kind, message)
        return message

    def press(self, bot_message: dict, data: str, user: dict = USER) -> int:
        """Inject a button press on one of the bot's messages."""
        query = {
            "id": str(next(_query_ids)),
            "from": user,
            "chat_instance": str(self.id),
            "message": bot_message,
            "data": data,
        }
        return self.fake.inject("callback_query", query)


_query_ids = itertools.count(1)


def visible(call: Call) -> str:
    """What a user sees of a sent message: its HTML parsed the way Telegram parses it (it must parse)."""
    problem, text = parse_telegram_html(call.text)
    assert problem is None, problem
    return text


def private_chat(fake: FakeTelegram, user: dict = USER) -> Chat:
    return Chat(fake, {"id": user["id"], "type": "private", "first_name": user["first_name"]})


def group_chat(fake: FakeTelegram, chat_id: int = -5001, kind: str = "group") -> Chat:
    return Chat(fake, {"id": chat_id, "type": kind, "title": "Founders"})


_inline_ids = itertools.count(1)


def inline_query(fake: FakeTelegram, query: str, user: dict = USER) -> str:
    """Inject "@ThisBot <query>" typed in some chat; returns the inline query's id."""
    query_id = f"iq{next(_inline_ids)}"
    fake.inject(
        "inline_query", {"id": query_id, "from": user, "query": query, "offset": "", "chat_type": "group"}
    )
    return query_id


def forum_chat(fake: FakeTelegram, topics: set[int], chat_id: int = -1007001) -> Chat:
    """A forum supergroup with these topics (message_thread_id) besides General."""
    fake.forums[chat_id] = set(topics)
    return Chat(fake, {"id": chat_id, "type": "supergroup", "title": "Founders forum", "is_forum": True})


def in_topic(thread_id: int) -> dict[str, Any]:
    """The fields of a message written in a forum topic (General has none)."""
    return {"message_thread_id": thread_id, "is_topic_message": True}


def channel(fake: FakeTelegram, chat_id: int = -1009001) -> Chat:
    return Chat(fake, {"id": chat_id, "type": "channel", "title": "News"})


def bot_settings(fake: FakeTelegram, data_dir: Path, **overrides: Any) -> BotSettings:
    values: dict[str, Any] = {
        "telegram_bot_token": TOKEN,
        "telegram_api_base_url": fake.base_url,
        "data_dir": data_dir,
        "admin_ids": frozenset({ADMIN["id"]}),
        "telegram_flood_rate": 0,
        "question_rate": 1000,
        "generation_rate": 1000,
        "chat_rate": 1000,
        **overrides,
    }
    return BotSettings(_env_file=None, **values)


@asynccontextmanager
async def run_bot(
    fake: FakeTelegram,
    data_dir: Path,
    knowledge: Any | None = None,
    generation: Any | None = None,
    **overrides: Any,
) -> AsyncIterator[Any]:
    """The real Application polling the fake server until the block ends."""
    settings = bot_settings(fake, data_dir, **overrides)
    services = Services(
        knowledge=knowledge or FakeKnowledgeBase(),
        generation=generation or FakeGenerationClient(),
        store=Store(data_dir / "bot.sqlite3"),
    )
    application = build_application(settings, services)
    async with running(application, poll_timeout=0.25):
        yield application
