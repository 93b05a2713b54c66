"""Helpers the feature handlers share: who asked, in which language, where to reply, rate limits."""

from __future__ import annotations

import time
from collections.abc import Callable

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType, MessageEntityType
from telegram.ext import filters

from bot.context import CustomContext
from bot.delivery import send_html
from bot.ratelimit import Kind, SlidingWindow
from bot.texts import Lang, detect_lang, text


def message_lang(update: Update, sample: str | None = None) -> Lang:
    """The language to answer in: that of `sample` (or the message), else the user's client language."""
    message = update.effective_message
    user = update.effective_user
    content = sample
    if content is None and message is not None:
        content = message.text or message.caption
    return detect_lang(content, user.language_code if user else None)


def command_argument(message: Message) -> str:
    """The text after `/command` (or `/command@Bot`), as typed, without leading/trailing spaces."""
    content = message.text or ""
    for entity in message.entities:
        if entity.type == MessageEntityType.BOT_COMMAND and entity.offset == 0:
            return content[entity.length :].strip()
    return content.strip()


async def reply_html(
    update: Update, context: CustomContext, html: str, reply_markup: InlineKeyboardMarkup | None = None
) -> list[Message]:
    """Answer in the update's chat; outside private chats the reply quotes the asker's message."""
    message = update.effective_message
    chat = update.effective_chat
    quote = message if chat.type != ChatType.PRIVATE else None
    return await send_html(context, chat.id, html, reply_to=quote, reply_markup=reply_markup)


async def within_rate_limit(update: Update, context: CustomContext, kind: Kind, lang: Lang) -> bool:
    """True if the user and chat may make this request now; otherwise say when they may."""
    user = update.effective_user
    chat = update.effective_chat
    wait = context.limits.check(kind, user.id if user else None, chat.id)
    if wait == 0:
        return True
    context.store.record_usage(kind, "rate_limited", chat.id, user.id if user else None, lang)
    await reply_html(update, context, text("rate_limited", lang, seconds=wait))
    return False


class AddressedToBot(filters.MessageFilter):
    """Private messages, and group messages that mention the bot or reply to one of its messages."""

    def filter(self, message: Message) -> bool:
        if message.chat.type == ChatType.PRIVATE:
            return True
        bot = message.get_bot()
        reply = message.reply_to_message
        if reply is not None and reply.from_user is not None and reply.from_user.id == bot.id:
            return True
        username = f"@{bot.username}".lower()
        for entity, value in message.parse_entities([MessageEntityType.MENTION]).items():
            if entity.type == MessageEntityType.MENTION and value.lower() == username:
                return True
        return any(
            entity.type == MessageEntityType.TEXT_MENTION and entity.user and entity.user.id == bot.id
            for entity in message.entities
        )


def strip_mention(content: str, username: str) -> str:
    """The question without the @BotName that addressed it."""
    mention = f"@{username}"
    index = content.lower().find(mention.lower())
    if index != -1:
        content = content[:index] + content[index + len(mention) :]
    return " ".join(content.split())


class ChatFloodGuard:
    """Caps what anyone can make the bot send to a chat: at most `limit` updates addressed to the bot
    (commands, private messages, mentions and replies, button presses) are handled per chat in any
    `window` seconds, whatever they are (usage lines and refusals included); past that the chat gets one
    "slow down" notice per window and nothing else. Handlers' own per-user limits apply on top."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = SlidingWindow(limit, window, clock)
        self._clock = clock
        self._span = window
        self._notified: dict[int, float] = {}  # chat -> when it was last told to slow down

    def admit(self, chat_id: int) -> tuple[bool, int]:
        """(handle it?, seconds to wait); the second is 0 when the chat was already told this window."""
        wait = self._window.wait_time(chat_id)
        if wait == 0:
            self._window.record(chat_id)
            return True, 0
        now = self._clock()
        self._notified = {chat: at for chat, at in self._notified.items() if now - at < self._span}
        if chat_id in self._notified:
            return False, 0
        self._notified[chat_id] = now
        return False, max(1, int(wait + 0.999))


def addressed_to_bot(update: Update) -> bool:
    """Whether the bot would answer this update: a button press, or a message that is a command or is
    addressed to it (channel posts count only as commands)."""
    if update.callback_query is not None:
        return True
    message = update.message or update.channel_post
    if message is None:
        return False
    if filters.COMMAND.check_update(update):
        return True
    return update.message is not None and bool(message.text) and AddressedToBot().check_update(update)
