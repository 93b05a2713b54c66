"""The outbox with both kinds of reply, texts and photos: stored whole in the SQLite store, replayed in
per-chat order (also by a new Outbox after a restart), deleted once delivered, dropped when Telegram
refuses them for good; and bot.delivery queueing what Telegram cannot take now."""

from __future__ import annotations

import asyncio
import datetime as dtm
import sqlite3
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from bot_doubles import tiny_png
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut

from bot import delivery
from bot.outbox import Outbox
from bot.store import SCHEMA_VERSION, Store

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")

PNG = tiny_png(8, 8)
CAPTION = "<i>8 × digit 3</i>"
MARKUP = {"inline_keyboard": [[{"text": "Again", "callback_data": "again"}]]}


class RecordingBot:
    """Stands in for telegram.Bot: records what is sent; `failures[method]` holds the errors the next
    calls of that method raise, one per call."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int, dict[str, Any]]] = []
        self.attempts: defaultdict[str, int] = defaultdict(int)
        self.failures: defaultdict[str, list[Exception]] = defaultdict(list)

    async def send_message(self, chat_id: int, text: str, **params: Any) -> SimpleNamespace:
        return self._call("send_message", chat_id, text=text, **params)

    async def send_photo(self, chat_id: int, photo: bytes, **params: Any) -> SimpleNamespace:
        return self._call("send_photo", chat_id, photo=photo, **params)

    def _call(self, method: str, chat_id: int, **params: Any) -> SimpleNamespace:
        self.attempts[method] += 1
        if self.failures[method]:
            raise self.failures[method].pop(0)
        self.sent.append((method, chat_id, params))
        return SimpleNamespace(chat_id=chat_id, message_id=len(self.sent))


def open_store(data_dir: Path) -> Store:
    store = Store(data_dir / "bot.sqlite3")
    store.open()
    return store


def context_for(store: Store, bot: RecordingBot) -> Any:
    """What bot.delivery uses of a CustomContext."""
    return SimpleNamespace(store=store, bot=bot, application=None)


def quoted(message_id: int) -> Message:
    return Message.de_json({"message_id": message_id, "date": 0, "chat": {"id": 5, "type": "group"}}, None)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery, "BACKOFF_S", (0.0, 0.0, 0.0))


def test_a_photo_is_stored_whole_and_survives_a_restart(data_dir: Path) -> None:
    store = open_store(data_dir)
    photo_id = store.queue_reply(5, CAPTION, reply_to=9, markup=MARKUP, photo=PNG)
    text_id = store.queue_reply(5, "after")
    store.close()
    reopened = open_store(data_dir)
    photo, text = reopened.due_replies()
    assert (photo.id, text.id) == (photo_id, text_id)
    assert photo.kind == "photo" and photo.photo == PNG and photo.html == CAPTION
    assert photo.parse_mode == "HTML" and photo.reply_to == 9 and photo.markup == MARKUP
    assert text.kind == "text" and text.photo is None and text.html == "after"
    reopened.close()


async def test_a_new_outbox_on_the_same_store_delivers_the_photo_then_the_text_behind_it(
    data_dir: Path,
) -> None:
    store = open_store(data_dir)
    store.queue_reply(5, CAPTION, reply_to=9, markup=MARKUP, photo=PNG)
    store.queue_reply(5, "after the photo")
    down = RecordingBot()
    down.failures["send_photo"] = [NetworkError("Bad Gateway")]
    assert await Outbox(store, down, interval_s=0.01).flush() == 0
    assert down.sent == [] and down.attempts["send_message"] == 0  # the text waits for the photo
    store.close()

    store = open_store(data_dir)  # a restart: a new store and outbox on the same file
    await asyncio.sleep(0.05)  # the photo's backoff (0.01 s) is over
    assert [(item.kind, item.attempts) for item in store.due_replies()] == [("photo", 1), ("text", 0)]
    bot = RecordingBot()
    outbox = Outbox(store, bot, interval_s=0.01)
    while store.outbox_size():
        await outbox.flush()
    assert [(method, chat) for method, chat, _ in bot.sent] == [("send_photo", 5), ("send_message", 5)]
    photo = bot.sent[0][2]
    assert photo["photo"] == PNG and photo["caption"] == CAPTION and photo["parse_mode"] == "HTML"
    assert photo["reply_parameters"].message_id == 9
    assert photo["reply_markup"] == InlineKeyboardMarkup.de_json(MARKUP, None)
    assert bot.sent[1][2]["text"] == "after the photo" and bot.sent[1][2]["reply_parameters"] is None
    assert await outbox.flush() == 0 and len(bot.sent) == 2  # deleted once delivered: sent once
    store.close()


async def test_a_photo_telegram_refuses_for_good_is_dropped_not_retried(data_dir: Path) -> None:
    store = open_store(data_dir)
    store.queue_reply(5, CAPTION, photo=PNG)
    store.queue_reply(5, "next")
    bot = RecordingBot()
    bot.failures["send_photo"] = [BadRequest("Bad Request: IMAGE_PROCESS_FAILED")]
    outbox = Outbox(store, bot, interval_s=0.01)
    await outbox.flush()
    await outbox.flush()
    assert bot.attempts["send_photo"] == 1
    assert [(method, params["text"]) for method, _, params in bot.sent] == [("send_message", "next")]
    assert store.outbox_size() == 0
    store.close()


async def test_a_later_reply_waits_while_the_chats_earlier_photo_backs_off(data_dir: Path) -> None:
    store = open_store(data_dir)
    store.queue_reply(5, CAPTION, photo=PNG)
    store.queue_reply(5, "behind")
    store.queue_reply(6, "another chat")
    bot = RecordingBot()
    bot.failures["send_photo"] = [TimedOut()]
    outbox = Outbox(store, bot, interval_s=3600)  # the photo's next try is an hour away
    await outbox.flush()
    await outbox.flush()
    assert [(method, chat) for method, chat, _ in bot.sent] == [("send_message", 6)]
    assert [item.html for item in store.due_replies()] == []
    assert store.outbox_size() == 2
    store.close()


async def test_send_photo_queues_what_telegram_cannot_take_and_later_replies_queue_behind(
    data_dir: Path,
) -> None:
    store = open_store(data_dir)
    bot = RecordingBot()
    bot.failures["send_photo"] = [NetworkError("Bad Gateway")] * delivery.ATTEMPTS
    context = context_for(store, bot)
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Again", callback_data="again")]])
    assert (
        await delivery.send_photo(context, 5, PNG, CAPTION, reply_to=quoted(9), reply_markup=markup) is None
    )
    assert bot.attempts["send_photo"] == delivery.ATTEMPTS
    # Telegram is back, but the photo is still queued: the text must not overtake it.
    assert await delivery.send_html(context, 5, "answer", reply_to=quoted(10)) == []
    assert bot.sent == []
    [photo, text] = store.due_replies()
    assert photo.kind == "photo" and photo.photo == PNG and photo.reply_to == 9 and photo.markup == MARKUP
    assert text.kind == "text" and text.reply_to == 10
    await Outbox(store, bot).flush()
    assert [method for method, _, _ in bot.sent] == ["send_photo", "send_message"]
    assert store.outbox_size() == 0
    # With nothing queued, replies go straight out again.
    assert await delivery.send_photo(context, 5, PNG, CAPTION) is not None
    assert store.outbox_size() == 0 and len(bot.sent) == 3
    store.close()


async def test_send_photo_keeps_a_long_flood_wait_and_lets_bad_requests_through(data_dir: Path) -> None:
    store = open_store(data_dir)
    bot = RecordingBot()
    context = context_for(store, bot)
    bot.failures["send_photo"] = [RetryAfter(dtm.timedelta(seconds=600))]
    assert await delivery.send_photo(context, 5, PNG, CAPTION) is None
    assert store.outbox_size() == 1 and store.due_replies() == []  # not before Telegram's wait is over
    bot.failures["send_photo"] = [BadRequest("Bad Request: IMAGE_PROCESS_FAILED")]
    with pytest.raises(BadRequest):  # never deliverable: the error handler tells the user
        await delivery.send_photo(context, 6, PNG, CAPTION)
    assert store.outbox_size() == 1 and not store.has_queued(6)
    store.close()


def test_a_store_from_before_photos_is_upgraded_and_keeps_its_queued_replies(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    path = data_dir / "bot.sqlite3"
    with sqlite3.connect(path) as old:  # schema version 1's outbox, with one reply waiting
        old.execute(
            "CREATE TABLE outbox (id INTEGER PRIMARY KEY, chat_id INTEGER NOT NULL, html TEXT NOT NULL,"
            " reply_to INTEGER, markup TEXT, created_at REAL NOT NULL, next_at REAL NOT NULL,"
            " attempts INTEGER NOT NULL DEFAULT 0)"
        )
        old.execute("INSERT INTO outbox(chat_id, html, created_at, next_at) VALUES (5, 'old', 0, 0)")
        old.execute("PRAGMA user_version=1")
    old.close()
    store = open_store(data_dir)
    store.queue_reply(5, CAPTION, photo=PNG)
    old_reply, photo = store.due_replies()
    assert (old_reply.kind, old_reply.html, old_reply.photo, old_reply.parse_mode) == (
        "text",
        "old",
        None,
        "HTML",
    )
    assert photo.kind == "photo" and photo.photo == PNG
    store.close()
    store = open_store(data_dir)  # opening again changes nothing
    assert store.outbox_size() == 2
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()
