"""The intent classifier: its shared encoder pass, its checkpoints, and the train-intent command."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from generation.api import TrainReport
from knowledge import intent_store
from knowledge.bert import attention_bias, bert_layer
from knowledge.intent import (
    INTENTS,
    IntentClassifier,
    Routing,
    load_intent_model,
    new_network,
    read_intent_metadata,
    save_intent_model,
    shared_layers,
)
from knowledge.intent_store import champion_dir, query_encoder, sentence_encoder
from knowledge.intent_train import GATE_ROUTED_AWAY_LIMIT as LIMIT
from knowledge.settings import PACKAGED_EMBEDDING_MODEL

TEXTS = ["draw me a 7", "写一段关于融资的话", "how much GPU do I need to train a large model?", "thanks!"]


@pytest.fixture(scope="session")
def encoder():
    return query_encoder(PACKAGED_EMBEDDING_MODEL)


@pytest.fixture(scope="session")
def classifier(encoder) -> IntentClassifier:
    """An untrained network (seeded head): enough to check plumbing, not quality."""
    return IntentClassifier(encoder, new_network(encoder, seed=1), Routing(0.3), {}, sentence_encoder())


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
        assert prediction.intent == "question" or prediction.confidence >= classifier.routing.threshold


def test_checkpoint_round_trip_predicts_the_same(classifier, encoder, tmp_path) -> None:
    folder = save_intent_model(tmp_path / "model", classifier.network, Routing(0.3), {"seed": 1})
    loaded = load_intent_model(folder, encoder, sentence_encoder())
    assert loaded.predict(TEXTS) == classifier.predict(TEXTS)
    assert read_intent_metadata(folder)["intents"] == list(INTENTS)
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]  # no temporaries left


def test_a_checkpoint_records_its_pooling_and_one_without_it_loads_as_the_plain_mean(
    encoder, tmp_path
) -> None:
    """Checkpoints trained before the pooled output was normalised keep reading the plain mean."""
    plain = new_network(encoder, seed=2, pooling="mean")
    folder = save_intent_model(tmp_path / "model", plain, Routing(0.3), {})
    meta = read_intent_metadata(folder)
    assert meta["pooling"] == "mean"
    del meta["pooling"]
    (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    loaded = load_intent_model(folder, encoder, sentence_encoder())
    assert not loaded.network.normalised
    assert loaded.predict(TEXTS) == IntentClassifier(
        encoder, plain, Routing(0.3), {}, sentence_encoder()
    ).predict(TEXTS)
    normalised = save_intent_model(tmp_path / "normalised", new_network(encoder, seed=2), Routing(0.3), {})
    assert load_intent_model(normalised, encoder, sentence_encoder()).network.normalised


def test_the_head_starts_as_the_logistic_regression_on_the_layers_features(encoder) -> None:
    """fit_head leaves a head whose predictions are the regression's, on the features it was fitted on."""
    from sklearn.linear_model import LogisticRegression

    from knowledge.intent_data import Example
    from knowledge.intent_train import cache_states, fit_head

    texts = [*TEXTS, "画一个数字3", "what is the weather in Paris?", "写一首诗", "你好", "怎么融资？"]
    labels = ["image", "text", "question", "smalltalk", "image", "offtopic", "text", "smalltalk", "question"]
    cached = cache_states(
        encoder, sentence_encoder(), [Example(t, i, "test") for t, i in zip(texts, labels, strict=True)]
    )
    network = new_network(encoder, seed=0, dropout=0.5)
    fit_head(network, cached, c=1.0)
    states, mask, sentences, truth = cached.batch(list(range(len(texts))))
    with torch.no_grad():
        features = network.features(states, mask, sentences).numpy()
        logits = network.head(torch.as_tensor(features))
    reference = LogisticRegression(C=1.0, max_iter=3000).fit(features, truth.numpy())
    assert torch.equal(logits.argmax(dim=1), torch.as_tensor(reference.predict(features)))
    assert torch.equal(logits.argmax(dim=1), truth)  # nine examples, 896 features: fitted exactly


def test_a_tampered_weights_file_is_refused(classifier, encoder, tmp_path) -> None:
    from knowledge.intent import WEIGHTS_FILE, IntentModelError

    folder = save_intent_model(tmp_path / "model", classifier.network, Routing(0.3), {})
    (folder / WEIGHTS_FILE).write_bytes(b"not weights")
    with pytest.raises(IntentModelError):
        load_intent_model(folder, encoder, sentence_encoder())


