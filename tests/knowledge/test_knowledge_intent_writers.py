"""The leave-one-writer-out benchmark: each writer is scored by a model that never saw their messages."""

from __future__ import annotations

import benchmarks.intent_writers as bench
from knowledge.intent import Routing, new_network
from knowledge.intent_data import Example, extra_examples_by_writer
from knowledge.intent_train import TrainedIntent


def test_each_writer_is_scored_by_a_model_trained_without_them(monkeypatch, capsys) -> None:
    """The trainer is a stand-in that records what it was given and returns an untrained network."""
    writers = {writer: group[::12] for writer, group in list(extra_examples_by_writer().items())[:3]}
    trained_on: list[set[str]] = []

    def untrained(encoder, _sentences, recipe, log, extra: list[Example]) -> TrainedIntent:
        trained_on.append({example.text for example in extra})
        return TrainedIntent(new_network(encoder, recipe.seed, 0.0), Routing(0.5), None, 0.0, 0, {})

    monkeypatch.setattr(bench, "extra_examples_by_writer", lambda: writers)
    monkeypatch.setattr(bench, "train_intent", untrained)
    assert bench.main(["--dry-run"]) in (0, 1)
    assert len(trained_on) == len(writers)
    for texts, (writer, group) in zip(trained_on, writers.items(), strict=True):
        own = {example.text for example in group}
        others = {example.text for other, rest in writers.items() if other != writer for example in rest}
        assert not texts & own and texts == others
    out = capsys.readouterr().out
    held_out = sum(map(len, writers.values()))
    assert f"pooled over 3 writers, {held_out} messages" in out and "text_recall" in out
    assert "the same models at one routing for every writer" in out
    sweep = out.split("the same models at one routing for every writer")[1]
    assert {float(line.split()[0]) for line in sweep.splitlines()[2:] if line[:1] == " "} == set(
        bench.QUESTION_ODDS
    )
