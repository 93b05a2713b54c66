"""/privacy, /forget (confirmed by a button only its sender may press), and the daily retention prune."""

from __future__ import annotations

import asyncio
import logging

from telegram import Update
from telegram.error import BadRequest

from bot.context import CustomContext
from bot.handlers.common import Request, interface_lang, reply, reply_html
from bot.keyboards import forget_buttons, parse_press
from bot.texts import text

logger = logging.getLogger(__name__)

PRUNE_INTERVAL_S = 86400.0  # the retention limit is applied once a day
PRUNE_FIRST_S = 30.0  # and shortly after each start


async def privacy_command(update: Update, context: CustomContext) -> None:
    """Say what is stored, why, and for how long."""
    days = context.settings.retention_days
    await reply_html(update, context, text("privacy", interface_lang(update, context), days=days))


async def forget_command(update: Update, context: CustomContext) -> None:
    """Ask the sender to confirm deleting what is stored about them."""
    request = Request.of(update, lang=interface_lang(update, context))
    if request.user_id is None:  # a channel post: there is no one to forget
        return
    lang = request.lang
    await reply(
        context, request, text("forget_confirm", lang), reply_markup=forget_buttons(request.user_id, lang)
    )


async def on_forget_press(update: Update, context: CustomContext) -> None:
    """Delete the presser's data (or cancel) when the button is theirs; say what was deleted."""
    query = update.callback_query
    press = parse_press(query.data)
    lang = interface_lang(update, context)
    if press is None or press.action != "forget":
        await query.answer()
        return
    if query.from_user.id != press.subject:
        await query.answer(text("forget_not_yours", lang), show_alert=True)
        return
    await query.answer()
    if press.value != 1:
        outcome = text("forget_cancelled", lang)
    else:
        forgotten = await asyncio.to_thread(context.store.forget_user, press.subject)
        if context.user_data is not None:
            context.user_data.clear()  # the language they wrote in, too
        logger.info("a user's data was forgotten: %d rows", forgotten.total)
        outcome = (
            text(
                "forget_done",
                lang,
                questions=forgotten.questions,
                votes=forgotten.votes,
                usage=forgotten.usage,
                messages=forgotten.messages,
                replies=forgotten.replies,
            )
            if forgotten.held_data
            else text("forget_nothing", lang)
        )
    try:
        await query.edit_message_text(outcome)  # the question and its buttons give way to the outcome
    except BadRequest as exc:  # the message is gone or too old to edit: say it anew
        logger.debug("could not edit the /forget message: %s", exc.message)
        await reply_html(update, context, outcome)


async def prune_old_rows(context: CustomContext) -> None:
    """Delete questions, votes and usage rows older than RETENTION_DAYS (a JobQueue job)."""
    days = context.bot_data.settings.retention_days
    removed = await asyncio.to_thread(context.bot_data.services.store.prune_older_than, days)
    logger.info("retention: removed %d rows older than %d days", removed, days)
