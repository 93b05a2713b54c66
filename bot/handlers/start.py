"""/start, /help and /about."""

from __future__ import annotations

import asyncio
import logging

from telegram import Update

from bot.context import CustomContext
from bot.formatting import escape
from bot.handlers.ask import reply_with_answer
from bot.handlers.common import Request, interface_lang, reply_html
from bot.keyboards import HELP_PAYLOAD
from bot.texts import text
from generation.api import MODEL_KINDS

logger = logging.getLogger(__name__)


async def start(update: Update, context: CustomContext) -> None:
    """Greet the user, or answer the entry a deep link names (`/start <payload>`)."""
    payload = context.args[0] if context.args else ""
    lang = interface_lang(update, context)
    if payload == HELP_PAYLOAD:
        await help_command(update, context)
        return
    if payload:
        answer = context.knowledge.entry(payload)
        if answer is None:  # forged, garbled, or from a corpus since changed
            await reply_html(update, context, text("link_invalid", lang))
            return
        request = Request.of(update, lang=answer.lang)
        await reply_with_answer(context, request, answer.question, answer)
        return
    user = update.effective_user
    name = escape(user.first_name) if user else ""
    await reply_html(update, context, text("start", lang, name=name))


async def help_command(update: Update, context: CustomContext) -> None:
    """List the commands with examples."""
    await reply_html(update, context, text("help", interface_lang(update, context)))


async def about(update: Update, context: CustomContext) -> None:
    """Show model versions and the knowledge base's size."""
    lang = interface_lang(update, context)
    missing = text("no_model", lang)
    stats = await asyncio.to_thread(context.knowledge.stats)
    versions: dict[str, str] = dict.fromkeys(MODEL_KINDS, missing)
    try:
        for model in await context.generation.models():
            if model.version:
                versions[model.kind] = escape(model.version)
    except Exception as exc:  # the generators being down must not hide the knowledge base's figures
        logger.warning("could not list generator models: %s", type(exc).__name__)
    values = {
        key: escape(stats.get(key, "?"))
        for key in ("documents", "sections", "faq_entries", "encoder", "fingerprint")
    }
    values["built_at"] = escape(stats.get("built_at") or "?")
    await reply_html(update, context, text("about", lang, **values, **versions))


async def unknown_command(update: Update, context: CustomContext) -> None:
    """Point a private-chat user who mistyped a command to /help."""
    await reply_html(update, context, text("unknown_command", interface_lang(update, context)))
