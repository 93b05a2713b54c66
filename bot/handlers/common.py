"""Helpers the feature handlers share: who asked, in which language, where to reply, rate limits."""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType, MessageEntityType

from bot.context import CustomContext
from bot.delivery import send_html
from bot.ratelimit import Kind
from bot.texts import Lang, text
from knowledge.api import detect_lang


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
    wait = context.limits.check(kind, user.id if user else None)
    if wait == 0:
        return True
    context.store.record_usage(kind, "rate_limited", chat.id, user.id if user else None, lang)
    await reply_html(update, context, text("rate_limited", lang, seconds=wait))
    return False


def strip_mention(content: str, username: str) -> str:
    """The question without the @BotName that addressed it."""
    mention = f"@{username}"
    index = content.lower().find(mention.lower())
    if index != -1:
        content = content[:index] + content[index + len(mention) :]
    return " ".join(content.split())
