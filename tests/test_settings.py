"""Settings of the three packages: defaults, parsing, and one clear line for a bad value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import TELEGRAM_API_BASE_URL, BotSettings
from generation.settings import GenerationSettings
from knowledge.settings import PACKAGED_EMBEDDING_MODEL, KnowledgeSettings

ENV_NAMES = (
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_API_BASE_URL",
    "ADMIN_IDS",
    "DATA_DIR",
    "GENERATION_URL",
    "GENERATION_TOKEN",
    "EMBEDDING_MODEL",
    "WEBHOOK_URL",
    "WEBHOOK_SECRET",
    "WEBHOOK_LISTEN",
    "WEBHOOK_PORT",
    "LOG_LEVEL",
    "IMAGE_MODEL",
    "TEXT_MODEL",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Start each test from no settings at all, and away from any .env in the checkout."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_work_offline_with_no_environment() -> None:
    bot = BotSettings.load()
    assert bot.token is None
    assert bot.admin_ids == frozenset()
    assert bot.telegram_api_base_url == TELEGRAM_API_BASE_URL
    assert bot.data_dir == Path("var")
    assert bot.webhook_url == ""
    assert bot.image_model == "gan"
    assert (bot.text_model, bot.text_kind) == ("word", "word")
    knowledge = KnowledgeSettings.load()
    assert knowledge.embedding_model == PACKAGED_EMBEDDING_MODEL
    assert knowledge.corpus_dir.is_dir()
    generation = GenerationSettings.load()
    assert generation.generation_url == ""
    assert generation.token is None


def test_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    monkeypatch.setenv("ADMIN_IDS", " 42, 7 ,")
    monkeypatch.setenv("DATA_DIR", "/srv/data")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("IMAGE_MODEL", " VAE")
    monkeypatch.setenv("TEXT_MODEL", "Char ")
    monkeypatch.setenv("GENERATION_URL", "http://gpu-host:8000/")
    monkeypatch.setenv("GENERATION_TOKEN", "s3cret")
    monkeypatch.setenv("EMBEDDING_MODEL", "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2")
    bot = BotSettings.load()
    assert bot.token == "123:abc"
    assert bot.admin_ids == frozenset({42, 7})
    assert bot.data_dir == Path("/srv/data")
    assert bot.log_level == "DEBUG"
    assert bot.image_model == "vae"
    assert bot.text_kind == "lstm"
    generation = GenerationSettings.load()
    assert generation.generation_url == "http://gpu-host:8000"
    assert generation.token == "s3cret"
    assert KnowledgeSettings.load().embedding_model.endswith("L12-v2")


def test_a_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ADMIN_IDS=5\nWEBHOOK_PORT=8080\n", encoding="utf-8")
    settings = BotSettings.load()
    assert settings.admin_ids == frozenset({5})
    assert settings.webhook_port == 8080


def test_secrets_do_not_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:SECRET-TOKEN")
    monkeypatch.setenv("GENERATION_TOKEN", "shared-SECRET")
    assert "SECRET" not in repr(BotSettings.load())
    assert "SECRET" not in repr(GenerationSettings.load())


@pytest.mark.parametrize(
    ("name", "value", "settings_class"),
    [
        ("ADMIN_IDS", "abc", BotSettings),
        ("ADMIN_IDS", "1,two", BotSettings),
        ("WEBHOOK_PORT", "70000", BotSettings),
        ("LOG_LEVEL", "LOUD", BotSettings),
        ("TELEGRAM_API_BASE_URL", "ftp://example", BotSettings),
        ("IMAGE_MODEL", "vea", BotSettings),
        ("TEXT_MODEL", "words", BotSettings),
        ("GENERATION_URL", "gpu-host:8000", GenerationSettings),
    ],
)
def test_a_bad_value_exits_with_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, settings_class: type
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exit_info:
        settings_class.load()
    message = str(exit_info.value.code)
    assert name in message
    assert "\n" not in message


def test_bad_value_stops_the_bot_without_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "chat"],
        env={"ADMIN_IDS": "abc", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "ADMIN_IDS" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
