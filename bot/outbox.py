"""Replies that could not be delivered when they were made (Telegram down, flood waits beyond what a
handler waits, the network gone) are kept in the store's outbox and retried in the background until
they go out, so a user whose message was answered during a fault gets the answer once it clears.

A reply is a text message or a photo (a PNG with a caption, e.g. /image's digits); both kinds share one
queue, so a chat gets them in the order they were made. A reply that Telegram refuses for good (a bad
request, a blocked chat) is dropped; one still not delivered after `MAX_AGE_S` is dropped with an error
in the log.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import time
from contextlib import suppress
from typing import TYPE_CHECKING

from telegram import InlineKeyboardMarkup, ReplyParameters
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError

if TYPE_CHECKING:
    from telegram import Bot, Message

    from bot.store import OutboxItem, Store

logger = logging.getLogger(__name__)

MAX_AGE_S = 24 * 3600
MAX_BACKOFF_S = 300.0


def retry_seconds(value: int | float | dtm.timedelta) -> float:
    """A RetryAfter's wait in seconds (PTB gives an int or a timedelta)."""
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


def quote_of(message_id: int | None) -> ReplyParameters | None:
    """Reply parameters quoting `message_id`, still sent when that message is gone; None for none."""
    if message_id is None:
        return None
    return ReplyParameters(message_id=message_id, allow_sending_without_reply=True)


class Outbox:
    """Delivers queued replies every `interval_s` seconds, oldest first, in order per chat."""

    def __init__(self, store: Store, bot: Bot, interval_s: float = 5.0) -> None:
        self.store = store
        self.bot = bot
        self.interval_s = interval_s
        self.delivered = 0
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                self.store.flush_deferred()
                await self.flush()
            except Exception as exc:  # the loop must outlive any one failure (a locked store, say)
                logger.warning("outbox round failed: %s", type(exc).__name__)

    async def flush(self) -> int:
        """One delivery round; returns how many replies went out."""
        delivered = 0
        failed_chats: set[int] = set()
        for item in self.store.due_replies():
            if item.chat_id in failed_chats:
                continue  # keep a chat's replies in order: the later ones wait for the earlier
            if time.time() - item.created_at > MAX_AGE_S:
                logger.error(
                    "reply %s to chat %s undeliverable for a day; dropping it", item.id, item.chat_id
                )
                self.store.reply_delivered(item.id)
                continue
            retry_in = await self._deliver(item)
            if retry_in is None:
                self.store.reply_delivered(item.id)
                delivered += 1
            else:
                failed_chats.add(item.chat_id)
                self.store.reply_failed(item.id, retry_in)
        self.delivered += delivered
        return delivered

    async def _deliver(self, item: OutboxItem) -> float | None:
        """None when done with the item (sent, or refused for good); else seconds until the next try."""
        markup = InlineKeyboardMarkup.de_json(item.markup, self.bot) if item.markup else None
        quote = quote_of(item.reply_to or None)
        chat_id = item.chat_id
        try:
            try:
                await self._send(item, chat_id, quote, markup, item.thread_id)
            except ChatMigrated as exc:  # a plain group became a supergroup: it had no topics
                await self._send(item, exc.new_chat_id, None, markup, None)
            logger.info("delivered queued %s %s to chat %s", item.kind, item.id, chat_id)
            return None
        except (Forbidden, BadRequest) as exc:
            logger.warning(
                "queued %s %s to chat %s refused: %s; dropping it", item.kind, item.id, chat_id, exc.message
            )
            return None
        except RetryAfter as exc:
            return retry_seconds(exc.retry_after)
        except TelegramError as exc:  # network errors, 5xx, timeouts: back off
            logger.info("queued %s %s not delivered yet: %s", item.kind, item.id, type(exc).__name__)
            return min(MAX_BACKOFF_S, self.interval_s * 2 ** min(item.attempts, 10))

    async def _send(
        self,
        item: OutboxItem,
        chat_id: int,
        quote: ReplyParameters | None,
        markup: InlineKeyboardMarkup | None,
        thread_id: int | None,
    ) -> Message:
        if item.kind == "photo":
            return await self.bot.send_photo(
                chat_id,
                photo=item.photo,
                caption=item.html or None,
                parse_mode=item.parse_mode,
                reply_parameters=quote,
                reply_markup=markup,
                message_thread_id=thread_id,
            )
        return await self.bot.send_message(
            chat_id,
            item.html,
            parse_mode=item.parse_mode,
            reply_parameters=quote,
            reply_markup=markup,
            message_thread_id=thread_id,
        )
