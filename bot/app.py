"""Builds the PTB Application: defaults, flood control, services started in post_init and stopped in
post_shutdown, and the one ordered list of handlers."""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from urllib.parse import urlparse

from telegram import BotCommand, BotCommandScopeChat, BotCommandScopeDefault, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    InlineQueryHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import BaseRequest

from bot.bootstrap import missing_generators, train_missing
from bot.context import BotData, CustomContext, Services
from bot.handlers import admin, ask, errors, feedback, gate, generate, inline, privacy, route, start
from bot.handlers.gate import AddressedToBot
from bot.heap import settle_heap
from bot.job_follower import JobFollower
from bot.jobs import JobManager
from bot.journal import JournalledApplication, JournalQueue
from bot.keyboards import FORGET_PATTERN
from bot.outbox import Outbox
from bot.ratelimit import ChatFloodGuard, RateLimits
from bot.settings import BotSettings
from bot.texts import ADMIN_COMMANDS, COMMANDS
from bot.transport import AiohttpRequest
from generation.api import MODEL_KINDS
from knowledge.api import INTENT_MODEL

logger = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.CHANNEL_POST, Update.CALLBACK_QUERY, Update.INLINE_QUERY]
# Commands count in messages and channel posts, not in edits of either.
COMMAND_UPDATES = filters.UpdateType.MESSAGE | filters.UpdateType.CHANNEL_POST
COMMAND_LANGUAGES = (("en", None), ("zh", "zh"))


def handlers() -> list[tuple[int, BaseHandler]]:
    """Every handler with its group, in the order PTB tries them."""
    user_commands = {
        "start": start.start,
        "help": start.help_command,
        "about": start.about,
        "ask": ask.ask_command,
        "image": generate.image_command,
        "text": generate.text_command,
        "privacy": privacy.privacy_command,
        "forget": privacy.forget_command,
    }
    return [
        (-1, TypeHandler(Update, gate.on_any_update, block=True)),
        (0, MessageHandler(filters.StatusUpdate.MIGRATE, errors.on_migration)),
        *(
            (0, CommandHandler(name, callback, filters=COMMAND_UPDATES))
            for name, callback in user_commands.items()
        ),
        *(
            (0, CommandHandler(name, callback, filters=COMMAND_UPDATES))
            for name, callback in admin.ADMIN_HANDLERS.items()
        ),
        (0, InlineQueryHandler(inline.on_inline_query)),
        (0, CallbackQueryHandler(privacy.on_forget_press, pattern=FORGET_PATTERN)),
        (0, CallbackQueryHandler(feedback.on_button)),
        (
            0,
            MessageHandler(
                filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND & AddressedToBot(),
                route.on_message,
            ),
        ),
        (
            0,
            MessageHandler(
                filters.UpdateType.MESSAGE & filters.COMMAND & filters.ChatType.PRIVATE, start.unknown_command
            ),
        ),
    ]


def build_application(
    settings: BotSettings,
    services: Services,
    *,
    token: str | None = None,
    request: BaseRequest | None = None,
) -> Application:
    """The Application for `settings`; `request` replaces HTTP (the terminal chat), which also drops the
    updater and the flood limiter."""
    builder = (
        ApplicationBuilder()
        .application_class(JournalledApplication)
        .update_queue(JournalQueue())
        .token(token or settings.token or "")
        .base_url(settings.telegram_api_base_url)
        .defaults(Defaults(parse_mode=ParseMode.HTML, allow_sending_without_reply=True))
        .context_types(ContextTypes(context=CustomContext, bot_data=BotData))
        .concurrent_updates(settings.max_concurrent_updates)
        .post_init(start_services)
        .post_shutdown(stop_services)
    )
    if request is None:
        flood = settings.telegram_flood_rate
        builder = (
            builder.rate_limiter(
                AIORateLimiter(overall_max_rate=flood, group_max_rate=20 if flood else 0, max_retries=2)
            )
            .request(AiohttpRequest(2 * settings.max_concurrent_updates, settings.telegram_read_timeout_s))
            .get_updates_request(AiohttpRequest(1, settings.telegram_read_timeout_s))
        )
    else:
        builder = builder.request(request).get_updates_request(request).updater(None)
    application = builder.build()
    application.stop_grace_s = settings.shutdown_grace_s
    application.bot_data.settings = settings
    application.bot_data.services = services
    application.bot_data.flood_guard = ChatFloodGuard(settings.chat_rate, settings.rate_window_s)
    application.bot_data.limits = RateLimits(
        settings.question_rate, settings.generation_rate, settings.rate_window_s
    )
    application.bot_data.jobs = JobManager(
        services.store,
        settings.data_dir,
        extra_args={
            **dict.fromkeys(MODEL_KINDS, settings.retrain_argv),
            INTENT_MODEL: settings.intent_retrain_argv,
        },
        cancel_grace_s=settings.retrain_cancel_grace_s,
        remote=services.generation.jobs,
    )
    for group, handler in handlers():
        application.add_handler(handler, group=group)
    application.add_error_handler(errors.on_error)
    return application


