"""Every inline button the bot sends, and its callback data: built and parsed here alone.

Callback data is `<action>:<subject id>:<value>`: `fb:<answer id>:1|0` votes an answer helpful or
not, `more:<answer id>:<offset>` shows its sources from `offset` on, `forget:<user id>:1|0` confirms
or cancels that user's /forget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.formatting import SOURCES_SHOWN
from bot.texts import Lang, text

Action = Literal["fb", "more", "forget"]
ACTIONS: tuple[Action, ...] = ("fb", "more", "forget")
FORGET_PATTERN = r"^forget:"  # the presses the privacy handler takes (a CallbackQueryHandler pattern)


@dataclass(frozen=True)
class ButtonPress:
    """A pressed button's callback data, parsed."""

    action: Action
    subject: int  # the answer (fb, more), or the user whose /forget this confirms (forget)
    value: int  # fb: 1 helpful, 0 not; more: the first source to show; forget: 1 delete, 0 cancel


def parse_press(data: str | None) -> ButtonPress | None:
    """The press behind callback data, or None for data we never sent (old, forged, garbled)."""
    try:
        action, subject, value = (data or "").split(":")
        press = ButtonPress(action, int(subject), int(value))  # type: ignore[arg-type]
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


def forget_buttons(user_id: int, lang: Lang) -> InlineKeyboardMarkup:
    """Delete everything / cancel, under /forget's question; only `user_id` may press them."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(text("forget_yes", lang), callback_data=f"forget:{user_id}:1"),
                InlineKeyboardButton(text("forget_no", lang), callback_data=f"forget:{user_id}:0"),
            ]
        ]
    )
