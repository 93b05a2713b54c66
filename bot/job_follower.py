"""Following a retrain job for the admin who started it: a progress message edited in place at most
once per RETRAIN_PROGRESS_INTERVAL_S, then a report with the candidate's and the champion's metrics,
the promotion verdict, and a sample from the new model. A promoted generator is hot-swapped through
GenerationClient.reload(), a promoted intent classifier through KnowledgeBase.reload_intent(): work in
flight finishes on the old model, later work runs on the new one.
"""

from __future__ import annotations

import asyncio
import logging
import time

from telegram.error import BadRequest, RetryAfter, TelegramError
from telegram.ext import Application

from bot.charts import loss_chart
from bot.context import CustomContext
from bot.delivery import send_html, send_photo
from bot.formatting import escape, fit_caption, metrics_text
from bot.heap import settle_heap
from bot.jobs import FinishHook, Job
from bot.texts import Lang, text
from generation.api import IMAGE_KINDS, TEXT_KINDS, GenerationError, ImageRequest, TextRequest, TrainReport
from knowledge.api import INTENT_MODEL

logger = logging.getLogger(__name__)

SAMPLE_SEED = 1234
SAMPLE_IMAGES = 8
SAMPLE_PROMPT = "The startup"
SAMPLE_TEXT_LENGTH = 200
# What a new intent classifier is shown reading: one message of each kind, in both languages.
SAMPLE_MESSAGES = (
    "how do I find my first paying customers?",
    "画三个数字7",
    "write a tagline for an AI legal assistant",
    "谢谢！",
    "what's the weather in Paris tomorrow?",
)


