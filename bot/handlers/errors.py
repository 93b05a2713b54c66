"""The global error handler and group migrations."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

from telegram import Update
from telegram.error import Forbidden, NetworkError, TelegramError
from telegram.ext import filters

from bot.context import CustomContext
from bot.delivery import remember_migration, send_html, topic_of
from bot.handlers.common import interface_lang, message_lang
from bot.texts import text

logger = logging.getLogger(__name__)


async def on_error(update: object, context: CustomContext) -> None:
    """Log the failure with the update id (never the message text or token) and tell the user in a line."""
    error = context.error
    if not isinstance(update, Update):
        # Polling hiccups arrive here without an update; PTB retries them itself.
        if isinstance(error, NetworkError):
            logger.warning("network error while fetching updates: %s", type(error).__name__)
        else:
            logger.error("error outside an update: %s", type(error).__name__, exc_info=error)
        return
    # The exception's message may quote what the user wrote: at ERROR only its type and where it was
    # raised; the full traceback at DEBUG.
    logger.error("update %s failed: %s at %s", update.update_id, type(error).__name__, _origin(error))
    logger.debug("traceback for update %s", update.update_id, exc_info=error)
    chat = update.effective_chat
    if chat is None or isinstance(error, Forbidden):
        return
    try:
        message = update.effective_message
        # Free text: its own language; a command or a button press: the interface's.
        free_text = (
            update.callback_query is None and message is not None and not filters.COMMAND.check_update(update)
        )
        lang = message_lang(update) if free_text else interface_lang(update, context)
        await send_html(context, chat.id, text("error", lang), thread_id=topic_of(message))
    except TelegramError as exc:
        logger.warning("could not tell chat %s about the error: %s", chat.id, type(exc).__name__)


def _origin(error: BaseException | None) -> str:
    """'module.py:123 in function' of the innermost frame, or '?'."""
    frames = traceback.extract_tb(error.__traceback__) if error is not None else []
    if not frames:
        return "?"
    frame = frames[-1]
    return f"{Path(frame.filename).name}:{frame.lineno} in {frame.name}"


async def on_migration(update: Update, context: CustomContext) -> None:
    """A group became a supergroup: move its data to the new chat id."""
    message = update.effective_message
    if message.migrate_to_chat_id:
        remember_migration(context, message.chat.id, message.migrate_to_chat_id)
    elif message.migrate_from_chat_id:
        remember_migration(context, message.migrate_from_chat_id, message.chat.id)
