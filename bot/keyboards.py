"""Every inline button the bot sends, and its callback data: built and parsed here alone.

Callback data is `<action>:<answer id>:<value>`: `fb:<id>:1|0` votes an answer helpful or not,
`more:<id>:<offset>` shows its sources from `offset` on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.formatting import SOURCES_SHOWN
from bot.texts import Lang, text

Action = Literal["fb", "more"]
ACTIONS: tuple[Action, ...] = ("fb", "more")


@dataclass(frozen=True)
class ButtonPress:
    """A pressed button's callback data, parsed."""

    action: Action
    answer_id: int
    value: int  # fb: 1 helpful, 0 not; more: the first source to show


def parse_press(data: str | None) -> ButtonPress | None:
    """The press behind callback data, or None for data we never sent (old, forged, garbled)."""
    try:
        action, answer_id, value = (data or "").split(":")
        press = ButtonPress(action, int(answer_id), int(value))  # type: ignore[arg-type]
    except ValueError:
        return None
    return press if press.action in ACTIONS else None


def _more_button(answer_id: int, offset: int, lang: Lang) -> InlineKeyboardButton:
    return InlineKeyboardButton(text("more_sources", lang), callback_data=f"more:{answer_id}:{offset}")


def answer_buttons(answer_id: int, lang: Lang, *, more: bool, feedback: bool = True) -> InlineKeyboardMarkup:
    """'More sources' (when there are more) and helpful / not helpful."""
    rows = []
    if more:
        rows.append([_more_button(answer_id, SOURCES_SHOWN, lang)])
    if feedback:
        rows.append(
            [
                InlineKeyboardButton(text("helpful", lang), callback_data=f"fb:{answer_id}:1"),
                InlineKeyboardButton(text("not_helpful", lang), callback_data=f"fb:{answer_id}:0"),
            ]
        )
    return InlineKeyboardMarkup(rows)


def more_sources_buttons(answer_id: int, offset: int, lang: Lang) -> InlineKeyboardMarkup:
    """The button under a page of sources that shows the next page."""
    return InlineKeyboardMarkup([[_more_button(answer_id, offset, lang)]])
