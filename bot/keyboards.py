"""Every inline button the bot sends, and its callback data: built and parsed here alone.

Callback data is `<action>:<subject id>:<value>`: `fb:<answer id>:1|0` votes an answer helpful or
not, `more:<answer id>:<offset>` shows its sources from `offset` on, `forget:<user id>:1|0` confirms
or cancels that user's /forget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, urlencode

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.formatting import SOURCES_SHOWN
from bot.texts import Lang, text
from knowledge.api import Source

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


HELP_PAYLOAD = "help"  # `/start help`: where the inline mode's rate-limit button leads


def deep_link(bot_username: str, payload: str) -> str:
    """The t.me link that opens the bot with `/start <payload>`."""
    return f"https://t.me/{bot_username}?start={quote(payload)}"


def share_url(bot_username: str, payload: str, question: str) -> str:
    """Telegram's share dialog for an answer's deep link, with the question as the message."""
    return "https://t.me/share/url?" + urlencode(
        {"url": deep_link(bot_username, payload), "text": question[:200]}
    )


def open_in_bot_buttons(bot_username: str | None, payload: str, lang: Lang) -> InlineKeyboardMarkup | None:
    """A button that opens entry `payload` in a chat with the bot (under an inline result's message);
    None without a payload or a bot username."""
    if not payload or not bot_username:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(text("open_in_bot", lang), url=deep_link(bot_username, payload))]]
    )


def answer_share_url(
    bot_username: str | None, answered: bool, sources: list[Source], question: str
) -> str | None:
    """The share dialog for an answer's best source (its deep link); None for a declined answer, a
    source with no link, or a bot without a username."""
    link = sources[0].link if answered and sources else ""
    return share_url(bot_username, link, question) if link and bot_username else None


def answer_buttons(
    answer_id: int, lang: Lang, *, more: bool, feedback: bool = True, share: str | None = None
) -> InlineKeyboardMarkup:
    """'More sources' (when there are more), 'Share' (to a share dialog, when given) and helpful / not
    helpful."""
    rows = []
    top = [_more_button(answer_id, SOURCES_SHOWN, lang)] if more else []
    if share:
        top.append(InlineKeyboardButton(text("share", lang), url=share))
    if top:
        rows.append(top)
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
