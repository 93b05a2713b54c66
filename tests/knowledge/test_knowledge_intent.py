"""The intent classifier: its shared encoder pass, its checkpoints, and the train-intent command."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from knowledge.bert import attention_bias, bert_layer
from knowledge.intent import (
    INTENTS,
    IntentClassifier,
    load_intent_model,
    new_network,
    read_intent_metadata,
    save_intent_model,
    shared_layers,
)
from knowledge.intent_store import champion_dir, query_encoder, sentence_encoder
from knowledge.settings import PACKAGED_EMBEDDING_MODEL

TEXTS = ["draw me a 7", "写一段关于融资的话", "how much GPU do I need to train a large model?", "thanks!"]


@pytest.fixture(scope="session")
def encoder():
    return query_encoder(PACKAGED_EMBEDDING_MODEL)


@pytest.fixture(scope="session")
def classifier(encoder) -> IntentClassifier:
    """An untrained network (seeded head): enough to check plumbing, not quality."""
    return IntentClassifier(encoder, new_network(encoder, seed=1), 0.3, {}, sentence_encoder())


def test_shared_pass_leaves_the_query_vectors_unchanged(encoder) -> None:
    ids, mask = encoder.tensors(TEXTS)
    vectors, states = encoder.forward_with_states(ids, mask, shared_layers(encoder))
    assert np.array_equal(vectors.numpy(), encoder.encode(TEXTS))
    assert torch.equal(states, encoder.hidden_states(ids, mask, shared_layers(encoder)))
    last = bert_layer(
        states,
        attention_bias(mask),
        encoder.layer_weights(encoder.layers - 1),
        encoder.heads,
        encoder.eps,
    )
    assert torch.equal(last, encoder.hidden_states(ids, mask, encoder.layers))


def test_shared_pass_predicts_as_a_separate_pass(classifier) -> None:
    """One batched read gives the query vectors `encode` gives, the sentence vectors, and `predict`'s
    predictions."""
    rows = [classifier.split_row(row) for row in classifier.read_batch(TEXTS)]
    assert np.array_equal(np.stack([query for query, _, _ in rows]), classifier.encoder.encode(TEXTS))
    assert np.array_equal(np.stack([multi for _, multi, _ in rows]), classifier.sentence_encoder(TEXTS))
    shared = [prediction for _, _, prediction in rows]
    assert shared == classifier.predict(TEXTS)
    for prediction in shared:
        assert set(prediction.probabilities) == set(INTENTS)
        assert prediction.confidence == max(prediction.probabilities.values())
        assert prediction.intent == "question" or prediction.confidence >= classifier.threshold


def test_checkpoint_round_trip_predicts_the_same(classifier, encoder, tmp_path) -> None:
    folder = save_intent_model(tmp_path / "model", classifier.network, 0.3, {"seed": 1})
    loaded = load_intent_model(folder, encoder, sentence_encoder())
    assert loaded.predict(TEXTS) == classifier.predict(TEXTS)
    assert read_intent_metadata(folder)["intents"] == list(INTENTS)
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]  # no temporaries left


def test_a_tampered_weights_file_is_refused(classifier, encoder, tmp_path) -> None:
    from knowledge.intent import WEIGHTS_FILE, IntentModelError

    folder = save_intent_model(tmp_path / "model", classifier.network, 0.3, {})
    (folder / WEIGHTS_FILE).write_bytes(b"not weights")
    with pytest.raises(IntentModelError):
        load_intent_model(folder, encoder, sentence_encoder())


def test_dry_run_promotes_the_first_model_and_keeps_it_over_a_worse_one(
    tmp_path, monkeypatch, capsys
) -> None:
    from knowledge.__main__ import main

    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    assert main(["train-intent", "--dry-run"]) == 0
    champion = champion_dir(tmp_path)
    first = read_intent_metadata(champion)
    assert "promoted" in capsys.readouterr().out
    assert main(["train-intent", "--dry-run", "--epochs", "0"]) == 0  # an untrained head: worse
    assert "kept the champion" in capsys.readouterr().out
    assert read_intent_metadata(champion)["weights_sha256"] == first["weights_sha256"]
    candidate = read_intent_metadata(tmp_path / "intent" / "candidate")
    assert candidate["metrics"]["tune"]["macro_f1"] < first["metrics"]["tune"]["macro_f1"]
