"""Scoring a question set: where the answer is found (answer text, first source, later ones) and declines."""

from __future__ import annotations

from knowledge.api import Answer, Source
from knowledge.evaluate import Question, evaluate, rank_of_hit, report


def source(text: str) -> Source:
    return Source("000", "Title", "1. Section", "en", text, 1.0)


def answer(text: str, *sources: str, answered: bool = True) -> Answer:
    return Answer("q", "en", answered, text, 0.9, [source(s) for s in sources], [])


def test_the_answer_text_counts_as_the_first_rank_and_a_decline_finds_nothing():
    expect = ("GPUs",)
    assert rank_of_hit(answer("Rent gpus.", "Other.", "Other."), expect, 5) == 1
    assert rank_of_hit(answer("Hire.", "Hire engineers.", "Rent GPUs."), expect, 5) == 2
    assert rank_of_hit(answer("Hire.", "Hire engineers.", "Rent GPUs."), expect, 1) is None
    assert rank_of_hit(answer("Sorry.", "Rent GPUs.", answered=False), expect, 5) is None


def test_scores_tell_the_answer_text_from_the_first_source():
    replies = {
        "in the text": answer("Rent GPUs.", "Hire engineers."),
        "in the first source": answer("Hire.", "Rent GPUs."),
        "in the second source": answer("Hire.", "Hire engineers.", "Rent GPUs."),
        "declined": answer("Sorry.", "Rent GPUs.", answered=False),
        "weather": answer("Sorry.", answered=False),
    }
    questions = [Question(name, name, ("GPUs",), "en") for name in list(replies)[:4]]
    questions.append(Question("weather", "weather", (), "offtopic"))
    scores = evaluate(lambda question, k: replies[question], questions)
    assert scores.table()["all"]["hit@1"] == 0.5 and scores.table()["all"]["hit@5"] == 0.75
    assert scores.text_holds == [True, False, False, False]
    assert scores.first_source_holds == [False, True, False, False]
    assert scores.answerable_declined_share == 0.25 and scores.off_topic_declined_share == 1.0
    assert "answer text holds the answer: 0.250; first source holds it: 0.250" in report(scores)
