"""Admin commands (/stats, /models, /reindex, /retrain, /rollback, /block, /unblock): ADMIN_IDS only,
every call audited.

/retrain starts the companion trainer as a background job (bot.jobs) that bot.job_follower follows.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from telegram import Update

from bot.charts import usage_chart
from bot.context import CustomContext
from bot.delivery import send_photo
from bot.formatting import escape, metrics_text
from bot.handlers.common import Request, command_argument, interface_lang, reply, reply_html
from bot.heap import settle_heap
from bot.job_follower import JobFollower
from bot.jobs import JOB_KINDS, MAX_SEED, JobAlreadyRunning, JobNotStarted, RetrainOptions, UnknownJob
from bot.texts import Lang, text
from generation.api import MODEL_KINDS as KINDS
from generation.api import GenerationError

logger = logging.getLogger(__name__)

AdminHandler = Callable[[Update, CustomContext], Awaitable[str]]

MAX_EPOCHS = 10_000
MAX_STEPS = 10_000_000
RECENT_VERSIONS = 5


def admin_only(command: str) -> Callable[[AdminHandler], Callable[[Update, CustomContext], Awaitable[None]]]:
    """Run the wrapped handler for admins only; audit every attempt with its result.

    The wrapped handler replies itself and returns a short result for the audit log."""

    def wrap(handler: AdminHandler) -> Callable[[Update, CustomContext], Awaitable[None]]:
        @functools.wraps(handler)
        async def guarded(update: Update, context: CustomContext) -> None:
            request = Request.of(update, lang=interface_lang(update, context))
            args = command_argument(update.effective_message)
            if not context.is_admin(request.user_id):
                context.store.audit(request.user_id, request.chat_id, command, args, "refused: not an admin")
                await reply(context, request, text("admins_only", request.lang))
                return
            try:
                result = await handler(update, context)
            except Exception as exc:
                context.store.audit(
                    request.user_id, request.chat_id, command, args, f"error: {type(exc).__name__}"
                )
                raise
            context.store.audit(request.user_id, request.chat_id, command, args, result)

        return guarded

    return wrap


def _lang(update: Update, context: CustomContext) -> Lang:
    return interface_lang(update, context)


# /stats ----------------------------------------------------------------------------------------------


@admin_only("stats")
async def stats_command(update: Update, context: CustomContext) -> str:
    """Questions answered/declined, feedback, generations and top unanswered questions, per day."""
    lang = _lang(update, context)
    store = context.store
    counts = store.usage_counts(since_days=7)
    feedback = store.feedback_by_day(since_days=7)
    today = datetime.now(UTC).date()
    days = [(today - timedelta(days=offset)).isoformat() for offset in range(6, -1, -1)]
    per_day: dict[str, dict[str, int]] = {day: {} for day in days}
    for (day, kind, outcome), count in counts.items():
        key = {
            ("question", "answered"): "answered",
            ("question", "declined"): "declined",
            ("inline", "answered"): "answered",  # inline mode answers questions too
            ("inline", "declined"): "declined",
        }.get((kind, outcome), {"image": "images", "text": "texts"}.get(kind) if outcome == "ok" else None)
        if key and day in per_day:
            per_day[day][key] = per_day[day].get(key, 0) + count
    for day, (helpful, unhelpful) in feedback.items():
        if day in per_day:
            per_day[day]["helpful"], per_day[day]["unhelpful"] = helpful, unhelpful
    totals = {
        key: sum(row.get(key, 0) for row in per_day.values())
        for key in ("answered", "declined", "images", "texts", "helpful", "unhelpful")
    }
    votes = totals["helpful"] + totals["unhelpful"]
    ratio = f" ({100 * totals['helpful'] / votes:.0f}% 👍)" if votes else ""
    lines = [text("stats_title", lang), text("stats_totals", lang, ratio=ratio, **totals)]
    lines.append(text("stats_per_day", lang))
    for day in days:
        row = per_day[day]
        lines.append(
            f"{day[5:]}: {row.get('answered', 0)}/{row.get('declined', 0)} · "
            f"{row.get('images', 0)}/{row.get('texts', 0)} · {row.get('helpful', 0)}/{row.get('unhelpful', 0)}"
        )
    ignored = {
        outcome: sum(n for (_, kind, out), n in counts.items() if kind == "ignored" and out == outcome)
        for outcome in ("blocked", "not_allowed")
    }
    if any(ignored.values()):
        lines.append(text("stats_ignored", lang, **ignored))
    unanswered = store.top_unanswered(limit=5)
    if unanswered:
        lines.append(text("stats_unanswered", lang))
        lines.extend(f"{count}× {escape(question)}" for question, count in unanswered)
    await reply_html(update, context, "\n".join(lines))
    request = Request.of(update, lang=lang)
    try:
        chart = await asyncio.to_thread(usage_chart, days, per_day)
    except Exception:  # a chart is a picture of the figures above: never fail /stats for it
        logger.exception("the /stats chart could not be drawn")
        return "ok"
    await send_photo(
        context,
        request.chat_id,
        chart,
        text("stats_chart", lang),
        reply_to=request.quote,
        thread_id=request.thread_id,
    )
    return "ok"


# /models ---------------------------------------------------------------------------------------------


@admin_only("models")
async def models_command(update: Update, context: CustomContext) -> str:
    """Each generator's serving champion and its recent versions, with metrics and dates, and the
    intent classifier's version."""
    lang = _lang(update, context)
    serving = {model.kind: model for model in await context.generation.models()}
    lines = [text("models_title", lang)]
    intent = context.knowledge.intent_version
    lines.append(text("models_intent", lang, version=escape(intent or text("none", lang))))
    for kind in KINDS:
        model = serving.get(kind)
        version = model.version if model is not None else None
        head = f"<b>{kind}</b>: {text('models_serving', lang, version=escape(version or text('none', lang)))}"
        if model is not None and model.version:
            head += f" · {escape(metrics_text(model.metrics))}"
            if model.created_at:
                head += f" · {escape(model.created_at)}"
        lines.append(head)
        try:
            versions = await context.generation.versions(kind)
        except GenerationError as exc:
            lines.append(f"  ({escape(str(exc))})")
            continue
        for entry in list(versions)[:RECENT_VERSIONS]:
            note = f" ({escape(entry.note)})" if entry.note else ""
            lines.append(
                f"• <code>{escape(entry.version)}</code> {escape(entry.status)}{note} · "
                f"{escape(entry.created_at or '')} · {escape(metrics_text(entry.metrics))}"
            )
    await reply_html(update, context, "\n".join(lines))
    return "ok"