def _json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_dry_run_reports_as_the_bot_reads_and_the_gate_keeps_the_better_model(
    tmp_path, monkeypatch, capsys
) -> None:
    from knowledge.__main__ import main

    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setattr(intent_store, "SHIPPED_INTENT", tmp_path / "nothing-shipped")
    assert main(["train-intent", "--dry-run", "--progress-json", "--seed", "3"]) == 0
    *progress, last = _json_lines(capsys.readouterr().out)
    assert progress and all(event["event"] == "progress" for event in progress)
    train_steps = [event["step"] for event in progress if event["phase"] == "train"]
    assert train_steps == sorted(train_steps) and train_steps[-1] == progress[-1]["total_steps"]
    first = TrainReport.from_json(last)  # the generators' report protocol, which the bot reads
    champion = champion_dir(tmp_path)
    assert first.kind == "intent" and first.promoted and first.champion is None
    assert read_intent_metadata(champion)["version"] == first.version
    assert read_intent_metadata(champion)["recipe"]["seed"] == 3
    weights = read_intent_metadata(champion)["weights_sha256"]

    # The same recipe and seed train the same model: it ties on both the score and the log-loss.
    assert main(["train-intent", "--dry-run", "--progress-json", "--seed", "3"]) == 0
    second = TrainReport.from_json(_json_lines(capsys.readouterr().out)[-1])
    assert not second.promoted and "does not beat" in second.reason
    assert second.champion is not None and second.champion.version == first.version
    assert second.candidate["macro_f1"] == pytest.approx(second.champion.metrics["macro_f1"], abs=1e-4)
    assert read_intent_metadata(champion)["weights_sha256"] == weights


@dataclass(frozen=True)
class _Figures:
    macro_f1: float
    log_loss: float
    routed_away: float = 0.0


def _gate_reading(figures: dict[str, tuple[float, ...]]):
    """A gate that reads each model's (macro-F1, log-loss[, routed-away share]) from this table by its
    version."""

    def gate(folder: Path) -> _Figures:
        return _Figures(*figures[read_intent_metadata(folder)["version"]])

    return gate


def test_the_gate_compares_with_the_shipped_default_while_data_dir_has_no_champion(tmp_path) -> None:
    from knowledge.intent_train import promote_if_better

    shipped = tmp_path / "shipped"
    candidate = tmp_path / "candidate"
    network = new_network(query_encoder(PACKAGED_EMBEDDING_MODEL), seed=0)
    save_intent_model(shipped, network, Routing(0.0), {"version": "shipped"})
    save_intent_model(candidate, network, Routing(0.0), {"version": "new"})
    gate = _gate_reading({"shipped": (0.9, 0.3), "new": (0.5, 0.1)})
    champion = tmp_path / "data" / "champion"
    verdict = promote_if_better(candidate, champion, gate, shipped)
    assert not verdict.promoted and verdict.champion["version"] == "shipped" and not champion.exists()
    assert verdict.champion_figures.macro_f1 == 0.9 and verdict.candidate_figures.macro_f1 == 0.5
    assert promote_if_better(candidate, champion, gate).promoted  # nothing serving: any model beats none


@pytest.mark.parametrize(
    ("candidate_figures", "champion_figures", "promoted"),
    [
        ((0.95, 0.9), (0.9, 0.1), True),  # a better score wins outright
        ((0.9, 0.01), (0.95, 0.9), False),
        ((0.97, 0.02), (0.97, 0.05), True),  # a tie: the surer model wins
        ((0.97, 0.05), (0.97, 0.02), False),
        ((0.97, 0.05), (0.97, 0.05), False),
        # Real questions routed away over the limit come first; within it, they do not count.
        ((0.99, 0.01, LIMIT + 0.01), (0.9, 0.1, LIMIT - 0.01), False),
        ((0.9, 0.1, 0.0), (0.99, 0.01, LIMIT + 0.01), True),
        ((0.9, 0.1, LIMIT + 0.01), (0.99, 0.01, LIMIT + 0.02), True),
        ((0.99, 0.01, LIMIT + 0.01), (0.9, 0.1, LIMIT + 0.01), True),  # as far over: the score decides
        ((0.99, 0.01, LIMIT), (0.9, 0.1, 0.0), True),
        ((0.9, 0.01, 0.0), (0.99, 0.1, LIMIT), False),
    ],
)
def test_the_gate_ranks_by_macro_f1_then_log_loss_within_the_routed_away_limit(
    tmp_path, candidate_figures: tuple, champion_figures: tuple, promoted: bool
) -> None:
    from knowledge.intent_train import promote_if_better

    network = new_network(query_encoder(PACKAGED_EMBEDDING_MODEL), seed=0)
    candidate, champion = tmp_path / "candidate", tmp_path / "champion"
    save_intent_model(candidate, network, Routing(0.5), {"version": "new"})
    save_intent_model(champion, network, Routing(0.5), {"version": "old"})
    verdict = promote_if_better(
        candidate, champion, _gate_reading({"new": candidate_figures, "old": champion_figures})
    )
    assert verdict.promoted == promoted and verdict.champion["version"] == "old"
    assert read_intent_metadata(champion)["version"] == ("new" if promoted else "old")


