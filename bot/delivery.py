"""Sending to Telegram robustly: split long HTML, retry transient failures, follow group migrations,
skip users who blocked the bot, and keep a chat action alive while slow work runs.

Replies (texts and photos) that cannot be delivered now go to the outbox (bot.outbox), and so does any
reply to a chat whose earlier replies still wait there, so a chat sees its replies in the order made."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, TypeVar

from telegram import InlineKeyboardMarkup, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.formatting import MESSAGE_LIMIT, html_to_plain, split_html
from bot.outbox import quote_of, retry_seconds

if TYPE_CHECKING:
    from bot.context import CustomContext

logger = logging.getLogger(__name__)

T = TypeVar("T")

ATTEMPTS = 4
BACKOFF_S = (0.5, 1.0, 2.0)
MAX_RETRY_AFTER_S = 30.0
CHAT_ACTION_INTERVAL_S = 4.0  # Telegram shows an action for about 5 s
CHAT_ACTION_GRACE_S = 0.3  # work done sooner needs no indicator: the reply itself arrives first


async def call_telegram(
    context: CustomContext, chat_id: int, make_call: Callable[[int], Awaitable[T]]
) -> T | None:
    """Run `make_call(chat_id)`; retry flood waits, timeouts and network errors; follow a migration to
    the supergroup; return None when the user blocked the bot. Bad requests propagate at once."""
    for attempt in range(ATTEMPTS):
        last = attempt == ATTEMPTS - 1
        try:
            return await make_call(chat_id)
        except ChatMigrated as exc:
            new_chat_id = exc.new_chat_id
            logger.info("chat %s migrated to %s; following it", chat_id, new_chat_id)
            remember_migration(context, chat_id, new_chat_id)
            chat_id = new_chat_id
        except Forbidden:
            logger.info("chat %s blocked the bot or removed it; skipping", chat_id)
            context.store.set_blocked(chat_id, True)
            return None
        except RetryAfter as exc:
            wait = retry_seconds(exc.retry_after)
            if last or wait > MAX_RETRY_AFTER_S:
                raise
            logger.warning("flood limit for chat %s: waiting %.1f s", chat_id, wait)
            await asyncio.sleep(wait)
        except BadRequest:
            raise
        except NetworkError as exc:  # TimedOut included
            if last:
                raise
            logger.warning("network error talking to Telegram (%s); retrying", type(exc).__name__)
            await asyncio.sleep(BACKOFF_S[attempt])
    return None


def topic_of(message: Message | None) -> int | None:
    """The forum topic a message was written in (its message_thread_id), None outside topics: in
    private chats, plain groups, a forum's General topic, and for a reply thread of a plain group."""
    if message is None or not message.is_topic_message:
        return None
    return message.message_thread_id


def remember_migration(context: CustomContext, old_chat_id: int, new_chat_id: int) -> None:
    """Carry a group's data over to the supergroup it became (idempotent)."""
    if context.store.migrated_to(old_chat_id) == new_chat_id:
        return
    context.store.record_migration(old_chat_id, new_chat_id)
    with suppress(ValueError, KeyError):
        context.application.migrate_chat_data(old_chat_id=old_chat_id, new_chat_id=new_chat_id)


async def send_html(
    context: CustomContext,
    chat_id: int,
    html: str,
    *,
    reply_to: Message | None = None,
    reply_markup: InlineKeyboardMarkup | None = None,
    thread_id: int | None = None,
) -> list[Message]:
    """Send `html` split under the message limit, into forum topic `thread_id` when given; quote
    `reply_to` on the first part, put the buttons on the last. If Telegram rejects the markup, the same text goes out as plain text. Parts that cannot be
    delivered now (network errors or 5xx after retries, a long flood wait) go to the outbox and are
    returned as not sent."""
    parts = split_html(html, MESSAGE_LIMIT)
    reply_id = reply_to.message_id if reply_to is not None else None
    if context.store.has_queued(chat_id):
        _queue_parts(context, chat_id, parts, reply_id, reply_markup, thread_id, delay_s=0.0)
        logger.info("chat %s has replies waiting; %d message(s) queued behind them", chat_id, len(parts))
        return []
    sent: list[Message] = []
    for index, part in enumerate(parts):
        quote = quote_of(reply_id) if index == 0 else None
        markup = reply_markup if index == len(parts) - 1 else None

        async def send(target: int, part: str = part, quote=quote, markup=markup) -> Message:
            try:
                return await context.bot.send_message(
                    target, part, reply_parameters=quote, reply_markup=markup, message_thread_id=thread_id
                )
            except BadRequest as exc:
                if "can't parse entities" not in exc.message.lower():
                    raise
                logger.warning("Telegram rejected our HTML (%s); sending plain text", exc.message)
                return await context.bot.send_message(
                    target,
                    html_to_plain(part),
                    parse_mode=None,
                    reply_parameters=quote,
                    reply_markup=markup,
                    message_thread_id=thread_id,
                )

        try:
            message = await call_telegram(context, chat_id, send)
        except BadRequest:  # a NetworkError subclass in PTB, but final: never retried
            raise
        except (NetworkError, RetryAfter) as exc:
            # Telegram is unreachable, failing or asks for a long wait: keep this part and the rest in
            # the outbox, which delivers them in order once it can.
            _queue_parts(
                context,
                chat_id,
                parts[index:],
                reply_id if index == 0 else None,
                reply_markup,
                thread_id,
                _delay(exc),
            )
            logger.warning(
                "could not reach chat %s (%s); %d message(s) queued for delivery",
                chat_id,
                type(exc).__name__,
                len(parts) - index,
            )
            break
        if message is None:
            break
        chat_id = message.chat_id
        sent.append(message)
    return sent


