"""`python -m bot` entry point: subcommand choice, missing token, bad settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot import __main__ as entry

ROOT = Path(__file__).resolve().parents[2]


def run_module(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {
        key: value for key, value in os.environ.items() if key not in {"TELEGRAM_BOT_TOKEN", "WEBHOOK_URL"}
    }
    clean.update(env, PYTHONPATH=str(ROOT), DATA_DIR=str(tmp_path / "var"))
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,  # no .env here
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_run_without_token_explains_botfather_and_exits_2(tmp_path: Path) -> None:
    result = run_module(["run"], tmp_path)
    assert result.returncode == 2
    assert "@BotFather" in result.stderr and "/newbot" in result.stderr
    assert "python -m bot chat" in result.stderr


def test_bad_setting_stops_with_one_line_naming_it(tmp_path: Path) -> None:
    result = run_module(["run"], tmp_path, TELEGRAM_BOT_TOKEN="1:x", WEBHOOK_PORT="99999")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Bad setting WEBHOOK_PORT")


def test_unknown_subcommand_is_refused(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        entry.main(["serve"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize(("token", "expected"), [("123:abc", "run"), ("", "chat")])
def test_no_subcommand_runs_with_token_else_chats(monkeypatch, token: str, expected: str) -> None:
    chosen: list[str] = []
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", token)
    monkeypatch.setattr(entry, "start", lambda command, settings: chosen.append(command) or 0)
    assert entry.main([]) == 0
    assert chosen == [expected]
