"""The gate every update passes first: a chat that writes has not blocked us; a user an admin blocked,
or one outside the allow-lists, is ignored (counted, never answered, no model work); a chat over its
rate gets one notice and no more answers this window."""

from __future__ import annotations

from telegram import Message, Update
from telegram.constants import ChatType, MessageEntityType
from telegram.ext import ApplicationHandlerStop, filters

from bot.context import CustomContext
from bot.handlers.common import Request, record_usage, reply
from bot.ratelimit import ChatFloodGuard
from bot.texts import text


async def on_any_update(update: Update, context: CustomContext) -> None:
    """A chat that writes to us has (again) not blocked us; blocked and not-allowed users are ignored;
    a chat over its rate gets no more answers this window (and one notice)."""
    chat = update.effective_chat
    if chat is not None and context.store.is_blocked(chat.id):
        context.store.set_blocked(chat.id, False)
    user = update.effective_user
    refusal = context.refusal(user.id if user else None, chat.id if chat else None)
    if refusal is not None:
        if chat is not None and addressed_to_bot(update):
            record_usage(context, Request.of(update), "ignored", refusal)
        if update.callback_query is not None:
            await update.callback_query.answer()  # stops the button's spinner; says nothing
        raise ApplicationHandlerStop
    guard: ChatFloodGuard | None = getattr(context.bot_data, "flood_guard", None)
    if chat is None or guard is None or not addressed_to_bot(update):
        return
    admitted, wait = guard.admit(chat.id)
    if admitted:
        return
    request = Request.of(update)
    record_usage(context, request, "command", "rate_limited")
    if update.callback_query is not None:
        await update.callback_query.answer(text("rate_limited", request.lang, seconds=max(wait, 1)))
    elif wait:
        await reply(context, request, text("rate_limited", request.lang, seconds=wait))
    raise ApplicationHandlerStop


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
