"""HTML escaping, answer rendering and splitting under Telegram's limits."""

from __future__ import annotations

import sys
from pathlib import Path

from bot_doubles import FakeKnowledgeBase
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.formatting import (
    CAPTION_LIMIT,
    MESSAGE_LIMIT,
    escape,
    fit_caption,
    html_to_plain,
    render_answer,
    render_passages,
    split_html,
)
from knowledge.api import Answer, Source

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from fake_telegram import parse_telegram_html


def test_escape_round_trips_through_telegram_html() -> None:
    raw = 'a <b>bold</b> & "quoted" <script>x</script> &amp;'
    problem, visible = parse_telegram_html(escape(raw))
    assert problem is None and visible == raw


def test_answer_renders_sources_and_escapes_everything() -> None:
    answer = FakeKnowledgeBase().ask("pricing <i> & co")
    html = render_answer(answer, "en")
    problem, visible = parse_telegram_html(html)
    assert problem is None
    assert "You asked: pricing <i> & co" in visible
    assert "Sources\n1. Article 0 <&> — Section 0" in visible
    assert "4. " not in visible  # only the first three sources; the rest behind "More sources"


def test_declined_answer_lists_suggestions_in_chinese() -> None:
    answer = Answer("火星天气？", "zh", False, "知识库里没有答案。", 0.1, [], ["如何定价？"])
    visible = html_to_plain(render_answer(answer, "zh"))
    assert visible == "知识库里没有答案。\n\n你可以试着问：\n• 如何定价？"


def test_passages_are_numbered_quoted_and_truncated() -> None:
    sources = [Source("d", "T", "S", "en", "word " * 500, 0.5)]
    html = render_passages(sources, first_number=4)
    problem, visible = parse_telegram_html(html)
    assert problem is None
    assert visible.startswith("4. T — S\n")
    assert len(visible) < 800 and visible.endswith("…")


def test_short_text_is_one_part() -> None:
    assert split_html("hello") == ["hello"]


def test_split_prefers_paragraph_boundaries() -> None:
    paragraphs = [f"p{i} " + "x" * 1500 for i in range(6)]
    parts = split_html("\n\n".join(paragraphs))
    assert all(len(part) <= MESSAGE_LIMIT for part in parts)
    assert all(part.startswith("p") for part in parts)
    assert "\n\n".join(parts) == "\n\n".join(paragraphs)


def test_split_closes_and_reopens_tags_cut_inside() -> None:
    html = "<b>" + "bold words " * 900 + "</b>"
    parts = split_html(html)
    assert len(parts) >= 3
    for part in parts:
        problem, _ = parse_telegram_html(part)
        assert problem is None
        assert part.startswith("<b>") and part.endswith("</b>")


def test_split_never_cuts_an_entity() -> None:
    html = "&amp;" * 2000
    parts = split_html(html)
    assert all(parse_telegram_html(part)[0] is None for part in parts)
    assert "".join(html_to_plain(part) for part in parts) == "&" * 2000


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=1500),
        min_size=1,
        max_size=12,
    )
)
def test_split_parts_parse_fit_and_keep_every_word(paragraphs: list[str]) -> None:
    html = "\n\n".join(f"<b>{index}</b> {escape(text)}" for index, text in enumerate(paragraphs))
    parts = split_html(html)
    for part in parts:
        problem, _ = parse_telegram_html(part)
        assert problem is None
        assert len(part) <= MESSAGE_LIMIT
    joined = " ".join(html_to_plain(part) for part in parts)
    assert joined.split() == html_to_plain(html).split()


def test_caption_fits_the_limit_visibly() -> None:
    caption = fit_caption("x & y " * 400)
    problem, visible = parse_telegram_html(caption)
    assert problem is None and len(visible) <= CAPTION_LIMIT and visible.endswith("…")


def test_code_an_answer_quotes_is_shown_preformatted_and_escaped() -> None:
    text = "Train it like this.\n\nFrom the article's code:\n```\nif loss < best:\n    save(model)\n```"
    answer = Answer("How is it trained?", "en", True, text, 0.9, [], [])
    html = render_answer(answer, "en")
    problem, visible = parse_telegram_html(html)
    assert problem is None
    assert "<pre>if loss &lt; best:\n    save(model)</pre>" in html
    assert visible == "Train it like this.\n\nFrom the article's code:\nif loss < best:\n    save(model)"


def test_a_passage_of_code_is_quoted_on_one_line_without_its_fence_marks() -> None:
    sources = [Source("d", "T", "S", "en", "Train it:\n\n```python\nmodel.fit(x, y)\n```\n\nThen save.", 0.5)]
    _, visible = parse_telegram_html(render_passages(sources, first_number=2))
    assert visible == "2. T — S\nTrain it: model.fit(x, y) Then save."
