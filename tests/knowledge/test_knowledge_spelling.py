"""Chinese homophone repair against a corpus's own character runs."""

from __future__ import annotations

import pytest

from knowledge.spelling import ChineseSpelling, readings

CORPUS = [
    "交叉熵损失函数衡量两个分布的差距。",
    "分类任务常用交叉熵作为损失，交叉熵越小越好。",
    "训练前要准备足够的计算资源，计算资源不足时可以租用云服务器，省下计算资源的开销。",
    "梯度下降沿着梯度的反方向更新参数，随机梯度下降每次用一个样本，小批量梯度下降用一批。",
    "本文推荐几本深度学习的教材。",
]


@pytest.fixture(scope="module")
def spelling() -> ChineseSpelling:
    return ChineseSpelling(CORPUS)


def test_readings_ignore_tones_and_keep_every_reading_of_a_polyphone():
    assert readings("熵") == readings("商") == {"shang"}
    assert {"zhong", "chong"} <= readings("重")
    assert readings("a") == frozenset()


@pytest.mark.parametrize(
    ("question", "repaired"),
    [
        ("交叉商损失是干嘛用的", "交叉熵损失是干嘛用的"),
        ("创业对计算资原的要求高吗", "创业对计算资源的要求高吗"),
        ("随机题度下降是啥意思", "随机梯度下降是啥意思"),
        ("GAN 的 loss 和交叉商有什么关系？", "GAN 的 loss 和交叉熵有什么关系？"),
    ],
)
def test_a_homophone_that_makes_a_run_the_corpus_uses_is_repaired(spelling, question, repaired):
    assert spelling.repair(question) == repaired


@pytest.mark.parametrize(
    "question",
    [
        "有哪些学习深度学习的书推荐",  # 书 is no typo, though the corpus never puts it there
        "今天天气怎么样",
        "What is cross entropy?",
        "",
        "交叉熵损失函数是什么",
    ],
)
def test_real_words_and_text_without_typos_stay_as_they_are(spelling, question):
    assert spelling.repair(question) == question


def test_a_run_the_corpus_uses_rarely_is_not_evidence_enough():
    rare = ChineseSpelling(["计算资源"])
    assert rare.repair("计算资原") == "计算资原"