def test_the_gate_scores_saved_models_on_messages_no_model_trained_on(encoder) -> None:
    """The real gate loads a checkpoint as it would serve and scores it on the gate's messages and real
    questions, which are neither training nor tune data."""
    from knowledge.intent_data import (
        GATE_SET,
        REAL_GATE,
        REAL_TRAIN,
        extra_examples,
        gate_examples,
        real_questions,
        tune_examples,
    )
    from knowledge.intent_store import SHIPPED_INTENT
    from knowledge.intent_train import Gate

    gate_texts = {example.text for example in gate_examples()}
    questions = {example.text for example in real_questions(REAL_GATE)}
    trained = {example.text for example in extra_examples() + tune_examples() + real_questions(REAL_TRAIN)}
    assert len(gate_texts) > 500 and {example.intent for example in gate_examples()} == set(INTENTS)
    assert len(questions) > 1000 and not (gate_texts | questions) & trained
    gate = Gate(encoder, sentence_encoder(), sample=40)
    figures = gate(SHIPPED_INTENT)
    assert sum(figures.scores.confusion[t][g] for t in INTENTS for g in INTENTS) == 40
    assert len(gate.questions.states) == 40 and figures.routed_away in {n / 40 for n in range(41)}
    assert 0.0 <= figures.macro_f1 <= 1.0 and figures.log_loss > 0.0
    assert GATE_SET.name == "intent_gate.jsonl"


def test_the_real_questions_split_between_training_and_the_gate(tmp_path) -> None:
    from knowledge.intent_data import REAL_GATE, REAL_TRAIN, real_questions

    lines = [
        json.dumps({"heading": "h", "question": f"how do I raise round {n}?", "quote": "q"})
        for n in range(60)
    ]
    (tmp_path / "000_article.jsonl").write_text("\n".join(lines + lines[:5]) + "\n", encoding="utf-8")
    asked = tmp_path / "asked.jsonl"
    asked.write_text(
        "".join(json.dumps({"question": f"can AI write our  copy, case {n}?"}) + "\n" for n in range(40)),
        encoding="utf-8",
    )
    train = [example.text for example in real_questions(REAL_TRAIN, tmp_path, asked)]
    gate = [example.text for example in real_questions(REAL_GATE, tmp_path, asked)]
    expected = {json.loads(line)["question"] for line in lines}
    written = {f"can AI write our copy, case {n}?" for n in range(40)}
    assert sorted(train + gate) == sorted(expected | written)  # each text once, spaces tidied
    assert set(train) & expected and set(gate) & expected and written <= set(gate)  # written: gate only
    assert {example.intent for example in real_questions(REAL_GATE, tmp_path, asked)} == {"question"}
    assert train == [example.text for example in real_questions(REAL_TRAIN, tmp_path, asked)]
    with pytest.raises(ValueError):
        real_questions("locked", tmp_path, asked)


def test_cleanup_removes_only_half_written_folders(tmp_path, monkeypatch, capsys) -> None:
    from knowledge.__main__ import main

    folder = tmp_path / "intent"
    for name in ("champion", "candidate", ".champion.new", ".candidate.tmp-41", ".champion.old-7"):
        (folder / name).mkdir(parents=True)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    assert main(["train-intent", "--cleanup"]) == 0
    event = json.loads(capsys.readouterr().out)
    assert event["event"] == "cleanup" and event["kind"] == "intent"
    assert sorted(path.name for path in folder.iterdir()) == ["candidate", "champion"]
    assert sorted(event["removed"]) == [".candidate.tmp-41", ".champion.new", ".champion.old-7"]


