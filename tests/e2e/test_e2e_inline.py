"""Inline mode through the fake Bot API server: "@ThisBot question" in any chat gets the answer and its
sources as articles in the asker's language, an empty query FAQ entries, a declined one a single "not in
my knowledge base" result; results are cached and rate-limited like questions."""

from __future__ import annotations

from pathlib import Path

from bot_doubles import FakeKnowledgeBase
from bot_e2e import OTHER_USER, inline_query, run_bot
from fake_telegram import FakeTelegram, parse_telegram_html


def answered(fake: FakeTelegram, query_id: str):
    [call] = [c for c in fake.calls_of("answerInlineQuery") if c.params["inline_query_id"] == query_id]
    assert call.ok, call.response
    return call


async def test_inline_queries_get_articles_in_the_askers_language(fake: FakeTelegram, data_dir: Path) -> None:
    async with run_bot(fake, data_dir) as application:
        ids = [
            inline_query(fake, "pricing?"),
            inline_query(fake, "定价怎么做？", user=OTHER_USER),
            inline_query(fake, "something you do not know"),
            inline_query(fake, ""),
            inline_query(fake, "pricing " + "x" * 248),  # Telegram's longest query: 256 characters
            inline_query(fake, "a long answer please"),  # cut to one message
        ]
        await fake.wait_for(lambda call: call.method == "answerInlineQuery", count=len(ids))
        usage = application.bot_data.services.store.usage_counts()
    english, chinese, declined, empty, longest, long_answer = (answered(fake, query_id) for query_id in ids)
    results = english.params["results"]
    assert [r["title"] for r in results] == ["Section 0", "Section 1", "Section 2"]
    message = parse_telegram_html(results[0]["input_message_content"]["message_text"])[1]
    assert message.startswith("Price on value") and "Article 0" in message  # the answer and its citation
    assert results[0]["reply_markup"]["inline_keyboard"][0][0]["url"] == "https://t.me/ThisBot?start=s-doc0"
    assert int(english.params["cache_time"]) > 0
    zh = parse_telegram_html(chinese.params["results"][0]["input_message_content"]["message_text"])[1]
    assert zh.startswith("定价要基于价值") and "来源" in zh
    [decline] = declined.params["results"]
    assert decline["title"] == "Not in my knowledge base"
    assert [r["title"] for r in empty.params["results"]] == ["Section 0", "Section 1", "Section 2"]
    assert longest.params["results"][0]["title"] == "Section 0"
    inline_rows = {outcome: n for (_, kind, outcome), n in usage.items() if kind == "inline"}
    assert inline_rows == {"answered": 4, "declined": 1}  # counted for /stats (an empty query is not)
    first = long_answer.params["results"][0]["input_message_content"]["message_text"]
    assert first.startswith("Paragraph 0") and len(parse_telegram_html(first)[1]) <= 4096


async def test_inline_queries_are_rate_limited_like_questions(fake: FakeTelegram, data_dir: Path) -> None:
    knowledge = FakeKnowledgeBase()
    async with run_bot(fake, data_dir, knowledge=knowledge, question_rate=2):
        ids = [inline_query(fake, f"pricing {n}?") for n in range(3)]
        await fake.wait_for(lambda call: call.method == "answerInlineQuery", count=3)
    calls = [answered(fake, query_id) for query_id in ids]
    limited = [call for call in calls if not call.params["results"]]
    assert len(limited) == 1 and len(knowledge.questions) == 2  # no model work once limited
    assert limited[0].params["button"]["text"].startswith("Too many questions")
    assert str(limited[0].params["is_personal"]).lower() == "true"
