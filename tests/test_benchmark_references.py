"""The benchmark's reference n-gram is a proper distribution, so its bpc is a fair yardstick."""

from __future__ import annotations

import math

import pytest

from benchmarks.char_references import KneserNeyChars, gzip_bpc

TRAIN = ["the cat sat on the mat. 猫坐在垫子上。", "the dog sat on the log."]


@pytest.mark.parametrize("history", ["", "t", "the c", "sat on the ", "zzzz", "猫坐"])
def test_probabilities_over_the_vocabulary_sum_to_one(history: str) -> None:
    model = KneserNeyChars(TRAIN, order=4)
    known = [char for char in model.vocab.chars if model.vocab.encode(char) != [model.vocab.unk_id]]
    unknown_mass = model.probability(history, "\u2603")  # a snowman: not in the training text
    assert math.fsum(model.probability(history, char) for char in known) + unknown_mass == pytest.approx(1.0)


def test_seen_continuations_score_better_than_unseen_and_unknown_characters_pay_for_their_name() -> None:
    model = KneserNeyChars(TRAIN, order=4)
    assert model.probability("the ", "c") > model.probability("the ", "x")
    scores = model.scores(["the cat "], ["sat"])
    assert scores["bpc"] < model.scores(["the cat "], ["s☃t"])["bpc"] - 10  # naming costs > 10 bits
    assert gzip_bpc(["abc" * 50], ["abc" * 5]) < gzip_bpc(["abc" * 50], ["q7#Z!k%2pX"])