# /reindex --------------------------------------------------------------------------------------------


@admin_only("reindex")
async def reindex_command(update: Update, context: CustomContext) -> str:
    """Rebuild the knowledge index off the event loop; a failure leaves the old index serving."""
    lang = _lang(update, context)
    started = time.perf_counter()
    try:
        report = await asyncio.to_thread(context.knowledge.rebuild)
    except Exception as exc:  # the knowledge base swaps only a finished index: the old one still serves
        logger.warning("reindex failed: %s: %s", type(exc).__name__, exc)
        reason = f"{type(exc).__name__}: {exc}"
        await reply_html(update, context, text("reindex_failed", lang, error=escape(reason[:500])))
        return f"failed: {reason[:200]}"
    seconds = time.perf_counter() - started
    settle_heap()  # the old index is garbage now
    stats = await asyncio.to_thread(context.knowledge.stats)  # the new index's manifest
    counts = {key: getattr(report, key, stats.get(key)) for key in ("documents", "sections", "faq_entries")}
    await reply_html(
        update,
        context,
        text("reindex_done", lang, seconds=f"{seconds:.1f}", **{k: escape(v) for k, v in counts.items()}),
    )
    return (
        f"ok in {seconds:.1f} s: {counts['documents']} articles, {counts['sections']} sections, "
        f"{counts['faq_entries']} FAQ entries"
    )


# /retrain --------------------------------------------------------------------------------------------


