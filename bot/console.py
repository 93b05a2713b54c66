"""A terminal conversation through the same Application and handlers, with no token and no network.

A local BaseRequest answers the Bot API calls the handlers make: messages are printed as plain text,
photos are saved as PNG files under DATA_DIR/console and their path printed, buttons are listed and
pressed by typing `#N`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from telegram import Update
from telegram.request import BaseRequest, RequestData

from bot.app import build_application, running
from bot.context import Services
from bot.formatting import html_to_plain
from bot.settings import BotSettings

CONSOLE_TOKEN = "0:console"  # never sent anywhere: requests stay in this process
BOT_USER = {"id": 1, "is_bot": True, "first_name": "Startup Guide", "username": "StartupGuideBot"}
USER = {"id": 2, "is_bot": False, "first_name": "You"}
CHAT = {"id": 2, "type": "private", "first_name": "You"}
PROMPT = "you> "


class LocalBotApi(BaseRequest):
    """A Bot API answered in this process: PTB's request interface, with `answer` deciding each result."""

    @property
    def read_timeout(self) -> float | None:
        return None

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        name = url.rsplit("/", 1)[-1]
        params = dict(request_data.parameters) if request_data else {}
        result = self.answer(name, params, request_data)
        return 200, json.dumps({"ok": True, "result": result}).encode()

    def answer(self, name: str, params: dict[str, Any], request_data: RequestData | None) -> Any:
        """The result of Bot API method `name`; unknown methods simply succeed."""
        return True


class ConsoleRequest(LocalBotApi):
    """Answers Bot API methods locally and shows what the bot sends."""

    def __init__(self, output: TextIO, image_dir: Path) -> None:
        self._output = output
        self._image_dir = image_dir
        self._message_ids = itertools.count(1_000_000)
        self.buttons: list[tuple[str, str, dict]] = []

    def answer(self, name: str, params: dict[str, Any], request_data: RequestData | None) -> Any:
        """Show what the bot sends; messages get ids, photos are saved."""
        result: Any = True
        if name == "getMe":
            result = BOT_USER
        elif name == "sendMessage":
            result = self._message(params, text=params["text"])
            self._show(params["text"], params.get("parse_mode"), params.get("reply_markup"), result)
        elif name == "sendPhoto":
            result = self._message(params, photo=[_photo_size()], caption=params.get("caption", ""))
            path = self._save_photo(request_data)
            self._show(params.get("caption", ""), params.get("parse_mode"), None, result)
            self._print(f"     image saved to {path}")
        elif name == "answerCallbackQuery" and params.get("text"):
            self._print(f"     ({params['text']})")  # Telegram shows this as a brief notice
        return result

    def _message(self, params: dict, **content: object) -> dict:
        return {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": CHAT,
            "from": BOT_USER,
            **content,
        }

    def _save_photo(self, request_data: RequestData | None) -> Path:
        files = request_data.multipart_data if request_data else {}
        _, content, _ = files["photo"]
        self._image_dir.mkdir(parents=True, exist_ok=True)
        path = self._image_dir / f"image-{time.strftime('%Y%m%d-%H%M%S')}-{next(self._message_ids)}.png"
        path.write_bytes(content if isinstance(content, bytes) else content.read())
        return path.resolve()

    def _show(self, text: str, parse_mode: str | None, markup: object, message: dict) -> None:
        plain = html_to_plain(text) if parse_mode == "HTML" else text
        self._print("bot> " + plain.replace("\n", "\n     "))
        if isinstance(markup, str):
            markup = json.loads(markup)
        rows = markup.get("inline_keyboard", []) if isinstance(markup, dict) else []
        labels = []
        for button in itertools.chain.from_iterable(rows):
            if "url" in button:  # a link, not a press: shown, not numbered
                labels.append(f"[{button['text']}: {button['url']}]")
                continue
            self.buttons.append((button["text"], button.get("callback_data", ""), message))
            labels.append(f"[#{len(self.buttons)} {button['text']}]")
        if labels:
            self._print("     " + " ".join(labels))

    def _print(self, line: str) -> None:
        print(line, file=self._output, flush=True)


def _photo_size() -> dict:
    return {"file_id": "console", "file_unique_id": "console", "width": 1, "height": 1}


def _update_for(line: str, update_id: int, request: ConsoleRequest) -> dict | None:
    """The Bot API update a Telegram client would deliver for `line`."""
    base = {"update_id": update_id}
    if line.startswith("#") and line[1:].isdigit():
        index = int(line[1:]) - 1
        if not 0 <= index < len(request.buttons):
            return None
        _, data, message = request.buttons[index]
        query = {"id": str(update_id), "from": USER, "chat_instance": "console", "data": data}
        return {**base, "callback_query": {**query, "message": message}}
    message: dict[str, Any] = {
        "message_id": update_id,
        "date": int(time.time()),
        "chat": CHAT,
        "from": USER,
        "text": line,
    }
    if line.startswith("/"):
        command_length = len(line.split(maxsplit=1)[0])
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": command_length}]
    return {**base, "message": message}


async def chat(
    settings: BotSettings,
    services: Services,
    *,
    read_line: Callable[[str], str] = input,
    output: TextIO = sys.stdout,
) -> None:
    """Read lines until EOF or /quit and feed each to the bot as a private-chat update."""
    request = ConsoleRequest(output, settings.data_dir / "console")
    application = build_application(settings, services, token=CONSOLE_TOKEN, request=request)
    print("Loading the knowledge base and generators…", file=output, flush=True)
    async with running(application):
        print(
            "Type a question, /help, /image 7 4 or /text Our startup. #N presses a button; /quit ends.",
            file=output,
            flush=True,
        )
        for update_id in itertools.count(1):
            try:
                line = (await asyncio.to_thread(read_line, PROMPT)).strip()
            except EOFError:
                break
            if line in {"/quit", "/exit"}:
                break
            if not line:
                continue
            data = _update_for(line, update_id, request)
            if data is None:
                print("     no such button", file=output, flush=True)
                continue
            await application.process_update(Update.de_json(data, application.bot))
