"""Language choice and the string tables."""

from __future__ import annotations

import string

import pytest

from bot.texts import ADMIN_COMMANDS, COMMANDS, TEXTS, detect_lang


@pytest.mark.parametrize(
    ("text", "code", "expected"),
    [
        ("How do I price?", "zh-hans", "en"),  # the question's language wins
        ("如何定价？", "en", "zh"),
        ("GPU 成本怎么算", None, "zh"),
        ("", "zh-hant", "zh"),  # no words: the client's language
        ("123", None, "en"),
        (None, None, "en"),
    ],
)
def test_detect_lang(text: str | None, code: str | None, expected: str) -> None:
    assert detect_lang(text, code) == expected


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
