"""The generated intent data: deterministic, every class in every language, no locked rows read."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from knowledge.intent import INTENTS
from knowledge.intent_data import (
    CALIBRATION_SETS,
    EVAL_DIR,
    FRESH_INTENT_SET,
    INTENT_SET,
    calibration_questions,
    corpus_terms,
    extra_examples,
    generate_examples,
    language_of,
    tune_examples,
)


@pytest.fixture(scope="module")
def examples():
    return generate_examples(seed=3, per_class=300)


def test_same_seed_same_examples(examples) -> None:
    assert generate_examples(seed=3, per_class=300) == examples
    assert generate_examples(seed=4, per_class=300) != examples


def test_every_class_in_every_language(examples) -> None:
    seen = Counter((example.intent, language_of(example.text)) for example in examples)
    for intent in INTENTS:
        for lang in ("en", "zh", "mixed"):
            assert seen[intent, lang] >= 5, (intent, lang)


def test_locked_rows_are_never_read(tmp_path, monkeypatch) -> None:
    """With every locked row removed from the evaluation files, the data comes out the same."""
    import knowledge.intent_data as intent_data

    before = generate_examples(seed=0, per_class=50), tune_examples(), calibration_questions()
    for path in [INTENT_SET, *(EVAL_DIR / name for name in intent_data.QUESTION_SETS)]:
        rows = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        kept = [line for line in rows if json.loads(line).get("split") != "locked"]
        (tmp_path / path.name).write_text("\n".join(kept) + "\n", encoding="utf-8")
    monkeypatch.setattr(intent_data, "EVAL_DIR", tmp_path)
    after = (
        generate_examples(seed=0, per_class=50),
        tune_examples(tmp_path / INTENT_SET.name),
        calibration_questions(),
    )
    assert after == before


def test_the_first_fit_can_leave_the_calibration_questions_out() -> None:
    """Training data generated with the calibration questions held out holds none of them (nor any
    locked row), and the rest of the harvest is unchanged."""
    questions = calibration_questions()
    texts = {example.text for example in questions}
    assert questions and {example.intent for example in questions} == {"question"}
    rows = [
        json.loads(line)
        for name in CALIBRATION_SETS
        for line in (EVAL_DIR / name).read_text(encoding="utf-8").splitlines()
    ]
    assert not texts & {row["question"] for row in rows if row.get("split") == "locked"}
    full = generate_examples(seed=0, per_class=50)
    first_fit = generate_examples(seed=0, per_class=50, held_out=texts)
    assert texts <= {example.text for example in full if example.source == "evalset"}
    assert not texts & {example.text for example in first_fit if example.source == "evalset"}
    harvested = [e for e in full if e.source != "template" and e.text not in texts]
    assert sorted(harvested, key=repr) == sorted((e for e in first_fit if e.source != "template"), key=repr)


def test_a_harvest_sample_spreads_over_the_faq_and_the_knowledge_sets() -> None:
    """A quick recipe trains on a few harvested questions from every source, whatever the sets hold."""
    full = [e for e in generate_examples(seed=0, per_class=50) if e.source != "template"]
    sampled = [
        e for e in generate_examples(seed=0, per_class=50, harvest_sample=40) if e.source != "template"
    ]
    assert len(sampled) == 40 and set(map(repr, sampled)) <= set(map(repr, full))
    assert {e.source for e in sampled} == {"corpus", "evalset"}
    assert {e.intent for e in sampled} == {"question", "offtopic"}


def _normalised(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def test_the_second_writers_messages_share_nothing_with_the_scored_sets() -> None:
    """No training message is also a locked row of the intent set or of the knowledge blind set (the
    routed-away figure reads the latter), even with case and punctuation aside."""
    scored = set()
    for path, field in (
        (INTENT_SET, "text"),
        (FRESH_INTENT_SET, "text"),
        (EVAL_DIR / "blind.jsonl", "question"),
        (EVAL_DIR / "blind3.jsonl", "question"),
    ):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line) if line.strip() else {}
            if row.get("split") == "locked":
                scored.add(_normalised(row[field]))
    extra = extra_examples()
    assert len(extra) > 500 and {example.intent for example in extra} == set(INTENTS)
    assert not {_normalised(example.text) for example in extra} & scored


def test_corpus_terms_are_whole_terms_of_both_languages() -> None:
    text = (
        "我们用反向传播训练。反向传播很重要。" * 6 + "The GPU and PyTorch matter; GPU prices vary. PyTorch."
    )
    terms = corpus_terms(text)
    assert ("GPU", "en") in terms and ("PyTorch", "en") in terms and ("反向传播", "zh") in terms
    assert ("向传播", "zh") not in terms and ("反向", "zh") not in terms  # pieces of the longer phrase
    assert not any("的" in term or "我们" in term for term, _ in terms)


def test_the_fresh_test_set_is_locked_throughout() -> None:
    """Every row of the second test set is locked, so no tuning data comes from it."""
    rows = [json.loads(line) for line in FRESH_INTENT_SET.read_text(encoding="utf-8").splitlines() if line]
    assert len(rows) >= 300 and {row["split"] for row in rows} == {"locked"}
    assert {row["label"] for row in rows} == set(INTENTS)
    assert tune_examples(FRESH_INTENT_SET) == []
