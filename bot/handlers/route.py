"""Free text addressed to the bot (any private message, a mention or a reply in a group), routed by
what it asks for: the knowledge base's intent classifier reads it, and the message goes to the answer,
drawing or writing flow, or gets a short reply. Slash commands never pass here."""

from __future__ import annotations

from html import escape

from telegram import Update
from telegram.constants import ChatAction

from bot.context import CustomContext
from bot.delivery import chat_action
from bot.handlers.ask import reply_with_answer
from bot.handlers.common import (
    admit_question,
    interface_lang,
    record_usage,
    reply,
    reply_html,
    strip_mention,
)
from bot.handlers.generate import draw, write
from bot.texts import text
from generation.api import MAX_IMAGES
from knowledge.api import Lang, Understanding

# Small talk is short; a longer message is offered cut, as a start the asker can edit.
ASK_HINT_CHARS = 200


async def on_message(update: Update, context: CustomContext) -> None:
    """Read the message, then answer it, draw, write, or reply in a line."""
    message = strip_mention(update.effective_message.text or "", context.bot.username)
    if not message:
        await reply_html(update, context, text("ask_usage", interface_lang(update, context)))
        return
    request = await admit_question(update, context, message)
    if request is None:
        return
    async with chat_action(context, request.chat_id, ChatAction.TYPING, request.thread_id):
        understood = await context.knowledge.understand_async(message)
    if understood.intent == "question" and understood.answer is not None:
        await reply_with_answer(context, request, message, understood.answer)
        if understood.leaning:
            await reply(context, request, leaning_hint(understood, request.lang, message))
    elif understood.intent == "image" and understood.digit is None:
        await reply(context, request, text("image_which_digit", request.lang, max_images=MAX_IMAGES))
    elif understood.intent == "image":
        await draw(context, request, understood.digit, understood.count)
    elif understood.intent == "text":
        await write(context, request, understood.prompt)
    else:
        record_usage(context, request, "message", understood.intent)
        line = text("offtopic" if understood.intent == "offtopic" else "smalltalk", request.lang)
        if understood.leaning == "question":
            line += "\n\n" + leaning_hint(understood, request.lang, message)
        await reply(context, request, line)


def leaning_hint(understood: Understanding, lang: Lang, message: str) -> str:
    """The command for what a message looked like it asked for after all: a picture or a text, for
    one answered as a question; an answer, for one read as small talk."""
    if understood.leaning == "question":
        return text("leaning_question", lang, command=escape(" ".join(message.split())[:ASK_HINT_CHARS]))
    if understood.leaning == "image":
        if understood.digit is None:
            return text("leaning_image_any", lang, max_images=MAX_IMAGES)
        return text("leaning_image", lang, command=f"{understood.digit} {understood.count}")
    if not understood.prompt:
        return text("leaning_text_any", lang)
    return text("leaning_text", lang, command=escape(understood.prompt))
