"""Admin commands (/stats, /models, /reindex, /retrain, /rollback): ADMIN_IDS only, every call audited.

/retrain starts the companion trainer as a background job (bot.jobs) and follows it: a progress
message edited in place at most once per RETRAIN_PROGRESS_INTERVAL_S, then a report with the
candidate's and the champion's metrics, the promotion verdict, and a sample from the new model. A
promoted model is hot-swapped through GenerationClient.reload(): requests in flight finish on the old
model, queued ones run on the new one.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from telegram import Message, Update
from telegram.error import BadRequest, RetryAfter, TelegramError

from bot.context import CustomContext
from bot.delivery import send_html, send_photo
from bot.formatting import escape, fit_caption
from bot.handlers.common import Request, command_argument, message_lang, reply, reply_html
from bot.heap import settle_heap
from bot.jobs import MAX_SEED, Job, JobAlreadyRunning, RetrainOptions, UnknownJob
from bot.texts import Lang, text
from generation.api import MODEL_KINDS as KINDS
from generation.api import GenerationError, ImageRequest, TextRequest, TrainReport

logger = logging.getLogger(__name__)

AdminHandler = Callable[[Update, CustomContext], Awaitable[str]]

MAX_EPOCHS = 10_000
MAX_STEPS = 10_000_000
RECENT_VERSIONS = 5
SAMPLE_SEED = 1234
SAMPLE_IMAGES = 8
SAMPLE_PROMPT = "The startup"
SAMPLE_TEXT_LENGTH = 200


def admin_only(command: str) -> Callable[[AdminHandler], Callable[[Update, CustomContext], Awaitable[None]]]:
    """Run the wrapped handler for admins only; audit every attempt with its result.

    The wrapped handler replies itself and returns a short result for the audit log."""

    def wrap(handler: AdminHandler) -> Callable[[Update, CustomContext], Awaitable[None]]:
        @functools.wraps(handler)
        async def guarded(update: Update, context: CustomContext) -> None:
            request = Request.of(update, "")
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


def _lang(update: Update) -> Lang:
    return message_lang(update, "")  # admin replies follow the admin's client language


def _metrics(metrics: dict[str, Any] | None) -> str:
    if not metrics:
        return "—"
    return ", ".join(f"{name}={value:.4g}" for name, value in sorted(metrics.items()) if _number(value))


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# /stats ----------------------------------------------------------------------------------------------


@admin_only("stats")
async def stats_command(update: Update, context: CustomContext) -> str:
    """Questions answered/declined, feedback, generations and top unanswered questions, per day."""
    lang = _lang(update)
    store = context.store
    counts = store.usage_counts(since_days=7)
    feedback = store.feedback_by_day(since_days=7)
    today = datetime.now(UTC).date()
    days = [(today - timedelta(days=offset)).isoformat() for offset in range(6, -1, -1)]
    per_day: dict[str, dict[str, int]] = {day: {} for day in days}
    for (day, kind, outcome), count in counts.items():
        key = {("question", "answered"): "answered", ("question", "declined"): "declined"}.get(
            (kind, outcome), {"image": "images", "text": "texts"}.get(kind) if outcome == "ok" else None
        )
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
    unanswered = store.top_unanswered(limit=5)
    if unanswered:
        lines.append(text("stats_unanswered", lang))
        lines.extend(f"{count}× {escape(question)}" for question, count in unanswered)
    await reply_html(update, context, "\n".join(lines))
    return "ok"


# /models ---------------------------------------------------------------------------------------------


@admin_only("models")
async def models_command(update: Update, context: CustomContext) -> str:
    """Each generator's serving champion and its recent versions, with metrics and dates."""
    lang = _lang(update)
    serving = {model.kind: model for model in await context.generation.models()}
    lines = [text("models_title", lang)]
    for kind in KINDS:
        model = serving.get(kind)
        version = model.version if model is not None else None
        head = f"<b>{kind}</b>: {text('models_serving', lang, version=escape(version or text('none', lang)))}"
        if model is not None and model.version:
            head += f" · {escape(_metrics(model.metrics))}"
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
                f"{escape(entry.created_at or '')} · {escape(_metrics(entry.metrics))}"
            )
    await reply_html(update, context, "\n".join(lines))
    return "ok"


# /reindex --------------------------------------------------------------------------------------------


@admin_only("reindex")
async def reindex_command(update: Update, context: CustomContext) -> str:
    """Rebuild the knowledge index off the event loop; a failure leaves the old index serving."""
    lang = _lang(update)
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
    """(kinds, options) from `gan|lstm|all [epochs=N] [steps=N] [seed=N]`, or None when they are not
    valid."""
    if not args or args[0].lower() not in (*KINDS, "all"):
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
    kinds = list(KINDS) if target == "all" else [target]
    return kinds, RetrainOptions(epochs=epochs, max_steps=steps, seed=seed)


