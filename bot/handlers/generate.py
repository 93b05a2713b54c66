"""/image [digit] [count] and /text [prompt]: the generators, behind a chat action."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ChatAction, ChatType

from bot.context import CustomContext
from bot.delivery import chat_action, send_photo
from bot.formatting import escape, fit_caption
from bot.handlers.common import command_argument, message_lang, reply_html, within_rate_limit
from bot.texts import Lang, text
from generation.api import (
    MAX_IMAGES,
    MAX_PROMPT_CHARS,
    GeneratorUnavailable,
    ImageRequest,
    InvalidRequest,
    TextRequest,
)

logger = logging.getLogger(__name__)

DEFAULT_IMAGE_COUNT = 8
MODEL_KINDS = {"image": "gan", "text": "lstm"}  # command -> the generator behind it


def parse_image_args(args: list[str]) -> tuple[int | None, int] | None:
    """(digit or None for a mix, count) from `[digit] [count]`, or None when they are not valid."""
    if len(args) > 2:
        return None
    try:
        numbers = [int(arg) for arg in args]
    except ValueError:
        return None
    digit = numbers[0] if numbers else None
    count = numbers[1] if len(numbers) > 1 else DEFAULT_IMAGE_COUNT
    if (digit is not None and not 0 <= digit <= 9) or not 1 <= count <= MAX_IMAGES:
        return None
    return digit, count


async def image_command(update: Update, context: CustomContext) -> None:
    """Draw digits with the GAN and send them as one photo with a caption."""
    lang = message_lang(update, "")
    parsed = parse_image_args(command_argument(update.effective_message).split())
    if parsed is None:
        await reply_html(update, context, escape(text("image_usage", lang, max_images=MAX_IMAGES)))
        return
    digit, count = parsed
    if not await _generators_ready(update, context, "image", lang):
        return
    chat = update.effective_chat
    user_id = update.effective_user.id if update.effective_user else None
    try:
        async with chat_action(context, chat.id, ChatAction.UPLOAD_PHOTO):
            result = await context.generation.image(ImageRequest(digit=digit, count=count))
    except (InvalidRequest, GeneratorUnavailable) as exc:
        await _report_generation_error(update, context, "image", lang, exc)
        return
    what = (
        text("digits_mixed", lang, count=count)
        if digit is None
        else text("digits_one", lang, count=count, digit=digit)
    )
    caption = fit_caption(
        text("image_caption", lang, what=what, model_version=result.model_version, seed=result.seed)
    )
    # Outside private chats the photo quotes the request. One Telegram cannot take now is queued, not lost.
    quote = update.effective_message if chat.type != ChatType.PRIVATE else None
    await send_photo(context, chat.id, result.png, caption, reply_to=quote)
    context.store.record_usage("image", "ok", chat.id, user_id, lang)


async def text_command(update: Update, context: CustomContext) -> None:
    """Continue the prompt with the LSTM and send the text."""
    prompt = command_argument(update.effective_message)
    lang = message_lang(update, prompt or "")
    if len(prompt) > MAX_PROMPT_CHARS:
        await reply_html(update, context, escape(text("text_usage", lang, max_chars=MAX_PROMPT_CHARS)))
        return
    if not await _generators_ready(update, context, "text", lang):
        return
    chat = update.effective_chat
    user_id = update.effective_user.id if update.effective_user else None
    try:
        async with chat_action(context, chat.id, ChatAction.TYPING):
            result = await context.generation.text(TextRequest(prompt=prompt))
    except (InvalidRequest, GeneratorUnavailable) as exc:
        await _report_generation_error(update, context, "text", lang, exc)
        return
    footer = text("text_footer", lang, model_version=escape(result.model_version), seed=result.seed)
    await reply_html(update, context, f"{escape(result.text)}\n\n<i>{footer}</i>")
    context.store.record_usage("text", "ok", chat.id, user_id, lang)


async def _generators_ready(update: Update, context: CustomContext, kind: str, lang: Lang) -> bool:
    """Say at once when this generator is down; otherwise apply the generation rate limit."""
    if not context.generation.available_for(MODEL_KINDS[kind]):
        chat = update.effective_chat
        user_id = update.effective_user.id if update.effective_user else None
        context.store.record_usage(kind, "unavailable", chat.id, user_id, lang)
        training = context.jobs.running_for(MODEL_KINDS[kind])
        if training is None:
            queued = MODEL_KINDS[kind] in context.bot_data.first_start_queue
            await reply_html(
                update, context, text("generator_queued" if queued else "generators_unavailable", lang)
            )
        else:
            eta_s = training.progress.eta_s if training.progress else 300.0
            minutes = max(1, round(eta_s / 60))
            await reply_html(
                update, context, text("generator_training", lang, job_id=training.id, minutes=minutes)
            )
        return False
    return await within_rate_limit(update, context, "generation", lang)


async def _report_generation_error(
    update: Update, context: CustomContext, kind: str, lang: Lang, error: Exception
) -> None:
    """One line for the user: the limit broken (its own words) or that the generators are down."""
    chat = update.effective_chat
    user_id = update.effective_user.id if update.effective_user else None
    if isinstance(error, InvalidRequest):
        context.store.record_usage(kind, "invalid", chat.id, user_id, lang)
        await reply_html(update, context, escape(str(error)))
    else:
        logger.warning("generator unavailable for /%s: %s", kind, type(error).__name__)
        context.store.record_usage(kind, "unavailable", chat.id, user_id, lang)
        await reply_html(update, context, text("generators_unavailable", lang))
