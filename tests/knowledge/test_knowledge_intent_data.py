"""The generated intent data: deterministic, every class in every language, no locked rows read."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from knowledge.intent import INTENTS
from knowledge.intent_data import EVAL_DIR, INTENT_SET, generate_examples, language_of, tune_examples


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

    before = generate_examples(seed=0, per_class=50), tune_examples()
    for path in [INTENT_SET, *(EVAL_DIR / name for name in intent_data.QUESTION_SETS)]:
        rows = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        kept = [line for line in rows if json.loads(line).get("split") != "locked"]
        (tmp_path / path.name).write_text("\n".join(kept) + "\n", encoding="utf-8")
    monkeypatch.setattr(intent_data, "EVAL_DIR", tmp_path)
    after = generate_examples(seed=0, per_class=50), tune_examples(tmp_path / INTENT_SET.name)
    assert after == before
