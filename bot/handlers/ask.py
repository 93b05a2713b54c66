"""Questions: /ask, plain text in private chats, and mentions or replies in groups."""

from __future__ import annotations

import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatAction

from bot.context import CustomContext
from bot.delivery import chat_action
from bot.formatting import SOURCES_SHOWN, render_answer
from bot.handlers.common import command_argument, message_lang, reply_html, strip_mention, within_rate_limit
from bot.texts import Lang, text

logger = logging.getLogger(__name__)


async def ask_command(update: Update, context: CustomContext) -> None:
    """Answer the question after /ask, or show how to ask one."""
    question = command_argument(update.effective_message)
    if not question:
        await reply_html(update, context, text("ask_usage", message_lang(update, "")))
        return
    await answer_question(update, context, question)


async def ask_message(update: Update, context: CustomContext) -> None:
    """Answer a message addressed to the bot (any private text, a mention or reply in a group)."""
    question = strip_mention(update.effective_message.text or "", context.bot.username)
    if not question:
        await reply_html(update, context, text("ask_usage", message_lang(update, "")))
        return
    await answer_question(update, context, question)


async def answer_question(update: Update, context: CustomContext, question: str) -> None:
    """Look the question up, reply in its language with sources and buttons, and record it."""
    chat = update.effective_chat
    user = update.effective_user
    user_id = user.id if user else None
    lang = message_lang(update, question)
    if not await within_rate_limit(update, context, "question", lang):
        return
    async with chat_action(context, chat.id, ChatAction.TYPING):
        # Awaits only the knowledge base's batched encoder pass (no worker thread per question).
        answer = await context.knowledge.ask_async(question)
    if answer.lang in ("en", "zh"):
        lang = answer.lang
    sources = [source.to_json() for source in answer.sources]
    answer_id = context.store.record_answer(chat.id, user_id, lang, answer.answered, question, sources)
    markup = answer_buttons(answer_id, lang, more=answer.answered and len(sources) > SOURCES_SHOWN)
    await reply_html(update, context, render_answer(answer, lang), reply_markup=markup)
    context.store.record_usage(
        "question", "answered" if answer.answered else "declined", chat.id, user_id, lang
    )


def answer_buttons(answer_id: int, lang: Lang, *, more: bool, feedback: bool = True) -> InlineKeyboardMarkup:
    """'More sources' (when there are more) and helpful / not helpful."""
    rows = []
    if more:
        rows.append(
            [
                InlineKeyboardButton(
                    text("more_sources", lang), callback_data=f"more:{answer_id}:{SOURCES_SHOWN}"
                )
            ]
        )
    if feedback:
        rows.append(
            [
                InlineKeyboardButton(text("helpful", lang), callback_data=f"fb:{answer_id}:1"),
                InlineKeyboardButton(text("not_helpful", lang), callback_data=f"fb:{answer_id}:0"),
            ]
        )
    return InlineKeyboardMarkup(rows)
