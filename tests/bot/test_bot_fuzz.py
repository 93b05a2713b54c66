"""Random updates through the real Application and handlers (test doubles for knowledge and generation):
odd unicode, RTL and zero-width characters, 4096-character messages, commands with junk arguments,
captions, stickers, edits, messages without text, unknown update types, and callback data the bot never
sent. Nothing may reach the error handler, and every request the bot makes must be one Telegram accepts.

The example count is fixed and the run derandomised, so CI sees the same updates every time;
FUZZ_EXAMPLES raises the count for a longer local run.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bot_doubles import FakeGenerationClient, FakeKnowledgeBase
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from telegram import Update
from telegram_checks import BOT_USER, RecordingRequest, problems

from bot.app import build_application, running
from bot.context import Services
from bot.settings import BotSettings
from bot.store import Store

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "1500"))
ADMIN_ID = 4242
USER_COMMANDS = ["start", "help", "about", "ask", "image", "text", "privacy", "forget"]
# /retrain from an admin would start a real trainer; non-admins may send it (and are refused).
ADMIN_COMMANDS = ["stats", "models", "reindex", "rollback"]
ODD = (
    "\u202e\u202d\u200f\u200e\u061c"  # bidi overrides and marks
    "\u200b\u200c\u200d\u2060\ufeff"  # zero-width
    "\u0301\u0336\u20dd"  # combining marks
    "<>&\"';/@#:\n\t\r "  # what HTML, commands and callback data care about
    "定价融资创业你好"
    "مرحبا שלום"
    "\U0001f600\U0001f468\u200d\U0001f469\u200d\U0001f467\U0001f1fa\U0001f1f8"  # astral, ZWJ emoji
    "\x00\x07\x1b\x7f"
)
TEXT_ALPHABET = st.characters(exclude_categories=("Cs",))  # no lone surrogates: not valid UTF-8

texts = st.one_of(
    st.text(alphabet=st.sampled_from(ODD), max_size=60),
    st.text(alphabet=TEXT_ALPHABET, max_size=200),
    st.sampled_from(["pricing?", "long answer please", "定价怎么做？", "<b>pricing</b> & </i>", "&amp;&#0;"]),
    st.integers(4000, 4096).map(lambda n: ("pricing " + "\u202e<&>" * 2000)[:n]),
    st.integers(4000, 4096).map(lambda n: ("long " + "字" * 4096)[:n]),
)
junk_args = st.one_of(
    st.just(""),
    st.text(alphabet=st.sampled_from(ODD), max_size=30),
    st.lists(st.integers(-(10**20), 10**20).map(str), max_size=4).map(" ".join),
    st.sampled_from(["3 4", "9 64", "-1", "0 0", "1e9", "gan", "lstm --epochs 1", "cancel x", "NaN", "①"]),
    st.text(alphabet=TEXT_ALPHABET, max_size=300),
)
users = st.one_of(
    st.builds(
        lambda uid, lang, name: {"id": uid, "is_bot": False, "first_name": name, "language_code": lang},
        st.sampled_from([1001, 1002, ADMIN_ID, 2**40]),
        st.sampled_from(["en", "zh-hans", "ar", "", "xx-YY"]),
        st.text(alphabet=st.sampled_from(ODD), min_size=1, max_size=10),
    ),
    st.just({"id": 1003, "is_bot": False, "first_name": "Root", "username": "admin"}),
)
chats = st.sampled_from(
    [
        {"id": 1001, "type": "private", "first_name": "Ada"},
        {"id": -5001, "type": "group", "title": "Founders"},
        {"id": -1005001, "type": "supergroup", "title": "Founders <b>"},
        {"id": -1007001, "type": "supergroup", "title": "Forum", "is_forum": True},
    ]
)


def _entities(content: str) -> list[dict]:
    entities = []
    if content.startswith("/"):
        entities.append({"type": "bot_command", "offset": 0, "length": len(content.split()[0])})
    index = content.find("@ThisBot")
    if index > 0:
        # offsets count UTF-16 code units, as Telegram's do
        offset = len(content[:index].encode("utf-16-le")) // 2
        entities.append({"type": "mention", "offset": offset, "length": len("@ThisBot")})
    return entities


@st.composite
def commands(draw: st.DrawFn) -> str:
    known = st.sampled_from(USER_COMMANDS + ADMIN_COMMANDS + ["image", "text", "retrain", "START", "ask_"])
    name = draw(
        st.one_of(
            known,
            known,
            known,
            st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=40),
        )
    )
    suffix = draw(st.sampled_from(["", "", "@ThisBot", "@thisbot", "@OtherBot"]))
    args = draw(junk_args)
    return f"/{name}{suffix}" + (f" {args}" if args else "")


@st.composite
def messages(draw: st.DrawFn, chat: dict | None = None) -> dict:
    chat = chat or draw(chats)
    user = draw(users)
    if chat["type"] == "private":
        user = {**user, "id": chat["id"]}
    message: dict[str, Any] = {"message_id": draw(st.integers(1, 10**6)), "date": 1_700_000_000, "chat": chat}
    if draw(st.booleans()) or chat["type"] != "channel":
        message["from"] = user
    body = draw(st.sampled_from(["text", "text", "command", "mention", "caption", "sticker", "none"]))
    if body in {"text", "command", "mention"}:
        content = {"text": draw(texts), "command": draw(commands()), "mention": None}[body]
        if content is None:
            content = f"{draw(texts)[:200]} @ThisBot {draw(texts)[:200]}"
        if not content.strip():
            content = "?"  # Telegram delivers no empty or blank messages
        message["text"] = content
        if entities := _entities(content):
            message["entities"] = entities
    elif body == "caption":
        message["photo"] = [{"file_id": "p", "file_unique_id": "p", "width": 9, "height": 9}]
        caption = draw(st.one_of(texts, commands()))
        message["caption"] = caption[:1024]
        if entities := _entities(message["caption"]):
            message["caption_entities"] = entities
    elif body == "sticker":
        message["sticker"] = {
            "file_id": "s",
            "file_unique_id": "s",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": draw(st.sampled_from(["\U0001f600", "\u200d"])),
        }
    if chat.get("is_forum") and draw(st.booleans()):  # a topic message (else General's)
        message.update(message_thread_id=draw(st.sampled_from([1, 77, 2**31 - 1])), is_topic_message=True)
    if draw(st.booleans()):
        replied = {"message_id": 5, "date": 1_700_000_000, "chat": chat, "text": "earlier"}
        replied["from"] = BOT_USER if draw(st.booleans()) else user
        message["reply_to_message"] = replied
    return message


callback_data = st.one_of(
    st.builds(
        lambda action, answer, value: f"{action}:{answer}:{value}",
        st.sampled_from(["fb", "more", "forget", "xx", ""]),
        st.one_of(st.integers(-3, 40), st.integers(-(10**30), 10**30)),
        st.one_of(st.integers(-5, 12), st.integers(-(10**30), 10**30)),
    ),
    st.text(alphabet=st.sampled_from(ODD), max_size=64),
    st.sampled_from(["fb:1", "fb:1:1:1", "more:1:3", "more:2:-3", "fb::", ":", "fb:0x1:1"]),
    st.none(),
)


@st.composite
def callback_queries(draw: st.DrawFn) -> dict:
    chat = draw(chats)
    query: dict[str, Any] = {
        "id": str(draw(st.integers(1, 10**9))),
        "from": draw(users),
        "chat_instance": "ci",
    }
    data = draw(callback_data)
    if data is not None:
        query["data"] = data
    where = draw(st.sampled_from(["message", "inaccessible", "inline"]))
    if where == "message":
        query["message"] = {
            "message_id": draw(st.integers(1, 10**6)),
            "date": 1_700_000_000,
            "chat": chat,
            "from": BOT_USER,
            "text": "an answer",
        }
    elif where == "inaccessible":
        query["message"] = {"message_id": 3, "date": 0, "chat": chat}
    else:
        query["inline_message_id"] = "inline-1"
    return query


@st.composite
def updates(draw: st.DrawFn) -> dict:
    kind = draw(
        st.sampled_from(
            [
                "message",
                "message",
                "message",
                "edited_message",
                "channel_post",
                "edited_channel_post",
                "callback_query",
                "callback_query",
                "inline_query",
                "unknown",
            ]
        )
    )
    update: dict[str, Any] = {"update_id": draw(st.integers(1, 2**31))}
    if kind == "callback_query":
        update[kind] = draw(callback_queries())
    elif kind == "inline_query":
        query = draw(
            st.one_of(texts, st.just(""), st.text(alphabet=TEXT_ALPHABET, min_size=256, max_size=256))
        )
        update[kind] = {
            "id": str(draw(st.integers(1, 10**9))),
            "from": draw(users),
            "query": query[:256],  # Telegram sends at most 256 characters
            "offset": draw(st.sampled_from(["", "5", "junk"])),
        }
    elif kind in {"channel_post", "edited_channel_post"}:
        update[kind] = draw(messages({"id": -1009001, "type": "channel", "title": "News"}))
    elif kind == "unknown":
        # Kinds the bot did not ask for (allowed_updates) or that this PTB version does not know.
        name = draw(st.sampled_from(["message_reaction", "future_update_kind", "x"]))
        if name == "message_reaction":
            update[name] = {
                "chat": draw(chats),
                "message_id": 5,
                "date": 1_700_000_000,
                "user": draw(users),
                "old_reaction": [],
                "new_reaction": [{"type": "emoji", "emoji": "\U0001f44d"}],
            }
        else:
            update[name] = {"junk": draw(texts)[:50], "chat": draw(chats)}
    else:
        update[kind] = draw(messages())
    return update


def _command_update(content: str) -> dict:
    """A well-formed command, run before the random ones (the generated mix may miss a generator)."""
    chat = {"id": 1001, "type": "private", "first_name": "Ada"}
    user = {"id": 1001, "is_bot": False, "first_name": "Ada"}
    message = {"message_id": 1, "date": 1_700_000_000, "chat": chat, "from": user, "text": content}
    message["entities"] = _entities(content)
    return {"update_id": 1, "message": message}


class Harness:
    """The real Application on an in-process Bot API double, driven update by update."""

    def __init__(self, data_dir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.request = RecordingRequest()
        self.errors: list[BaseException] = []
        bot_settings = BotSettings(
            _env_file=None,
            telegram_bot_token="1:fuzz",
            data_dir=data_dir,
            admin_ids=frozenset({ADMIN_ID}),
            train_missing_models=False,
            question_rate=5,
            generation_rate=1000,
            chat_rate=100_000,
            rate_window_s=3600,
        )
        services = Services(
            knowledge=FakeKnowledgeBase(),
            generation=FakeGenerationClient(),
            store=Store(data_dir / "bot.sqlite3"),
        )
        self.application = build_application(bot_settings, services, request=self.request)
        self.application.add_error_handler(self._record_error)
        self._running = running(self.application)

    async def _record_error(self, update: object, context: Any) -> None:
        self.errors.append(context.error)

    def __enter__(self) -> Harness:
        self.loop.run_until_complete(self._running.__aenter__())
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.run_until_complete(self._running.__aexit__(None, None, None))
        self.loop.close()

    def feed(self, data: dict) -> list:
        """Process one update to the end; the requests it caused."""
        first = len(self.request.requests)
        self.errors.clear()
        update = Update.de_json(data, self.application.bot)
        self.loop.run_until_complete(self.application.process_update(update))
        return self.request.requests[first:]


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with Harness(tmp_path_factory.mktemp("fuzz") / "var") as running_harness:
        yield running_harness


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
@example(update=_command_update("/text once upon a time"))
@example(update=_command_update("/image 3 2"))
@given(update=updates())
def test_random_updates_never_fail_and_every_request_is_valid(harness: Harness, update: dict) -> None:
    requests = harness.feed(update)
    assert harness.errors == [], f"handler raised {harness.errors[0]!r} for {update!r}"
    invalid = [problem for request in requests for problem in problems(request.method, request.params)]
    assert invalid == [], f"{invalid} for {update!r}"
    kind = next(key for key in update if key != "update_id")
    if kind == "callback_query":
        # Telegram shows a spinner until a press is answered: every press gets exactly one answer.
        assert [r.method for r in requests].count("answerCallbackQuery") == 1, (update, requests)
    if kind == "inline_query":
        assert [r.method for r in requests].count("answerInlineQuery") == 1, (update, requests)
    chat = (update.get(kind) or {}).get("chat") or {}
    # Replies go to the topic the message was written in, and nowhere else.
    topic = update[kind].get("message_thread_id") if update[kind].get("is_topic_message") else None
    if kind == "message":
        threads = {
            str(r.params["message_thread_id"]) if r.params.get("message_thread_id") is not None else None
            for r in requests
            if r.method in {"sendMessage", "sendPhoto", "sendChatAction"}
        }
        assert threads <= {topic if topic is None else str(topic)}, (update, threads)
    if chat.get("type") == "private" and kind == "message" and "text" in update[kind]:
        # Any private text is a question or a command: it gets an answer, a usage line or a refusal.
        sent = [r for r in requests if r.method in {"sendMessage", "sendPhoto"}]
        assert len(sent) >= 1, update


def test_the_fuzzer_reaches_the_handlers(harness: Harness) -> None:
    """A guard against a fuzzer that only ever produced ignored updates: the run above (random updates
    and the two explicit commands) stored answers and usage rows and pressed buttons."""
    store = harness.application.bot_data.services.store
    counts = store.usage_counts()
    kinds = {kind for (_, kind, _) in counts}
    assert {"question", "image", "text"} <= kinds, counts
    assert harness.request.requests, "no request was made"
    methods = {request.method for request in harness.request.requests}
    assert {"sendMessage", "sendPhoto", "answerCallbackQuery", "answerInlineQuery"} <= methods, methods
