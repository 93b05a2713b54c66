"""python -m bot [run|chat]: the Telegram bot, or the same conversation in a terminal."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import TYPE_CHECKING

from bot.logs import setup_logging
from bot.settings import BotSettings

if TYPE_CHECKING:
    from bot.context import Services

logger = logging.getLogger("bot")

NO_TOKEN = """\
TELEGRAM_BOT_TOKEN is not set.

To get a token: open Telegram, talk to @BotFather, send /newbot and follow the prompts; it replies
with a token like 123456789:AA... Then either

    export TELEGRAM_BOT_TOKEN=<your token>      (or put it in a .env file)
    python -m bot run

or try the bot without a token in a terminal:  python -m bot chat
"""


def main(argv: list[str] | None = None) -> int:
    """Parse the subcommand, read settings once, and start the bot or the terminal chat."""
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    parser.add_argument(
        "command",
        nargs="?",
        choices=["run", "chat"],
        help="run: the Telegram bot; chat: a terminal conversation (default: run with a token, else chat)",
    )
    args = parser.parse_args(argv)
    settings = BotSettings.load()
    command = args.command or ("run" if settings.token else "chat")
    if command == "run" and not settings.token:
        print(NO_TOKEN, file=sys.stderr)
        return 2

    return start(command, settings)


def start(command: str, settings: BotSettings, services: Services | None = None) -> int:
    """Read the services' settings, set up logging with every secret redacted, and serve. `services`
    replaces the real knowledge base and generators (the process-level tests)."""
    from bot.context import Services
    from generation.settings import GenerationSettings
    from knowledge.settings import KnowledgeSettings

    generation_settings = GenerationSettings.load()
    knowledge_settings = KnowledgeSettings.load()
    secrets = [
        settings.token,
        settings.webhook_secret.get_secret_value() if settings.webhook_secret else None,
        generation_settings.token,
    ]
    # The terminal chat prints to stdout; keep routine INFO logs out of the conversation.
    level = "WARNING" if command == "chat" and settings.log_level == "INFO" else settings.log_level
    setup_logging(level, secrets)
    if services is None:
        services = Services.from_settings(settings, knowledge_settings, generation_settings)

    if command == "chat":
        from bot.console import chat

        try:
            asyncio.run(chat(settings, services))
        except KeyboardInterrupt:
            pass
        return 0

    from telegram.error import InvalidToken

    from bot.app import build_application, run

    try:
        run(build_application(settings, services), settings)
    except InvalidToken:
        # PTB's message quotes the token: say it in our own words (and never print the exception).
        logger.critical("Telegram rejected TELEGRAM_BOT_TOKEN; check it with @BotFather")
        return 1
    except Exception as exc:
        # Logged, not left to Python's traceback printer: log records are redacted, tracebacks are not.
        logger.critical("the bot stopped: %s", type(exc).__name__, exc_info=exc)
        return 1
    return 0


def exit_process(code: int) -> None:
    """Exit once the bot has shut down (store closed, logs flushed) without waiting for worker threads
    still finishing a lookup for an update that was cancelled at shutdown: that keeps SIGTERM bounded.
    The cancelled update is still unfinished in the journal and is handled after the restart."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_process(main())
