"""Questions: /ask, and the answer flow free text routed as a question takes (bot.handlers.route)."""

from __future__ import annotations

import logging
from dataclasses import replace

from telegram import Update
from telegram.constants import ChatAction

from bot.context import CustomContext
from bot.delivery import chat_action
from bot.formatting import SOURCES_SHOWN, render_answer
from bot.handlers.common import (
    Request,
    admit_question,
    command_argument,
    interface_lang,
    record_usage,
    reply,
    reply_html,
)
from bot.keyboards import answer_buttons, answer_share_url
from bot.texts import text
from knowledge.api import Answer

logger = logging.getLogger(__name__)


async def ask_command(update: Update, context: CustomContext) -> None:
    """Answer the question after /ask, or show how to ask one."""
    question = command_argument(update.effective_message)
    if not question:
        await reply_html(update, context, text("ask_usage", interface_lang(update, context)))
        return
    await answer_question(update, context, question)


async def answer_question(update: Update, context: CustomContext, question: str) -> None:
    """Look the question up, reply in its language with sources and buttons, and record it."""
    request = await admit_question(update, context, question)
    if request is None:
        return
    async with chat_action(context, request.chat_id, ChatAction.TYPING, request.thread_id):
        # Awaits only the knowledge base's batched encoder pass (no worker thread per question).
        answer = await context.knowledge.ask_async(question)
    await reply_with_answer(context, request, question, answer)


async def reply_with_answer(context: CustomContext, request: Request, question: str, answer: Answer) -> None:
    """Send an answer with its sources and buttons, in its language, and record it."""
    if answer.lang in ("en", "zh"):  # the reply's headings follow the language the answer is in
        request = replace(request, lang=answer.lang)
    sources = answer.sources
    answer_id = context.store.record_answer(
        request.chat_id, request.user_id, request.lang, answer.answered, question, sources
    )
    more = answer.answered and len(sources) > SOURCES_SHOWN
    share = answer_share_url(context.bot.username, answer.answered, sources, question)
    markup = answer_buttons(answer_id, request.lang, more=more, share=share)
    await reply(context, request, render_answer(answer, request.lang), reply_markup=markup)
    record_usage(context, request, "question", "answered" if answer.answered else "declined")
