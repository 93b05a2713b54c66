"""Helpers the feature handlers share: who asked, in which language, where to reply, rate limits."""

from __future__ import annotations

from dataclasses import dataclass

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType, MessageEntityType

from bot.context import CustomContext
from bot.delivery import send_html, topic_of
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


WRITTEN_LANG = "lang"  # user_data key: the language of what the user last wrote to the bot


def interface_lang(update: Update, context: CustomContext) -> Lang:
    """The language of command replies, usage lines and buttons: that of what the user last wrote to
    the bot (a question, a request), else their Telegram client's language code."""
    user_data = context.user_data
    written = user_data.get(WRITTEN_LANG) if user_data is not None else None
    return written if written in ("en", "zh") else message_lang(update, "")


def remember_written_lang(context: CustomContext, lang: Lang) -> None:
    """The user wrote in `lang`: the interface follows it from now on."""
    if context.user_data is not None:
        context.user_data[WRITTEN_LANG] = lang


def command_argument(message: Message) -> str:
    """The text after `/command` (or `/command@Bot`), as typed, without leading/trailing spaces."""
    content = message.text or ""
    for entity in message.entities:
        if entity.type == MessageEntityType.BOT_COMMAND and entity.offset == 0:
            return content[entity.length :].strip()
    return content.strip()


@dataclass(frozen=True)
class Request:
    """Who wrote, where (chat and forum topic), in which language, and what a reply quotes: read once
    per update."""

    chat_id: int
    user_id: int | None
    lang: Lang
    quote: Message | None  # the asker's message outside private chats; None in private chats
    thread_id: int | None = None  # the forum topic every reply goes to; None outside topics

    @classmethod
    def of(cls, update: Update, sample: str | None = None, lang: Lang | None = None) -> Request:
        """The request of an update; the reply follows the language of `sample` (the message when None),
        or `lang` when given (a command's reply: the interface's)."""
        chat = update.effective_chat
        user = update.effective_user
        message = update.effective_message
        quote = message if chat.type != ChatType.PRIVATE else None
        lang = lang or message_lang(update, sample)
        return cls(chat.id, user.id if user else None, lang, quote, topic_of(message))


async def reply(
    context: CustomContext, request: Request, html: str, reply_markup: InlineKeyboardMarkup | None = None
) -> list[Message]:
    """Answer in the request's chat and topic, quoting the asker outside private chats."""
    return await send_html(
        context,
        request.chat_id,
        html,
        reply_to=request.quote,
        reply_markup=reply_markup,
        thread_id=request.thread_id,
    )


async def reply_html(
    update: Update, context: CustomContext, html: str, reply_markup: InlineKeyboardMarkup | None = None
) -> list[Message]:
    """`reply` for a handler that needs nothing else of the request."""
    return await reply(context, Request.of(update), html, reply_markup)


def record_usage(context: CustomContext, request: Request, kind: str, outcome: str) -> None:
    """One usage row for /stats."""
    context.store.record_usage(kind, outcome, request.chat_id, request.user_id, request.lang)


async def within_rate_limit(context: CustomContext, request: Request, kind: Kind) -> bool:
    """True if the user may make this request now; otherwise say when they may."""
    wait = context.limits.check(kind, request.user_id)
    if wait == 0:
        return True
    record_usage(context, request, kind, "rate_limited")
    await reply(context, request, text("rate_limited", request.lang, seconds=wait))
    return False


async def admit_question(update: Update, context: CustomContext, content: str) -> Request | None:
    """The request of something the user wrote to be read as a question (its language becomes the
    interface's); None when they are over their question rate (they were told when to retry)."""
    request = Request.of(update, content)
    remember_written_lang(context, request.lang)
    return request if await within_rate_limit(context, request, "question") else None


def strip_mention(content: str, username: str) -> str:
    """The question without the @BotName that addressed it."""
    mention = f"@{username}"
    index = content.lower().find(mention.lower())
    if index != -1:
        content = content[:index] + content[index + len(mention) :]
    return " ".join(content.split())