async def send_photo(
    context: CustomContext,
    chat_id: int,
    photo: bytes,
    caption: str,
    *,
    reply_to: Message | None = None,
    reply_markup: InlineKeyboardMarkup | None = None,
    thread_id: int | None = None,
) -> Message | None:
    """Send a PNG with an HTML `caption`, quoting `reply_to`, into forum topic `thread_id` when given. Like `send_html`: a photo that cannot be
    delivered now, or that must wait behind the chat's queued replies, goes to the outbox (None is
    returned); a bad request (Telegram will never take it) propagates; a blocked chat gives None."""
    reply_id = reply_to.message_id if reply_to is not None else None
    markup = reply_markup.to_dict() if reply_markup is not None else None
    if context.store.has_queued(chat_id):
        context.store.queue_reply(
            chat_id, caption, reply_id, markup, photo=photo, parse_mode=ParseMode.HTML, thread_id=thread_id
        )
        logger.info("chat %s has replies waiting; photo queued behind them", chat_id)
        return None
    quote = quote_of(reply_id)

    async def send(target: int) -> Message:
        return await context.bot.send_photo(
            target,
            photo=photo,
            caption=caption,
            parse_mode=ParseMode.HTML,
            reply_parameters=quote,
            reply_markup=reply_markup,
            message_thread_id=thread_id,
        )

    try:
        return await call_telegram(context, chat_id, send)
    except BadRequest:  # final, although a NetworkError subclass in PTB
        raise
    except (NetworkError, RetryAfter) as exc:
        context.store.queue_reply(
            chat_id,
            caption,
            reply_id,
            markup,
            delay_s=_delay(exc),
            photo=photo,
            parse_mode=ParseMode.HTML,
            thread_id=thread_id,
        )
        logger.warning("could not reach chat %s (%s); photo queued for delivery", chat_id, type(exc).__name__)
        return None


def _delay(error: NetworkError | RetryAfter) -> float:
    """How long a reply that failed with `error` must wait before the outbox tries it."""
    return retry_seconds(error.retry_after) if isinstance(error, RetryAfter) else 0.0


def _queue_parts(
    context: CustomContext,
    chat_id: int,
    parts: list[str],
    reply_id: int | None,
    reply_markup: InlineKeyboardMarkup | None,
    thread_id: int | None,
    delay_s: float,
) -> None:
    """Keep the parts of one HTML message in the outbox, in order: the quote on the first part, the
    buttons on the last."""
    for index, part in enumerate(parts):
        markup = reply_markup if index == len(parts) - 1 else None
        context.store.queue_reply(
            chat_id,
            part,
            reply_id if index == 0 else None,
            markup.to_dict() if markup is not None else None,
            delay_s=delay_s,
            thread_id=thread_id,
        )


_background: set[asyncio.Task] = set()  # keeps running action loops referenced until they end


@asynccontextmanager
async def chat_action(
    context: CustomContext, chat_id: int, action: str, thread_id: int | None = None
) -> AsyncIterator[None]:
    """Show `action` ("typing", "upload_photo"), in forum topic `thread_id` when given, until the block
    ends, renewing it before it fades.

    The first action goes out only if the work outlasts a short grace period, so quick answers cost no
    extra request. The loop runs beside the work; at the end it is told to stop rather than cancelled,
    so a request already on the wire completes instead of being torn down."""
    stop = asyncio.Event()

    async def renew() -> None:
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), CHAT_ACTION_GRACE_S)
        while not stop.is_set():
            try:
                await context.bot.send_chat_action(chat_id, action, message_thread_id=thread_id)
            except Forbidden:
                return
            except TelegramError as exc:  # an action is cosmetic: never fail the request for it
                logger.debug("chat action failed: %s", type(exc).__name__)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CHAT_ACTION_INTERVAL_S)

    task = asyncio.create_task(renew())
    _background.add(task)
    task.add_done_callback(_background.discard)
    try:
        yield
    finally:
        stop.set()