def _running(context: CustomContext, lang: Lang) -> str:
    jobs = context.jobs.running()
    if not jobs:
        return text("none", lang)
    return ", ".join(f"<code>{escape(job.id)}</code> ({job.kind})" for job in jobs)


@admin_only("retrain")
async def retrain_command(update: Update, context: CustomContext) -> str:
    """Start retraining gan, lstm or both in the background, or cancel a running job."""
    lang = _lang(update)
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
    chat = update.effective_chat
    user = update.effective_user
    follower = JobFollower(context, chat.id, lang)
    try:
        # A fresh seed unless one was given: the shipped default was trained with the recipe's seed, so
        # retraining with it would only reproduce that model.
        job = await context.jobs.start(
            kind, options.with_seed(), chat.id, user.id if user else None, on_finish=follower.finish
        )
    except JobAlreadyRunning as exc:  # started by a concurrent /retrain since we looked
        await reply_html(update, context, text("retrain_running", lang, kind=kind, job_id=escape(exc.job.id)))
        return f"refused: {kind} already running as {exc.job.id}"
    except OSError as exc:
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
    follower.follow(job, messages[0] if messages else None, starting)
    return f"started {job.id}"


async def _cancel(update: Update, context: CustomContext, job_id: str, lang: Lang) -> str:
    try:
        job = await context.jobs.cancel(job_id)
    except UnknownJob:
        await reply_html(
            update, context, text("job_unknown", lang, job_id=escape(job_id), running=_running(context, lang))
        )
        return f"refused: no running job {job_id}"
    if job.status != "cancelled":  # it finished first; its report follows as usual
        await reply_html(update, context, text("job_finished_first", lang, job_id=escape(job.id)))
        return f"too late: {job.id} {job.status}"
    await reply_html(update, context, text("job_cancelled", lang, job_id=escape(job.id), kind=job.kind))
    return f"cancelled {job.id}"


