"""Language choice and the string tables."""

from __future__ import annotations

import string

from bot.texts import ADMIN_COMMANDS, COMMANDS, TEXTS


def test_every_string_has_both_languages_with_the_same_placeholders() -> None:
    for key, versions in TEXTS.items():
        assert set(versions) == {"en", "zh"}, key
        fields = [
            {name for _, name, _, _ in string.Formatter().parse(value) if name} for value in versions.values()
        ]
        assert fields[0] == fields[1], key


def test_command_descriptions_fit_telegram_limits() -> None:
    for table in (COMMANDS, ADMIN_COMMANDS):
        for name, descriptions in table.items():
            assert name.islower() and len(name) <= 32
            assert all(1 <= len(text) <= 256 for text in descriptions.values())
