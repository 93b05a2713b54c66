"""Learned weights: JSON round trip, the cross-validated answer threshold, candidate pools."""

from __future__ import annotations

import numpy as np

from knowledge.evaluate import EVAL_DIR, HELD_OUT_SETS, Question, labelled_questions, read_questions
from knowledge.features import BASE_FEATURES, POOL_SIZES, QUESTION_FEATURES, UNIT_FEATURES, within_pool
from knowledge.learned import SHIPPED, LinearModel, Policy, load_policy, save_policy
from knowledge.train import (
    ANSWERABLE_DECLINE_BUDGET,
    Example,
    _answer_threshold,
    budgeted,
)


def model(names: tuple[str, ...], bias: float = 0.0) -> LinearModel:
    size = len(names)
    return LinearModel(names, (0.5,) * size, (2.0,) * size, tuple(float(n) for n in range(size)), bias)


def test_weights_round_trip_through_json(tmp_path):
    policy = Policy(model(UNIT_FEATURES), model(QUESTION_FEATURES, 1.0), 0.3, None, {"dev.jsonl": 3}, 20)
    save_policy(policy, tmp_path / "learned.json")
    loaded = load_policy(tmp_path / "learned.json")
    assert loaded == policy
    rows = np.ones((2, len(QUESTION_FEATURES)), dtype=np.float32)
    assert np.allclose(loaded.answerable.probability(rows), policy.answerable.probability(rows))


def test_shipped_weights_load_and_fit_the_features():
    policy = load_policy(SHIPPED)
    assert policy.ranker.features == UNIT_FEATURES and 0.0 < policy.answer_at < 1.0
    assert policy.candidates_per_signal > 0


def test_the_answer_threshold_declines_at_most_the_budget_of_answerable_questions():
    probabilities = np.linspace(0.01, 0.99, 200)
    threshold = _answer_threshold(probabilities)
    assert np.mean(probabilities < threshold) <= ANSWERABLE_DECLINE_BUDGET
    assert np.mean(probabilities < threshold + 0.01) > ANSWERABLE_DECLINE_BUDGET  # the highest such


def _example(kind: str, split: str, expect: tuple[str, ...] = ("phrase",)) -> Example:
    empty = np.zeros(0, dtype=np.float32)
    question = Question(f"{kind}-{split}", "q", expect, kind, split)
    return Example(question, None, None, empty, empty.reshape(0, len(UNIT_FEATURES)), empty, {})


def test_the_decline_budget_is_counted_on_answerable_questions_written_blind():
    examples = [
        _example("en", ""),  # the team's dev set
        _example("en", "tune"),
        _example("offtopic", "tune", ()),
        _example("uncovered", "tune"),
        _example("zh", "tune"),
    ]
    assert budgeted(examples).tolist() == [False, True, False, False, True]
    # Without blind questions, every answerable one counts.
    assert budgeted(examples[:1] + examples[2:4]).tolist() == [True, False, False]


def test_a_smaller_pool_keeps_the_candidates_some_signal_ranks_high_enough():
    rows = np.zeros((3, len(UNIT_FEATURES)), dtype=np.float32)
    rank = {name: n for n, name in enumerate(BASE_FEATURES)}
    rows[0, rank["dense_rr"]] = 1.0  # first by MiniLM
    rows[1, rank["lexical_rr"]] = 1.0 / 16  # fifteenth by BM25
    assert within_pool(rows, 20).tolist() == [True, True, False]
    assert within_pool(rows, 10).tolist() == [True, False, False]


def test_training_never_reads_the_locked_part():
    questions, counts = labelled_questions()
    assert all(q.split != "locked" for q in questions)
    assert all(counts.get(name, 0) > 0 for name in ("blind.jsonl", "blind2.jsonl", "blind4.jsonl"))
    # The third blind set is locked whole.
    third = read_questions(EVAL_DIR / "blind3.jsonl")
    assert third and all(q.split == "locked" for q in third)
    assert not {q.id for q in third} & {q.id for q in questions}


def test_the_held_out_sets_are_neither_remembered_nor_trained_on():
    questions, counts = labelled_questions()
    held = [q for name in HELD_OUT_SETS for q in read_questions(EVAL_DIR / name)]
    assert len(held) > 400 and not set(HELD_OUT_SETS) & set(counts)
    assert not {q.id for q in held} & {q.id for q in questions}
    assert not {q.question for q in held} & {q.question for q in questions}


def test_the_trainer_fits_the_same_usable_policy_twice_on_a_small_sample(
    fake_encoder, subset_corpus, tmp_path
):
    """`knowledge train`'s fitting on a small labelled sample over two articles, with the fake encoder."""
    from knowledge.service import KnowledgeBase
    from knowledge.settings import PACKAGED_QUESTIONS
    from knowledge.train import train

    questions, _ = labelled_questions()
    sample = [q for q in questions if q.doc in {"001", "004"} or not q.answerable][::16]
    counts = {"sample": len(sample)}
    kb = KnowledgeBase(subset_corpus, tmp_path / "index", "fake", questions_dir=PACKAGED_QUESTIONS)
    retriever = kb.training_retriever()
    policy = train(retriever, sample, counts)
    assert policy.ranker.features == UNIT_FEATURES and policy.answerable.features == QUESTION_FEATURES
    assert policy.candidates_per_signal in POOL_SIZES and 0.0 < policy.answer_at < 1.0
    assert policy.trained_on == counts
    assert train(retriever, sample, counts) == policy
