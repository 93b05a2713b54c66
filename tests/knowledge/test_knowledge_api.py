"""The bot's contract with the knowledge base: one language rule, sources that survive storage."""

from __future__ import annotations

import json

import pytest

from knowledge.api import Answer, Source, detect_lang


@pytest.mark.parametrize(
    ("text", "code", "expected"),
    [
        ("How do I price?", "zh-hans", "en"),  # the question's language wins
        ("如何定价？", "en", "zh"),
        ("GPU 成本怎么算", None, "zh"),
        ("How should a small team use GPT for 创业 planning?", None, "en"),  # a Chinese word in English
        ("大模型创业怎么找 product market fit", None, "zh"),
        ("", "zh-hant", "zh"),  # no words: the client's language
        ("🤔🤔", "zh", "zh"),
        ("123", None, "en"),
        (None, None, "en"),
    ],
)
def test_one_language_rule_for_questions_and_replies(
    text: str | None, code: str | None, expected: str
) -> None:
    assert detect_lang(text, code) == expected


def test_a_source_survives_a_round_trip_through_json() -> None:
    source = Source("001", "如何创业", "9. FAQ > 9.1", "zh", "大模型是……", 0.98765)
    stored = json.loads(json.dumps(source.to_json()))
    assert Source.from_json(stored) == Source("001", "如何创业", "9. FAQ > 9.1", "zh", "大模型是……", 0.9877)
    assert Source.from_json({"doc": "002"}) == Source("002", "", "", "", "", 0.0)
    answer = Answer("q", "zh", True, "a", 0.5, [source], ["s"])
    assert answer.to_json()["sources"] == [source.to_json()]
