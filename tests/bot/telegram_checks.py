"""Telegram's rules for what a bot may send, checked strictly, and an in-process Bot API double that
records every request and answers it the way Telegram would (shared by the fuzzer and unit tests).

The HTML check is the e2e fake server's parser of Telegram's HTML subset (known tags, proper nesting,
escaped text, only the four named entities)."""

from __future__ import annotations

import itertools
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telegram.request import RequestData

from bot.console import LocalBotApi

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from fake_telegram import parse_telegram_html

BOT_USER = {"id": 777000, "is_bot": True, "first_name": "Startup Guide", "username": "ThisBot"}
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_ANSWER_LIMIT = 200
CALLBACK_DATA_BYTES = 64


@dataclass
class Request:
    """One Bot API call the bot made."""

    method: str
    params: dict[str, Any]


def problems(method: str, params: dict[str, Any]) -> list[str]:
    """Why Telegram would reject this call (empty when it would accept it)."""
    found: list[str] = []

    def check_text(name: str, limit: int, required: bool) -> None:
        value = params.get(name)
        if value is None:
            if required:
                found.append(f"{method}: no {name}")
            return
        visible = str(value)
        if params.get("parse_mode") == "HTML":
            problem, visible = parse_telegram_html(str(value))
            if problem:
                found.append(f"{method}: {name} HTML does not parse: {problem}: {str(value)[:200]!r}")
        if required and not visible.strip():
            found.append(f"{method}: empty {name}")
        if len(visible) > limit:
            found.append(f"{method}: {name} is {len(visible)} characters after entity parsing (> {limit})")

    if method in {"sendMessage", "editMessageText"}:
        check_text("text", TEXT_LIMIT, required=True)
    elif method in {"sendPhoto", "editMessageCaption"}:
        check_text("caption", CAPTION_LIMIT, required=False)
    elif method == "answerCallbackQuery":
        if len(str(params.get("text") or "")) > CALLBACK_ANSWER_LIMIT:
            found.append("answerCallbackQuery: text longer than 200 characters")
    elif method == "answerInlineQuery":
        found += _inline_problems(params)
    markup = params.get("reply_markup")
    if isinstance(markup, str):
        markup = json.loads(markup)
    for row in (markup or {}).get("inline_keyboard", []):
        for button in row:
            if not str(button.get("text", "")).strip():
                found.append(f"{method}: a button without text")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= CALLBACK_DATA_BYTES:
                found.append(f"{method}: callback_data {data!r} is not 1-64 bytes")
    return found


def _inline_problems(params: dict[str, Any]) -> list[str]:
    results = params.get("results") or []
    if isinstance(results, str):
        results = json.loads(results)
    found = []
    ids = [str(result.get("id", "")) for result in results]
    if len(results) > 50 or len(set(ids)) != len(ids) or not all(1 <= len(i.encode()) <= 64 for i in ids):
        found.append(f"answerInlineQuery: bad result ids {ids}")
    for result in results:
        if not str(result.get("title", "")).strip():
            found.append("answerInlineQuery: a result without a title")
        content = result.get("input_message_content") or {}
        found += [
            problem.replace("sendMessage", "answerInlineQuery")
            for problem in problems(
                "sendMessage", {"text": content.get("message_text"), "parse_mode": content.get("parse_mode")}
            )
        ]
    return found


class RecordingRequest(LocalBotApi):
    """Answers Bot API calls in this process like a healthy Telegram, recording each."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._message_ids = itertools.count(10_000_000)

    def answer(self, name: str, params: dict[str, Any], request_data: RequestData | None) -> Any:
        self.requests.append(Request(name, params))
        if name == "getMe":
            return BOT_USER
        if name in {"sendMessage", "sendPhoto", "editMessageText", "editMessageReplyMarkup"}:
            return self._message(params)
        return True

    def _message(self, params: dict[str, Any]) -> dict:
        chat_id = int(params.get("chat_id") or 1)
        chat_type = "private" if chat_id > 0 else "supergroup"
        message = {
            "message_id": int(params.get("message_id") or next(self._message_ids)),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": chat_type},
            "from": BOT_USER,
        }
        if "text" in params:
            message["text"] = str(params["text"])
        if "caption" in params:
            message["caption"] = str(params["caption"])
        return message
