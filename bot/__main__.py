"""python -m bot [run|chat]: the Telegram bot, or the same conversation in a terminal."""

from __future__ import annotations

import argparse
import asyncio
import sys

from bot.logs import setup_logging
from bot.settings import BotSettings

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


def start(command: str, settings: BotSettings) -> int:
    """Read the services' settings, set up logging with every secret redacted, and serve."""
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
    services = Services.from_settings(settings, knowledge_settings, generation_settings)

    if command == "chat":
        from bot.console import chat

        try:
            asyncio.run(chat(settings, services))
        except KeyboardInterrupt:
            pass
        return 0

    from bot.app import build_application, run

    run(build_application(settings, services), settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