def test_negative_options_are_refused_with_a_message(tmp_path, monkeypatch, capsys) -> None:
    from knowledge.__main__ import main

    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    assert main(["train-intent", "--max-steps", "-1"]) == 2
    assert "--max-steps must not be negative" in capsys.readouterr().err
    assert not (tmp_path / "intent").exists()


def test_a_message_leaves_the_knowledge_base_only_by_the_routing_s_odds_and_threshold() -> None:
    """Another class must beat `question` by the odds, and reach the threshold; else it is a question."""
    row = np.zeros(len(INTENTS), dtype=np.float32)
    row[INTENTS.index("text")], row[INTENTS.index("question")] = 0.5, 0.3
    row[INTENTS.index("image")] = 0.2
    assert Routing().intent_of(row) == "text"
    assert Routing(question_odds=1.6).intent_of(row) == "text"
    assert Routing(question_odds=1.7).intent_of(row) == "question"
    assert Routing(threshold=0.6).intent_of(row) == "question"
    sure = np.zeros(len(INTENTS), dtype=np.float32)
    sure[INTENTS.index("image")], sure[INTENTS.index("question")] = 0.8, 0.2
    assert Routing(0.0, 2.0).intents(np.stack([row, sure])) == ["question", "image"]
    # A checkpoint saved before the odds were recorded routes by the plain majority.
    assert Routing.from_metadata({"threshold": 0.4}) == Routing(0.4, 1.0)


def test_a_checkpoint_keeps_its_routing(classifier, encoder, tmp_path) -> None:
    folder = save_intent_model(tmp_path / "model", classifier.network, Routing(0.2, 3.0), {})
    loaded = load_intent_model(folder, encoder, sentence_encoder())
    assert loaded.routing == Routing(0.2, 3.0)
    for prediction in loaded.predict(TEXTS):
        top = prediction.top
        assert prediction.intent == (
            top
            if top == "question"
            or prediction.probabilities[top] >= max(0.2, 3.0 * prediction.probabilities["question"])
            else "question"
        )


def test_the_threshold_keeps_real_questions_with_the_knowledge_base() -> None:
    """The best tune macro-F1 is not taken when it sends more held-out questions away than the budget
    allows; the next best threshold within it is."""
    from knowledge.intent_train import ROUTED_AWAY_BUDGET, choose_threshold, routed_away

    def rows(*pairs: tuple[str, float]) -> torch.Tensor:
        out = torch.zeros(len(pairs), len(INTENTS))
        for n, (intent, p) in enumerate(pairs):
            out[n] = (1 - p) / (len(INTENTS) - 1)
            out[n, INTENTS.index(intent)] = p
        return out

    # Tune part: a text request read with confidence 0.43 counts for macro-F1 only at thresholds below it.
    tune = rows(("text", 0.43), ("image", 0.9), ("question", 0.9), ("smalltalk", 0.9), ("offtopic", 0.9))
    truth = ["text", "image", "question", "smalltalk", "offtopic"]
    # Held-out questions: a tenth read as off-topic with confidence 0.32.
    questions = rows(*[("question", 0.9)] * 9, ("offtopic", 0.32))
    threshold, scores, away = choose_threshold(tune, truth, questions)
    assert away <= ROUTED_AWAY_BUDGET and away == routed_away(questions, Routing(threshold)) == 0.0
    assert 0.32 < threshold < 0.43 and scores.macro_f1 == 1.0
    # With nothing but a wrong question, the fewest routed away wins, at the cost of the tune part.
    threshold, _, away = choose_threshold(tune, truth, rows(("offtopic", 0.87)))
    assert away == 0.0 and threshold > 0.87
    # Without any question held out, the best macro-F1 (lowest of equals) as before.
    assert choose_threshold(tune, truth, rows())[0] == 0.0
    # At question odds that hold the unsure off-topic reading back, the lowest threshold keeps it too.
    threshold, scores, away = choose_threshold(tune, truth, questions, question_odds=2.0)
    assert threshold == 0.0 and away == 0.0 and scores.macro_f1 == 1.0
