"""/image [digit] [count] [gan|vae] and /text [prompt]: the generators, behind a chat action."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ChatAction

from bot.context import CustomContext
from bot.delivery import chat_action, send_photo
from bot.formatting import escape, fit_caption
from bot.handlers.common import (
    Request,
    command_argument,
    interface_lang,
    record_usage,
    reply,
    within_rate_limit,
)
from bot.texts import text
from generation.api import (
    IMAGE_KINDS,
    MAX_IMAGES,
    MAX_PROMPT_CHARS,
    TEXT_KIND_NAMES,
    GeneratorUnavailable,
    ImageKind,
    ImageRequest,
    ImageResult,
    InvalidRequest,
    ModelKind,
    TextRequest,
    TextResult,
)

logger = logging.getLogger(__name__)

DEFAULT_IMAGE_COUNT = 8


def parse_image_args(args: list[str]) -> tuple[int | None, int, ImageKind | None] | None:
    """(digit or None for a mix, count, model or None for the default) from `[digit] [count]`,
    `digit [count] model` or `model digit [count]`; None when they are not valid (a model is named
    only with a digit)."""
    words = [arg.lower() for arg in args]
    model: ImageKind | None = None
    if words and words[0] in IMAGE_KINDS:
        model, words = words[0], words[1:]
    elif words and words[-1] in IMAGE_KINDS:
        model, words = words[-1], words[:-1]
    if len(words) > 2 or (model is not None and not words):
        return None
    try:
        numbers = [int(word) for word in words]
    except ValueError:
        return None
    digit = numbers[0] if numbers else None
    count = numbers[1] if len(numbers) > 1 else DEFAULT_IMAGE_COUNT
    if (digit is not None and not 0 <= digit <= 9) or not 1 <= count <= MAX_IMAGES:
        return None
    return digit, count, model


async def image_command(update: Update, context: CustomContext) -> None:
    """Draw digits with the named image model (default IMAGE_MODEL) and send them as one photo."""
    request = Request.of(update, lang=interface_lang(update, context))
    parsed = parse_image_args(command_argument(update.effective_message).split())
    if parsed is None:
        await reply(context, request, escape(text("image_usage", request.lang, max_images=MAX_IMAGES)))
        return
    await draw(context, request, *parsed)


async def draw(
    context: CustomContext, request: Request, digit: int | None, count: int, model: ImageKind | None = None
) -> None:
    """Draw `count` digits (`digit`, or a mix for None) with `model` (None: the IMAGE_MODEL setting)
    and send them as one photo with a caption."""
    model = model or context.settings.image_model
    result = await _generate(
        context,
        request,
        "image",
        ChatAction.UPLOAD_PHOTO,
        ImageRequest(model=model, digit=digit, count=count),
    )
    if result is None:
        return
    lang = request.lang
    what = (
        text("digits_mixed", lang, count=count)
        if digit is None
        else text("digits_one", lang, count=count, digit=digit)
    )
    caption = fit_caption(
        text(
            "image_caption",
            lang,
            what=what,
            model=model.upper(),
            model_version=escape(result.model_version),
            seed=result.seed,
        )
    )
    # One Telegram cannot take now is queued, not lost.
    await send_photo(
        context, request.chat_id, result.png, caption, reply_to=request.quote, thread_id=request.thread_id
    )
    record_usage(context, request, "image", "ok")


async def text_command(update: Update, context: CustomContext) -> None:
    """Continue the prompt with the LSTM and send the text."""
    prompt = command_argument(update.effective_message)
    request = Request.of(update, prompt, None if prompt.strip() else interface_lang(update, context))
    if len(prompt) > MAX_PROMPT_CHARS:
        await reply(context, request, escape(text("text_usage", request.lang, max_chars=MAX_PROMPT_CHARS)))
        return
    await write(context, request, prompt)


async def write(context: CustomContext, request: Request, prompt: str) -> None:
    """Continue `prompt` with the TEXT_MODEL generator and send the text, captioned with the model."""
    generation = TextRequest(prompt=prompt, model=context.settings.text_kind)
    result = await _generate(context, request, "text", ChatAction.TYPING, generation)
    if result is None:
        return
    footer = text(
        "text_footer",
        request.lang,
        model=TEXT_KIND_NAMES[result.model],
        model_version=escape(result.model_version),
        seed=result.seed,
    )
    await reply(context, request, f"{escape(result.text)}\n\n<i>{footer}</i>")
    record_usage(context, request, "text", "ok")


async def _generate(
    context: CustomContext, request: Request, kind: str, action: str, generation: ImageRequest | TextRequest
) -> ImageResult | TextResult | None:
    """Run one generation with a chat action showing; None (the user told why) when it cannot run."""
    model: ModelKind = generation.model
    if not await _generators_ready(context, request, kind, model):
        return None
    try:
        async with chat_action(context, request.chat_id, action, request.thread_id):
            if isinstance(generation, ImageRequest):
                return await context.generation.image(generation)
            return await context.generation.text(generation)
    except (InvalidRequest, GeneratorUnavailable) as exc:
        await _report_generation_error(context, request, kind, exc)
        return None


async def _generators_ready(context: CustomContext, request: Request, kind: str, model: ModelKind) -> bool:
    """Say at once when the `model` generator is down; otherwise apply the generation rate limit."""
    lang = request.lang
    if not context.generation.available_for(model):
        record_usage(context, request, kind, "unavailable")
        training = context.jobs.running_for(model)
        if training is None:
            queued = model in context.bot_data.first_start_queue
            await reply(
                context, request, text("generator_queued" if queued else "generators_unavailable", lang)
            )
        else:
            eta_s = training.progress.eta_s if training.progress else 300.0
            minutes = max(1, round(eta_s / 60))
            await reply(
                context, request, text("generator_training", lang, job_id=training.id, minutes=minutes)
            )
        return False
    return await within_rate_limit(context, request, "generation")


async def _report_generation_error(
    context: CustomContext, request: Request, kind: str, error: Exception
) -> None:
    """One line for the user: the limit broken (its own words) or that the generators are down."""
    if isinstance(error, InvalidRequest):
        record_usage(context, request, kind, "invalid")
        await reply(context, request, escape(str(error)))
    else:
        logger.warning("generator unavailable for /%s: %s", kind, type(error).__name__)
        record_usage(context, request, kind, "unavailable")
        await reply(context, request, text("generators_unavailable", request.lang))
