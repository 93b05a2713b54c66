"""Inline buttons: every callback data the bot sends parses back to what it was built for."""

from __future__ import annotations

import pytest

from bot.formatting import SOURCES_SHOWN
from bot.keyboards import ButtonPress, answer_buttons, forget_buttons, more_sources_buttons, parse_press


def presses(markup) -> list[ButtonPress | None]:
    return [parse_press(button.callback_data) for row in markup.inline_keyboard for button in row]


def test_answer_buttons_parse_back_to_their_actions() -> None:
    answer_id = 2**53  # store ids can be large; callback data stays within Telegram's 64 bytes
    markup = answer_buttons(answer_id, "zh", more=True)
    assert presses(markup) == [
        ButtonPress("more", answer_id, SOURCES_SHOWN),
        ButtonPress("fb", answer_id, 1),
        ButtonPress("fb", answer_id, 0),
    ]
    assert all(len(b.callback_data.encode()) <= 64 for row in markup.inline_keyboard for b in row)
    assert presses(answer_buttons(7, "en", more=False, feedback=False)) == []
    assert presses(more_sources_buttons(7, 6, "en")) == [ButtonPress("more", 7, 6)]
    user_id = 2**40  # Telegram user ids exceed 32 bits
    assert presses(forget_buttons(user_id, "zh")) == [
        ButtonPress("forget", user_id, 1),
        ButtonPress("forget", user_id, 0),
    ]


@pytest.mark.parametrize("data", [None, "", "fb", "fb:1", "fb:x:1", "vote:1:1", "more:1:2:3", "fb:1:1:"])
def test_data_we_never_send_is_refused(data: str | None) -> None:
    assert parse_press(data) is None
