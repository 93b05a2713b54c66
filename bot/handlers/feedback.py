"""Inline buttons under answers: "More sources" and helpful / not helpful."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ChatType
from telegram.error import BadRequest

from bot.context import CustomContext
from bot.delivery import send_html, topic_of
from bot.formatting import SOURCES_SHOWN, render_passages
from bot.keyboards import answer_buttons, answer_share_url, more_sources_buttons, parse_press
from bot.store import StoredAnswer
from bot.texts import Lang, text

logger = logging.getLogger(__name__)


async def on_button(update: Update, context: CustomContext) -> None:
    """Dispatch a button press by its callback data (bot.keyboards)."""
    query = update.callback_query
    press = parse_press(query.data)
    if press is None:
        await query.answer()
        return
    stored = context.store.answer(press.subject)
    if stored is None:
        await query.answer(text("answer_gone", "en"))
        return
    lang: Lang = "zh" if stored.lang == "zh" else "en"
    if press.action == "fb":
        context.store.record_feedback(stored.id, query.from_user.id, helpful=bool(press.value))
        await query.answer(text("feedback_thanks", lang))
        if query.message is not None and query.message.chat.type == ChatType.PRIVATE:
            # The vote is in: keep only "More sources". In groups others may still vote on the answer.
            more = stored.answered and len(stored.sources) > SOURCES_SHOWN
            try:
                await query.edit_message_reply_markup(
                    answer_buttons(
                        stored.id,
                        lang,
                        more=more,
                        feedback=False,
                        share=answer_share_url(
                            context.bot.username, stored.answered, stored.sources, stored.question
                        ),
                    )
                )
            except BadRequest as exc:  # e.g. "message is not modified" after a double tap
                logger.debug("could not edit buttons: %s", exc.message)
    else:
        await show_more_sources(update, context, stored, press.value, lang)


async def show_more_sources(
    update: Update, context: CustomContext, stored: StoredAnswer, offset: int, lang: Lang
) -> None:
    """Send the next passages as a reply to the answer, with a button for the ones after."""
    query = update.callback_query
    page = stored.sources[offset : offset + SOURCES_SHOWN] if offset >= 0 else []
    if not page:
        await query.answer(text("no_more_sources", lang))
        return
    await query.answer()
    next_offset = offset + SOURCES_SHOWN
    markup = more_sources_buttons(stored.id, next_offset, lang) if next_offset < len(stored.sources) else None
    passages = render_passages(page, first_number=offset + 1)
    message = query.message
    chat_id = message.chat.id if message else stored.chat_id
    await send_html(
        context, chat_id, passages, reply_to=message, reply_markup=markup, thread_id=topic_of(message)
    )