class JobFollower:
    """Edits one job's progress message in place (at most once per interval) and sends its report."""

    def __init__(
        self, context: CustomContext, chat_id: int, lang: Lang, thread_id: int | None = None
    ) -> None:
        self.context = context
        self.chat_id = chat_id
        self.thread_id = thread_id  # the forum topic /retrain was sent in
        self.lang = lang
        self.interval_s = context.settings.retrain_progress_interval_s
        self.message_id: int | None = None
        self._shown = ""
        self._last_edit = 0.0
        # One edit at a time, timed from when the previous one was answered: what Telegram sees is
        # spaced by the interval even when an edit is slow to arrive.
        self._editing = asyncio.Lock()

    def follow(self, job: Job, message_id: int | None, shown: str) -> None:
        """Start editing the progress message (which says `shown`) as the job progresses, in a task the
        JobManager stops with the bot; the job remembers where it is, for a restart."""
        self.message_id = message_id
        self._shown = shown
        self._last_edit = time.monotonic()
        self.context.jobs.place(
            job, chat_id=self.chat_id, thread_id=self.thread_id, message_id=message_id, lang=self.lang
        )
        if message_id is not None:
            self.context.jobs.track(self._tick(job))

    @classmethod
    def resume(cls, application: Application, job: Job) -> FinishHook | None:
        """After a restart: go on editing a re-attached job's progress message; the hook that reports
        its end (None for a job nobody asked for in a chat)."""
        place = job.place
        chat_id = place.get("chat_id", job.chat_id)
        if not isinstance(chat_id, int):
            return None
        lang: Lang = "zh" if place.get("lang") == "zh" else "en"
        context = CustomContext(application, chat_id=chat_id, user_id=job.user_id)
        follower = cls(context, chat_id, lang, place.get("thread_id"))
        follower.follow(job, place.get("message_id"), "")
        return follower.finish

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
        async with self._editing:
            if self.message_id is None or html == self._shown:
                return
            wait = self._last_edit + self.interval_s - time.monotonic()
            if wait > 0:
                if not final:
                    return
                await asyncio.sleep(wait)
            try:
                await self.context.bot.edit_message_text(
                    html, chat_id=self.chat_id, message_id=self.message_id
                )
                self._shown = html
            except RetryAfter as exc:  # Telegram asks us to slow down: skip this edit
                logger.info("progress edit throttled by Telegram for %s s", exc.retry_after)
            except BadRequest as exc:
                if "not modified" not in exc.message.lower():
                    logger.warning("could not edit the progress message: %s", exc.message)
            except TelegramError as exc:
                logger.warning("could not edit the progress message: %s", type(exc).__name__)
            finally:
                self._last_edit = time.monotonic()

    async def finish(self, job: Job) -> None:
        """The job ended: hot-swap a promoted model, close the progress message, send the report."""
        context, lang = self.context, self.lang
        swap_error = None
        report = job.report if job.status == "succeeded" else None  # a job succeeds only with a report
        promoted = report is not None and report.promoted
        if report is not None and promoted:
            swap_error = await hot_swap(context, job.kind, report.version)
        status = text(f"status_{job.status}", lang)
        await self._edit(
            text(
                "job_over",
                lang,
                job_id=escape(job.id),
                kind=job.kind,
                status=status,
                seconds=f"{job.seconds:.0f}",
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
            await self._send_loss_curve(job)
            served = promoted and swap_error is None
            if job.kind == INTENT_MODEL:
                if served:
                    await self._send_routing(report.version)
            else:
                await self._send_sample(job, report, served=served)

    def _report_html(self, job: Job, report: TrainReport, swap_error: str | None) -> str:
        lang = self.lang
        version = escape(report.version)
        reason = escape(report.reason)
        seconds = report.seconds if report.seconds is not None else round(job.seconds, 1)
        lines = [text("job_report", lang, job_id=escape(job.id), kind=job.kind, seconds=seconds)]
        lines.append(
            text("job_candidate", lang, version=version, metrics=escape(metrics_text(report.candidate)))
        )
        champion = report.champion
        if champion:
            lines.append(
                text(
                    "job_champion",
                    lang,
                    version=escape(champion.version),
                    metrics=escape(
                        metrics_text(champion.metrics) if champion.metrics else champion.error or "?"
                    ),
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
            if served and job.kind in IMAGE_KINDS:
                request = ImageRequest(model=job.kind, count=SAMPLE_IMAGES, seed=SAMPLE_SEED)
                sample = (await self.context.generation.image(request)).png
            elif served and job.kind in TEXT_KINDS:
                request = TextRequest(
                    model=job.kind, prompt=SAMPLE_PROMPT, length=SAMPLE_TEXT_LENGTH, seed=SAMPLE_SEED
                )
                sample = (await self.context.generation.text(request)).text
            else:
                sample = await self.context.jobs.sample(
                    job,
                    seed=SAMPLE_SEED,
                    images=SAMPLE_IMAGES,
                    prompt=SAMPLE_PROMPT,
                    length=SAMPLE_TEXT_LENGTH,
                )
        except (GenerationError, OSError, RuntimeError, TimeoutError) as exc:
            logger.warning("job %s: no sample: %s", job.id, exc)
        if sample is None:
            return
        caption = text("job_sample", self.lang, version=escape(version), seed=SAMPLE_SEED)
        if isinstance(sample, bytes):
            await send_photo(
                self.context, self.chat_id, sample, fit_caption(caption), thread_id=self.thread_id
            )
        else:
            await self._send(f"<i>{caption}</i>\n{escape(sample)}")

    async def _send_loss_curve(self, job: Job) -> None:
        """The losses the trainer reported, as a chart (nothing when it reported fewer than two)."""
        if len(job.losses) < 2:
            return
        try:
            chart = await asyncio.to_thread(loss_chart, job.losses, f"{job.kind} {job.id}")
        except Exception:  # a picture of the report: never lose the report for it
            logger.exception("job %s: the loss chart could not be drawn", job.id)
            return
        caption = text("job_loss", self.lang, job_id=escape(job.id))
        await send_photo(self.context, self.chat_id, chart, caption, thread_id=self.thread_id)

    async def _send_routing(self, version: str) -> None:
        """How the classifier now serving reads SAMPLE_MESSAGES."""
        lines = [text("job_routing", self.lang, version=escape(version))]
        for message in SAMPLE_MESSAGES:
            try:
                understanding = await self.context.knowledge.understand_async(message)
            except ValueError as exc:  # nothing a sample should stop the report for
                logger.warning("routing sample %r failed: %s", message, exc)
                continue
            lines.append(f"• {escape(message)} → {understanding.intent} ({understanding.confidence:.2f})")
        await self._send("\n".join(lines))

    async def _send(self, html: str) -> None:
        await send_html(self.context, self.chat_id, html, thread_id=self.thread_id)


async def hot_swap(context: CustomContext, kind: str, version: str) -> str | None:
    """Load the new champion into the running generators (or the knowledge base, for the intent
    classifier); None when it is serving, else why not."""
    if kind == INTENT_MODEL:
        try:
            serving = await asyncio.to_thread(context.knowledge.reload_intent)
        except ValueError as exc:  # IntentModelError: the old classifier keeps serving
            return str(exc)
        settle_heap()
        return None if serving == version else f"still serving {serving or 'nothing'}"
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
