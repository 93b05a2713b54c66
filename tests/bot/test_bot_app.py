"""The Application's wiring: handler order, polling vs webhook, flood control settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from bot_doubles import FakeGenerationClient, FakeKnowledgeBase
from telegram.ext import AIORateLimiter, CallbackQueryHandler, CommandHandler, MessageHandler, TypeHandler

from bot.app import ALLOWED_UPDATES, STOP_SIGNALS, build_application, handlers, run
from bot.context import CustomContext, Services
from bot.settings import BotSettings
from bot.store import Store


def make_app(tmp_path: Path, **overrides):
    settings = BotSettings(_env_file=None, telegram_bot_token="1:abcdefgh", data_dir=tmp_path, **overrides)
    services = Services(FakeKnowledgeBase(), FakeGenerationClient(), Store(tmp_path / "bot.sqlite3"))
    return settings, build_application(settings, services)


def test_one_ordered_handler_list() -> None:
    ordered = handlers()
    kinds = [type(handler) for _, handler in ordered]
    assert kinds[0] is TypeHandler and ordered[0][0] == -1  # bookkeeping first, in its own group
    assert kinds[-2] is MessageHandler and kinds[-1] is MessageHandler  # after every known command
    commands = [next(iter(handler.commands)) for _, handler in ordered if isinstance(handler, CommandHandler)]
    assert commands[:6] == ["start", "help", "about", "ask", "image", "text"]
    assert {"stats", "models", "reindex", "retrain", "rollback"} <= set(commands)
    assert any(isinstance(handler, CallbackQueryHandler) for _, handler in ordered)


def test_application_uses_html_defaults_limiter_and_custom_context(tmp_path: Path) -> None:
    settings, application = make_app(tmp_path, telegram_flood_rate=30)
    assert application.bot.defaults.parse_mode == "HTML"
    assert isinstance(application.bot.rate_limiter, AIORateLimiter)
    assert application.context_types.context is CustomContext
    assert application.bot_data.settings is settings
    assert application.bot.base_url.startswith("https://api.telegram.org/bot")


@pytest.mark.parametrize("secret", ["given-secret", None])
def test_webhook_mode_when_url_set(tmp_path: Path, monkeypatch, secret: str | None) -> None:
    settings, application = make_app(
        tmp_path, webhook_url="https://bot.example.com/tg/hook", webhook_secret=secret, webhook_port=8443
    )
    calls: dict = {}
    monkeypatch.setattr(application, "run_webhook", lambda **kwargs: calls.update(kwargs))
    monkeypatch.setattr(application, "run_polling", lambda **kwargs: calls.update(polling=True))
    run(application, settings)
    assert "polling" not in calls
    assert calls["url_path"] == "tg/hook" and calls["webhook_url"] == "https://bot.example.com/tg/hook"
    assert calls["port"] == 8443 and calls["allowed_updates"] == ALLOWED_UPDATES
    if secret:
        assert calls["secret_token"] == secret
    else:  # never an unchecked webhook: a random secret for this run
        assert len(calls["secret_token"]) >= 32


def test_polling_without_webhook_url(tmp_path: Path, monkeypatch) -> None:
    settings, application = make_app(tmp_path)
    calls: dict = {}
    monkeypatch.setattr(application, "run_polling", lambda **kwargs: calls.update(kwargs))
    run(application, settings)
    assert calls == {"allowed_updates": ALLOWED_UPDATES, "stop_signals": STOP_SIGNALS}
