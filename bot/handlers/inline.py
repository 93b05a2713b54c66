"""Inline mode: "@bot question" typed in any chat offers the answer and its sources as articles to
send; an empty query offers FAQ entries; a declined question, one "not in my knowledge base" result."""

from __future__ import annotations

import logging
from dataclasses import replace

from telegram import (
    InlineQueryResultArticle,
    InlineQueryResultsButton,
    InputTextMessageContent,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest

from bot.context import CustomContext
from bot.formatting import MESSAGE_LIMIT, passage_plain, render_answer, split_html, truncate_plain
from bot.keyboards import HELP_PAYLOAD, open_in_bot_buttons
from bot.texts import Lang, text
from knowledge.api import Answer, detect_lang

logger = logging.getLogger(__name__)

CACHE_S = 300  # Telegram may reuse the results for the same query this long
FAQ_RESULTS = 5
SOURCE_RESULTS = 3  # the answer, then its next sources
DESCRIPTION_CHARS = 100
PASSAGE_CHARS = 700


async def on_inline_query(update: Update, context: CustomContext) -> None:
    """Offer the answer to an inline query (or FAQ entries for an empty one) as articles."""
    query = update.inline_query
    question = " ".join(query.query.split())
    user = query.from_user
    lang: Lang = detect_lang(question, user.language_code)
    try:
        if not question:
            entries = context.knowledge.faq(lang, FAQ_RESULTS)
            results = [
                _article(str(n), entry, context, title=entry.question) for n, entry in enumerate(entries)
            ]
            await query.answer(results, cache_time=CACHE_S)
            return
        wait = context.limits.check("question", user.id)
        if wait:
            context.store.record_usage("inline", "rate_limited", user.id, user.id, lang)
            button = InlineQueryResultsButton(
                text("inline_rate_limited", lang, seconds=wait), start_parameter=HELP_PAYLOAD
            )
            await query.answer([], cache_time=0, is_personal=True, button=button)
            return
        answer = await context.knowledge.ask_async(question)
        context.store.record_usage(
            "inline", "answered" if answer.answered else "declined", user.id, user.id, lang
        )
        await query.answer(_results(answer, context), cache_time=CACHE_S)
    except BadRequest as exc:  # e.g. the query expired while we were answering (or on a replay)
        logger.info("inline query not answered: %s", exc.message)


def _results(answer: Answer, context: CustomContext) -> list[InlineQueryResultArticle]:
    """The answer first, then its next sources each on its own; a decline as one result."""
    lang = answer.lang
    if not answer.answered or not answer.sources:
        return [_article("declined", answer, context, title=text("inline_declined", lang))]
    results = [_article("0", answer, context, title=answer.sources[0].section or answer.sources[0].title)]
    for n, source in enumerate(answer.sources[1:SOURCE_RESULTS], start=1):
        passage = passage_plain(source.text, PASSAGE_CHARS)
        alone = replace(answer, text=passage, sources=[source])
        results.append(_article(str(n), alone, context, title=source.section or source.title))
    return results


def _article(result_id: str, answer: Answer, context: CustomContext, title: str) -> InlineQueryResultArticle:
    lang = answer.lang
    source = answer.sources[0] if answer.sources else None
    return InlineQueryResultArticle(
        id=result_id,
        title=truncate_plain(title, 120) or text("inline_answer", lang),
        description=passage_plain(answer.text, DESCRIPTION_CHARS),
        # One message: a long answer is cut at a paragraph, as its first reply part would be.
        input_message_content=InputTextMessageContent(
            split_html(render_answer(answer, lang), MESSAGE_LIMIT)[0], parse_mode=ParseMode.HTML
        ),
        reply_markup=open_in_bot_buttons(context.bot.username, source.link if source else "", lang),
    )
