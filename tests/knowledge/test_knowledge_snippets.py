"""Code snippets: fences balanced across passages, snippets cut at blank lines, chosen by the question."""

from __future__ import annotations

from knowledge.snippets import (
    CODE_CHARS,
    MIN_MATCH,
    MOST_SNIPPETS,
    fence_balanced,
    matching_snippets,
    opening_code,
    snippets,
)
from knowledge.text import lexical_tokens

BLOCK = "```python\nimport torch\n\noptimizer = Adam(lr=1e-5)\n\nfor epoch in range(3):\n    train()\n```"


def every_term_weighs(weight: float):
    return lambda term: weight


def test_a_code_block_split_into_passages_gets_the_fences_each_lacks():
    pieces = [
        "Intro prose.\n\n```python\nimport torch",
        "optimizer = Adam(lr=1e-5)",
        "train()\n```\n\nAfter.",
    ]
    first, middle, last = fence_balanced(pieces)
    assert first == "Intro prose.\n\n```python\nimport torch\n```"
    assert middle == "```\noptimizer = Adam(lr=1e-5)\n```"
    assert last == "```\ntrain()\n```\n\nAfter."
    assert fence_balanced(["Prose only.", BLOCK, "More prose."]) == ["Prose only.", BLOCK, "More prose."]


def test_snippets_are_the_runs_of_code_lines_between_blank_lines():
    text = f"Prose with optimizer words.\n\n{BLOCK}\n\nMore prose.\n\n```\nunclosed = True"
    assert snippets(text) == [
        "import torch",
        "optimizer = Adam(lr=1e-5)",
        "for epoch in range(3):\n    train()",
        "unclosed = True",
    ]
    assert snippets("No code here.") == []


def test_the_snippet_holding_the_question_s_words_is_chosen():
    terms = set(lexical_tokens("How many epochs does the training loop run?"))
    assert matching_snippets(BLOCK, terms, every_term_weighs(MIN_MATCH)) == [
        "for epoch in range(3):\n    train()"
    ]
    # Words too common to point anywhere (their weights summed stay under MIN_MATCH) choose nothing.
    assert matching_snippets(BLOCK, terms, every_term_weighs(MIN_MATCH / 3)) == []
    assert matching_snippets(BLOCK, {"pricing"}, every_term_weighs(10.0)) == []


def test_snippets_that_match_half_as_well_follow_in_document_order_within_the_room():
    blocks = "\n\n".join(f"step_{n} = load(batch_size)" for n in range(6))
    text = f"```\n{blocks}\n\nbest = batch_size * epochs\n```"
    chosen = matching_snippets(text, {"batch", "size", "epoch"}, every_term_weighs(2.0))
    assert len(chosen) == MOST_SNIPPETS and chosen[-1] == "best = batch_size * epochs"
    assert chosen[:-1] == ["step_0 = load(batch_size)", "step_1 = load(batch_size)"]
    assert matching_snippets(text, {"epoch"}, every_term_weighs(4.0)) == ["best = batch_size * epochs"]


def test_a_long_snippet_keeps_its_first_line_and_the_lines_holding_the_question_s_words():
    lines = (
        ["def train(model):"] + [f"    step_{n}(model)" for n in range(60)] + ["    save(model, 'model.pth')"]
    )
    text = "```\n" + "\n".join(lines) + "\n```"
    (chosen,) = matching_snippets(text, {"save", "pth"}, every_term_weighs(2.0))
    assert chosen == "def train(model):\n    save(model, 'model.pth')"
    # Lines holding more of the question's words come first, though the block's end.
    (chosen,) = matching_snippets(text, {"model", "save", "pth"}, every_term_weighs(2.0))
    kept = chosen.split("\n")
    assert kept[0] == "def train(model):" and kept[-1] == "    save(model, 'model.pth')"
    assert kept[1] == "    step_0(model)" and len(chosen) <= CODE_CHARS < len(text)


def test_the_opening_code_is_the_first_snippets_that_fit():
    assert opening_code(BLOCK, 40) == ["import torch", "optimizer = Adam(lr=1e-5)"]
    assert opening_code(BLOCK, 5) == ["impor"]
    assert opening_code("No code here.", 100) == []