class JobFollower:
    """Edits one job's progress message in place (at most once per interval) and sends its report."""

    def __init__(self, context: CustomContext, chat_id: int, lang: Lang) -> None:
        self.context = context
        self.chat_id = chat_id
        self.lang = lang
        self.interval_s = context.settings.retrain_progress_interval_s
        self.message: Message | None = None
        self._shown = ""
        self._last_edit = 0.0

    def follow(self, job: Job, message: Message | None, shown: str) -> None:
        """Start editing `message` (which says `shown`) as the job progresses, in a task the JobManager
        stops with the bot."""
        self.message = message
        self._shown = shown
        self._last_edit = time.monotonic()
        if message is not None:
            self.context.jobs.track(self._tick(job))

    async def _tick(self, job: Job) -> None:
        while not job.done.is_set() and self.context.application.running:  # not once the bot stops
            try:
                await asyncio.wait_for(job.done.wait(), self.interval_s)
            except TimeoutError:
                await self._edit(self._progress_text(job))

    def _progress_text(self, job: Job) -> str:
        progress = job.progress
        if progress is None:
            return text("job_starting", self.lang, job_id=escape(job.id), kind=job.kind)
        loss = f"{progress.loss:.4f}" if progress.loss is not None else "—"
        return text(
            "job_progress",
            self.lang,
            job_id=escape(job.id),
            kind=job.kind,
            phase=escape(progress.phase),
            step=progress.step,
            total=progress.total_steps,
            loss=loss,
            eta=f"{progress.eta_s:.0f}",
        )

    async def _edit(self, html: str, *, final: bool = False) -> None:
        """Edit the progress message unless it already says this; never more often than the interval."""
        message = self.message
        if message is None or html == self._shown:
            return
        wait = self._last_edit + self.interval_s - time.monotonic()
        if wait > 0:
            if not final:
                return
            await asyncio.sleep(wait)
        self._last_edit = time.monotonic()
        try:
            await self.context.bot.edit_message_text(
                html, chat_id=message.chat_id, message_id=message.message_id
            )
            self._shown = html
        except RetryAfter as exc:  # Telegram asks us to slow down: skip this edit
            logger.info("progress edit throttled by Telegram for %s s", exc.retry_after)
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():
                logger.warning("could not edit the progress message: %s", exc.message)
        except TelegramError as exc:
            logger.warning("could not edit the progress message: %s", type(exc).__name__)

    async def finish(self, job: Job) -> None:
        """The job ended: hot-swap a promoted model, close the progress message, send the report."""
        context, lang = self.context, self.lang
        swap_error = None
        report = job.report if job.status == "succeeded" else None  # a job succeeds only with a report
        promoted = report is not None and report.promoted
        if report is not None and promoted:
            swap_error = await _hot_swap(context, job.kind, report.version)
        status = text(f"status_{job.status}", lang)
        await self._edit(
            text(
                "job_over",
                lang,
                job_id=escape(job.id),
                kind=job.kind,
                status=status,
                seconds=f"{job.elapsed_s:.0f}",
            ),
            final=True,
        )
        if report is not None:
            verdict = "promoted" if promoted else "not promoted"
            outcome = f"succeeded: {report.version} {verdict} ({report.reason})"
            if swap_error:
                outcome += f"; hot swap failed: {swap_error}"
        else:
            outcome = f"{job.status}: {job.error}"
        context.store.audit(job.user_id, job.chat_id, "retrain", job.id, outcome)  # before Telegram
        if job.status == "failed":
            await self._send(
                text("job_failed", lang, job_id=escape(job.id), kind=job.kind, error=escape(job.error))
            )
        elif report is not None:
            await self._send(self._report_html(job, report, swap_error))
            await self._send_sample(job, report, served=promoted and swap_error is None)

    def _report_html(self, job: Job, report: TrainReport, swap_error: str | None) -> str:
        lang = self.lang
        version = escape(report.version)
        reason = escape(report.reason)
        seconds = report.seconds if report.seconds is not None else round(job.elapsed_s, 1)
        lines = [text("job_report", lang, job_id=escape(job.id), kind=job.kind, seconds=seconds)]
        lines.append(text("job_candidate", lang, version=version, metrics=escape(_metrics(report.candidate))))
        champion = report.champion
        if champion:
            lines.append(
                text(
                    "job_champion",
                    lang,
                    version=escape(champion.version),
                    metrics=escape(_metrics(champion.metrics) if champion.metrics else champion.error or "?"),
                )
            )
        else:
            lines.append(text("job_no_champion", lang))
        if report.promoted:
            lines.append(text("job_promoted", lang, reason=reason, version=version))
        else:
            keeps = escape(champion.version if champion else text("none", lang))
            lines.append(text("job_not_promoted", lang, reason=reason, champion=keeps))
        for warning in report.warnings:
            lines.append(text("job_warning", lang, warning=escape(warning)))
        if swap_error:
            lines.append(text("job_swap_failed", lang, error=escape(swap_error)))
        return "\n".join(lines)

    async def _send_sample(self, job: Job, report: TrainReport, *, served: bool) -> None:
        """A sample from the new model: through the running generators when it is serving, else from its
        checkpoint in a subprocess (the bot does not load models itself)."""
        version = report.version
        sample: bytes | str | None = None
        try:
            if served and job.kind == "gan":
                sample = (
                    await self.context.generation.image(ImageRequest(count=SAMPLE_IMAGES, seed=SAMPLE_SEED))
                ).png
            elif served:
                request = TextRequest(prompt=SAMPLE_PROMPT, length=SAMPLE_TEXT_LENGTH, seed=SAMPLE_SEED)
                sample = (await self.context.generation.text(request)).text
            elif report.path:
                sample = await self.context.jobs.sample(
                    job.kind,
                    report.path,
                    seed=SAMPLE_SEED,
                    images=SAMPLE_IMAGES,
                    prompt=SAMPLE_PROMPT,
                    length=SAMPLE_TEXT_LENGTH,
                )
        except (GenerationError, OSError, RuntimeError) as exc:
            logger.warning("job %s: no sample: %s", job.id, exc)
        if sample is None:
            return
        caption = text("job_sample", self.lang, version=escape(version), seed=SAMPLE_SEED)
        if isinstance(sample, bytes):
            await send_photo(self.context, self.chat_id, sample, fit_caption(caption))
        else:
            await self._send(f"<i>{caption}</i>\n{escape(sample)}")

    async def _send(self, html: str) -> None:
        await send_html(self.context, self.chat_id, html)


async def _hot_swap(context: CustomContext, kind: str, version: str) -> str | None:
    """Load the new champion into the running generators; None when it is serving, else why not."""
    try:
        models = await context.generation.reload()
    except GenerationError as exc:
        return str(exc)
    settle_heap()  # the old champion is garbage now
    serving = next((model.version for model in models if model.kind == kind), None)
    if serving != version:
        return f"still serving {serving or 'nothing'}"
    logger.info("hot-swapped %s to %s", kind, version)
    return None


# /rollback -------------------------------------------------------------------------------------------


@admin_only("rollback")
async def rollback_command(update: Update, context: CustomContext) -> str:
    """Make an earlier version champion again (the previous one by default) and hot-swap it."""
    lang = _lang(update)
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


ADMIN_HANDLERS = {
    "stats": stats_command,
    "models": models_command,
    "reindex": reindex_command,
    "retrain": retrain_command,
    "rollback": rollback_command,
}