def parse_retrain_args(args: Sequence[str]) -> tuple[list[str], RetrainOptions] | None:
    """(kinds, options) from `gan|vae|lstm|intent|all [epochs=N] [steps=N] [seed=N]`, or None when they
    are not valid."""
    if not args or args[0].lower() not in (*JOB_KINDS, "all"):
        return None
    target = args[0].lower()
    values: dict[str, int] = {}
    for item in args[1:]:
        key, sep, raw = item.partition("=")
        key = key.lower()
        if not sep or key not in ("epochs", "steps", "seed") or key in values or not raw.isdigit():
            return None
        values[key] = int(raw)
    epochs, steps, seed = values.get("epochs"), values.get("steps"), values.get("seed")
    if (
        (epochs is not None and not 1 <= epochs <= MAX_EPOCHS)
        or (steps is not None and not 1 <= steps <= MAX_STEPS)
        or (seed is not None and not seed < MAX_SEED)
    ):
        return None
    kinds = list(JOB_KINDS) if target == "all" else [target]
    return kinds, RetrainOptions(epochs=epochs, max_steps=steps, seed=seed)


def _running(context: CustomContext, lang: Lang) -> str:
    jobs = context.jobs.running()
    if not jobs:
        return text("none", lang)
    return ", ".join(f"<code>{escape(job.id)}</code> ({job.kind})" for job in jobs)


@admin_only("retrain")
async def retrain_command(update: Update, context: CustomContext) -> str:
    """Start retraining a model (or all of them) in the background, or cancel a running job."""
    lang = _lang(update, context)
    args = command_argument(update.effective_message).split()
    if len(args) == 2 and args[0].lower() == "cancel":
        return await _cancel(update, context, args[1], lang)
    parsed = parse_retrain_args(args)
    if parsed is None:
        await reply_html(update, context, text("retrain_usage", lang, running=_running(context, lang)))
        return "usage"
    kinds, options = parsed
    results = []
    for kind in kinds:
        current = context.jobs.running_for(kind)
        if current is not None:
            await reply_html(
                update, context, text("retrain_running", lang, kind=kind, job_id=escape(current.id))
            )
            results.append(f"refused: {kind} already running as {current.id}")
            continue
        results.append(await _start(update, context, kind, options, lang))
    return "; ".join(results)


async def _start(
    update: Update, context: CustomContext, kind: str, options: RetrainOptions, lang: Lang
) -> str:
    request = Request.of(update, lang=interface_lang(update, context))
    follower = JobFollower(context, request.chat_id, lang, request.thread_id)
    try:
        # A fresh seed unless one was given: the shipped default was trained with the recipe's seed, so
        # retraining with it would only reproduce that model.
        job = await context.jobs.start(
            kind, options.with_seed(), request.chat_id, request.user_id, on_finish=follower.finish
        )
    except JobAlreadyRunning as exc:  # started by a concurrent /retrain since we looked
        await reply_html(update, context, text("retrain_running", lang, kind=kind, job_id=escape(exc.job.id)))
        return f"refused: {kind} already running as {exc.job.id}"
    except JobNotStarted as exc:
        await reply_html(
            update, context, text("job_failed", lang, job_id="-", kind=kind, error=escape(str(exc)))
        )
        return f"failed to start {kind}: {exc}"
    described = job.options.describe()  # with the seed the job was given
    started = text(
        "retrain_started",
        lang,
        job_id=escape(job.id),
        kind=kind,
        options=f" ({described})" if described else "",
    )
    await reply_html(update, context, started)
    starting = text("job_starting", lang, job_id=escape(job.id), kind=kind)
    messages = await reply_html(update, context, starting)
    follower.follow(job, messages[0].message_id if messages else None, starting)
    return f"started {job.id}"


