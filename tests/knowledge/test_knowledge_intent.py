"""The intent classifier: its shared encoder pass, its checkpoints, and the train-intent command."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from knowledge.bert import bert_layer
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
        encoder.attention_bias(mask),
        encoder.layer_weights(encoder.layers - 1),
        encoder.heads,
        encoder.eps,
    )
    assert torch.equal(last, encoder.hidden_states(ids, mask, encoder.layers))


def test_shared_pass_predicts_as_a_separate_pass(classifier) -> None:
    vectors, shared = classifier.encode_and_predict(TEXTS)
    assert np.array_equal(vectors, classifier.encoder.encode(TEXTS))
    assert shared == classifier.predict(TEXTS)
    # Sentence vectors the caller already has (retrieval's) give the same predictions.
    _, reused = classifier.encode_and_predict(TEXTS, classifier.sentence_encoder(TEXTS))
    assert reused == shared
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


def test_a_batched_read_splits_into_what_the_shared_pass_gives(classifier) -> None:
    vectors, predictions = classifier.encode_and_predict(TEXTS)
    sentences = classifier.sentence_encoder(TEXTS)
    rows = classifier.read_batch(TEXTS)
    for row, vector, sentence, prediction in zip(rows, vectors, sentences, predictions, strict=True):
        query, multi, read = classifier.split_row(row)
        assert np.allclose(query, vector) and np.allclose(multi, sentence)
        assert read.intent == prediction.intent
        assert np.allclose(list(read.probabilities.values()), list(prediction.probabilities.values()))
