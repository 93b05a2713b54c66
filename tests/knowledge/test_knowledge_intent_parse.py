"""Digit and count of picture requests, topic of writing requests, in both languages and mixed."""

from __future__ import annotations

import pytest

from knowledge.intent_parse import parse_image_request, text_prompt


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("show me three handwritten fives", (5, 3)),
        ("画一个数字3", (3, 1)),
        ("给我画5个8", (8, 5)),
        ("draw some digits", (None, 8)),
        ("draw a 7", (7, 1)),
        ("generate ten 9s", (9, 10)),
        ("let's see a six", (6, 1)),
        ("one more 1", (1, 1)),
        ("来两个手写的9", (9, 2)),
        ("画俩6", (6, 2)),
        ("画个八呗", (8, 1)),
        ("画十个随机数字", (None, 10)),
        ("随便画几个数字", (None, 8)),
        ("能帮我画一下数字零吗", (0, 8)),
        ("能draw三个9吗", (9, 3)),
        ("show me 两个手写的1", (1, 2)),
        ("draw 40 sevens", (7, 16)),
        ("give me 5 pictures of 8", (8, 5)),
        ("a couple of 3s", (3, 2)),
        ("draw 0 of them", (0, 8)),
    ],
)
def test_parse_image_request(text: str, expected: tuple[int | None, int]) -> None:
    assert parse_image_request(text) == expected


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("write a paragraph about fundraising", "fundraising"),
        ("写一段关于融资的话", "融资"),
        ("生成一段文字，主题是深度学习", "深度学习"),
        ("以“我们的团队”开头写一段话", "我们的团队"),
        ("continue这句话：大模型正在改变", "大模型正在改变"),
        ("写一段about AI startup的文字", "AI startup"),
        ("compose一首关于GPU的诗", "GPU"),
        ("pls write a haiku about GPUs", "GPUs"),
        ("write me something about large models, like 3 sentences", "large models"),
        ("generate some text starting with 'Our startup'", "Our startup"),
        ("draft a mission statement for an AI healthcare startup", "an AI healthcare startup"),
        ("draft a tweet announcing our seed round", "our seed round"),
        ("can you write a tweet announcing our seed round? we raised 2M", "our seed round"),
        ("write a paragraph where a grandma explains neural networks", "a grandma explains neural networks"),
        ("write a love letter from a GPU to a CPU", "love letter from a GPU to a CPU"),
        ("写一封感谢信给我们的第一个客户", "感谢信给我们的第一个客户"),
        ("写一段话鼓励一下失落的团队", "鼓励一下失落的团队"),
        ("帮我写个公司简介，我们是做医疗影像AI的", "公司简介"),
        ("hey bot, write some text", ""),
        ("write something random", ""),
        ("随便写点什么", ""),
    ],
)
def test_text_prompt(text: str, topic: str) -> None:
    assert text_prompt(text) == topic