async def _cancel(update: Update, context: CustomContext, job_id: str, lang: Lang) -> str:
    try:
        job = await context.jobs.cancel(job_id)
    except UnknownJob:
        await reply_html(
            update, context, text("job_unknown", lang, job_id=escape(job_id), running=_running(context, lang))
        )
        return f"refused: no running job {job_id}"
    except GenerationError as exc:  # the generation service could not be asked
        await reply_html(
            update, context, text("job_cancel_failed", lang, job_id=escape(job_id), error=escape(str(exc)))
        )
        return f"cancel failed: {exc}"
    if job.status != "cancelled":  # it finished first; its report follows as usual
        await reply_html(update, context, text("job_finished_first", lang, job_id=escape(job.id)))
        return f"too late: {job.id} {job.status}"
    await reply_html(update, context, text("job_cancelled", lang, job_id=escape(job.id), kind=job.kind))
    return f"cancelled {job.id}"


# /rollback -------------------------------------------------------------------------------------------


@admin_only("rollback")
async def rollback_command(update: Update, context: CustomContext) -> str:
    """Make an earlier version champion again (the previous one by default) and hot-swap it."""
    lang = _lang(update, context)
    args = command_argument(update.effective_message).split()
    if not 1 <= len(args) <= 2 or args[0].lower() not in KINDS:
        await reply_html(update, context, text("rollback_usage", lang))
        return "usage"
    kind = args[0].lower()
    version = args[1] if len(args) == 2 else None
    try:
        champion = await context.generation.rollback(kind, version)
    except GenerationError as exc:
        await reply_html(update, context, text("rollback_failed", lang, error=escape(str(exc))))
        return f"refused: {exc}"
    await reply_html(
        update, context, text("rollback_done", lang, kind=kind, version=escape(champion.version))
    )
    return f"ok: {kind} champion {champion.version}"


# /block, /unblock -------------------------------------------------------------------------------


def _block_target(update: Update) -> int | None:
    """The user id after the command, or the author of the message the command replies to."""
    message = update.effective_message
    argument = command_argument(message)
    if argument:
        return int(argument) if argument.isdigit() and 0 < int(argument) < 2**53 else None
    replied = message.reply_to_message
    author = replied.from_user if replied is not None else None
    return author.id if author is not None and not author.is_bot else None


async def _block_target_or_usage(update: Update, context: CustomContext, lang: Lang) -> int | None:
    """The user /block or /unblock names; None (and the usage line sent) when it names none."""
    user_id = _block_target(update)
    if user_id is None:
        await reply_html(update, context, text("block_usage", lang))
    return user_id


@admin_only("block")
async def block_command(update: Update, context: CustomContext) -> str:
    """Ignore a user from now on: no replies, no model work (by id, or by replying to them)."""
    lang = _lang(update, context)
    user_id = await _block_target_or_usage(update, context, lang)
    if user_id is None:
        return "usage"
    if context.is_admin(user_id):
        await reply_html(update, context, text("block_admin", lang))
        return f"refused: {user_id} is an admin"
    if not context.store.is_user_blocked(user_id) and not context.store.has_seen_user(user_id):
        await reply_html(update, context, text("block_unknown", lang, user_id=user_id))
        return f"refused: {user_id} never seen"
    admin = update.effective_user.id if update.effective_user else None
    if not context.store.block_user(user_id, admin):
        await reply_html(update, context, text("block_already", lang, user_id=user_id))
        return f"already blocked: {user_id}"
    await reply_html(update, context, text("blocked_user", lang, user_id=user_id))
    return f"blocked {user_id}"


@admin_only("unblock")
async def unblock_command(update: Update, context: CustomContext) -> str:
    """Stop ignoring a user (by id, or by replying to them)."""
    lang = _lang(update, context)
    user_id = await _block_target_or_usage(update, context, lang)
    if user_id is None:
        return "usage"
    if not context.store.unblock_user(user_id):
        await reply_html(update, context, text("unblock_not_blocked", lang, user_id=user_id))
        return f"not blocked: {user_id}"
    await reply_html(update, context, text("unblocked_user", lang, user_id=user_id))
    return f"unblocked {user_id}"


ADMIN_HANDLERS = {
    "stats": stats_command,
    "models": models_command,
    "reindex": reindex_command,
    "retrain": retrain_command,
    "rollback": rollback_command,
    "block": block_command,
    "unblock": unblock_command,
}
