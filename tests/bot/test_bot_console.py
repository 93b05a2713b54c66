"""The terminal chat drives the same handlers: questions, buttons, /image saves a PNG, /text."""

from __future__ import annotations

import io
import re
from pathlib import Path

from bot_doubles import FakeGenerationClient, FakeKnowledgeBase

from bot.console import chat
from bot.context import Services
from bot.settings import BotSettings
from bot.store import Store


async def converse(lines: list[str], data_dir: Path) -> tuple[str, Services]:
    settings = BotSettings(_env_file=None, data_dir=data_dir)
    services = Services(FakeKnowledgeBase(), FakeGenerationClient(), Store(data_dir / "bot.sqlite3"))
    pending = iter(lines)

    def read_line(prompt: str) -> str:
        try:
            return next(pending)
        except StopIteration:
            raise EOFError from None

    output = io.StringIO()
    await chat(settings, services, read_line=read_line, output=output)
    return output.getvalue(), services


async def test_console_answers_questions_and_presses_buttons(data_dir: Path) -> None:
    text, services = await converse(["How should I approach pricing & <margins>?", "#1", "#2"], data_dir)
    assert "bot> Price on value, not cost. (You asked: How should I approach pricing & <margins>?)" in text
    assert "[#1 More sources] [↗️ Share: https://t.me/share/url?url=" in text
    assert "[#2 👍 Helpful] [#3 👎 Not helpful]" in text
    assert "4. Article 3 <&> — Section 3" in text  # "More sources" shown as plain text
    assert "     (Thanks for the feedback!)" in text  # the notice a client shows after the tap
    services.store.open()
    assert services.store.feedback_counts() == (1, 0)
    services.store.close()
    assert services.knowledge.initialized == 1 and services.knowledge.shut_down == 1


async def test_console_image_saves_png_and_prints_path(data_dir: Path) -> None:
    text, _ = await converse(["/image 3 2", "/text Our startup", "/quit", "never read"], data_dir)
    [path] = re.findall(r"image saved to (\S+\.png)", text)
    assert Path(path).read_bytes().startswith(b"\x89PNG")
    assert Path(path).is_relative_to(data_dir.resolve())
    assert "2 × digit 3 · GAN model gan-test-1 · seed 42" in text
    assert "bot> Our startup and then <more> & more" in text
    assert "never read" not in text


async def test_console_rejects_unknown_button(data_dir: Path) -> None:
    text, _ = await converse(["#7"], data_dir)
    assert "no such button" in text