async def start_services(application: Application) -> None:
    """post_init: open the store, load the knowledge base and generators, register the commands."""
    services: Services = application.bot_data.services
    services.store.open()
    if isinstance(application.update_queue, JournalQueue):
        # Before polling starts: what the last run received but did not finish is handled first.
        application.update_queue.store = services.store
        application.update_queue.replay(application)
    outbox = Outbox(services.store, application.bot, application.bot_data.settings.outbox_interval_s)
    application.bot_data.outbox = outbox
    outbox.start()
    # Jobs cannot outlive the process that ran them: fail them, stop orphaned trainers, remove their
    # partial files (the champion is untouched).
    await application.bot_data.jobs.recover(resume=partial(JobFollower.resume, application))
    await asyncio.to_thread(services.knowledge.initialize)
    try:
        await services.generation.initialize()
    except Exception as exc:  # questions still work; /image and /text will say the generators are down
        logger.warning("generators unavailable at start: %s", exc)
    await register_commands(application, application.bot_data.settings.admin_ids)
    if application.job_queue is not None:
        application.job_queue.run_repeating(
            privacy.prune_old_rows, privacy.PRUNE_INTERVAL_S, first=privacy.PRUNE_FIRST_S, name="retention"
        )
    settle_heap(release_frozen=False)  # a fresh process: nothing frozen to release
    missing = missing_generators(services.generation)
    if missing and application.bot_data.settings.train_missing_models:
        jobs = application.bot_data.jobs
        jobs.track(train_missing(jobs, services.generation, missing, application.bot_data.first_start_queue))
    logger.info("bot @%s ready", application.bot.username)


async def stop_services(application: Application) -> None:
    """post_shutdown: stop what start_services started, in reverse order."""
    services: Services = application.bot_data.services
    outbox = application.bot_data.outbox
    if outbox is not None:
        await outbox.stop()
    try:
        await application.bot_data.jobs.shutdown()  # stop trainers while the store can record it
    finally:
        try:
            await services.generation.shutdown()
        finally:
            try:
                await asyncio.to_thread(services.knowledge.shutdown)
            finally:
                services.store.close()


async def register_commands(application: Application, admin_ids: frozenset[int]) -> None:
    """setMyCommands in English (the default) and Chinese; admins also see the admin commands in their
    private chat with the bot."""
    bot = application.bot
    for lang, language_code in COMMAND_LANGUAGES:
        user_commands = [BotCommand(name, descriptions[lang]) for name, descriptions in COMMANDS.items()]
        await bot.set_my_commands(user_commands, scope=BotCommandScopeDefault(), language_code=language_code)
        admin_commands = [
            BotCommand(name, descriptions[lang]) for name, descriptions in ADMIN_COMMANDS.items()
        ]
        for admin_id in admin_ids:
            try:
                await bot.set_my_commands(
                    user_commands + admin_commands,
                    scope=BotCommandScopeChat(admin_id),
                    language_code=language_code,
                )
            except TelegramError as exc:  # e.g. the admin has not started a chat with the bot yet
                logger.warning("could not set admin commands for %s: %s", admin_id, exc)


@asynccontextmanager
async def running(application: Application, *, poll_timeout: float = 10.0) -> AsyncIterator[Application]:
    """What run_polling does, inside an existing event loop: start services, polling (when there is an
    updater) and dispatch; stop them in reverse order. Used by the terminal chat and the tests."""
    await application.initialize()
    try:
        await start_services(application)
        if application.updater is not None:
            await application.updater.start_polling(
                poll_interval=0, timeout=poll_timeout, allowed_updates=ALLOWED_UPDATES
            )
        await application.start()
        try:
            yield application
        finally:
            if application.updater is not None and application.updater.running:
                await application.updater.stop()
            await application.stop()
    finally:
        await application.shutdown()
        await stop_services(application)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGABRT)


def run(
    application: Application, settings: BotSettings, stop_signals: Sequence[int] | None = STOP_SIGNALS
) -> None:
    """Serve until interrupted (one of `stop_signals`; None when run outside the main thread, as tests
    do): a webhook when WEBHOOK_URL is set, long polling otherwise."""
    if not settings.webhook_url:
        application.run_polling(allowed_updates=ALLOWED_UPDATES, stop_signals=stop_signals)
        return
    # Telegram echoes the secret in a header on every request and PTB rejects requests without it;
    # with no WEBHOOK_SECRET configured a random one is used for this run.
    secret = (
        settings.webhook_secret.get_secret_value() if settings.webhook_secret else secrets.token_urlsafe(32)
    )
    application.run_webhook(
        listen=settings.webhook_listen,
        port=settings.webhook_port,
        url_path=urlparse(settings.webhook_url).path.lstrip("/"),
        webhook_url=settings.webhook_url,
        secret_token=secret,
        allowed_updates=ALLOWED_UPDATES,
        stop_signals=stop_signals,
    )
