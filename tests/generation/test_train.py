"""The companion trainer: dry runs through the CLI, JSON progress, the callback hook, the promotion gate."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from generation.api import TrainReport
from generation.models.checkpoint import load_checkpoint
from generation.models.gan import Discriminator, GanConfig
from generation.models.lstm import CharLSTM, LstmConfig
from generation.registry import ModelRegistry
from generation.train import TrainProgress
from generation.train.__main__ import main as train_main
from generation.train.data import TextCorpus
from generation.train.evaluate import beats, targets_met
from generation.train.lstm import LstmRecipe, regularized_forward, train_lstm
from generation.train.run import TrainOptions, report_line, train_and_register
from tests.generation.conftest import last_json_line, train_argv


@pytest.mark.parametrize("kind", ["gan", "lstm", "vae", "word"])
def test_dry_run_cli_registers_and_promotes_a_first_model(
    kind: str, tmp_path: Path, corpus_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = train_argv(kind, tmp_path, corpus_dir, "--progress-json", "--progress-every", "2")
    argv.remove("--quiet")
    assert train_main(argv) == 0
    raw_lines = capsys.readouterr().out.strip().splitlines()
    lines = [json.loads(line) for line in raw_lines]
    progress, report = lines[:-1], lines[-1]
    assert report["event"] == "report" and report["kind"] == kind
    assert report_line(TrainReport.from_json(report)) == raw_lines[-1]  # what the bot stores, unchanged
    assert report["promoted"] is True and report["reason"] == "no champion yet"
    assert report["champion"] is None
    steps = [line for line in progress if line["phase"] == "train"]
    assert steps and all(line["event"] == "progress" for line in progress)
    assert steps[-1]["step"] == steps[-1]["total_steps"]
    assert {"loss", "elapsed_s", "eta_s"} <= steps[0].keys()
    assert progress[-1]["phase"] == "done"
    champion = ModelRegistry(tmp_path).champion(kind)
    assert champion is not None and champion.version == report["version"]
    assert champion.metrics == pytest.approx(report["candidate"])


def test_callback_hook_receives_progress(tmp_path: Path, corpus_dir: Path) -> None:
    seen: list[TrainProgress] = []
    options = TrainOptions(
        kind="lstm", models_dir=tmp_path, data=str(corpus_dir), dry_run=True, device="cpu", quiet=True
    )
    options.progress_every = 1
    report = train_and_register(options, callback=seen.append)
    train_steps = [item.step for item in seen if item.phase == "train"]
    assert train_steps == list(range(1, report.train["steps"] + 1))
    assert seen[-1].phase == "done"
    assert all(item.elapsed_s >= 0 and item.eta_s >= 0 for item in seen)


def test_worse_candidate_is_not_promoted(
    trained_models: Path, corpus_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    registry = ModelRegistry(trained_models)
    before = registry.champion("lstm")
    assert before is not None
    # A learning rate of zero leaves the network untrained: clearly worse than the trained champion.
    capsys.readouterr()
    assert train_main(train_argv("lstm", trained_models, corpus_dir, "--set", "lr=0")) == 0
    report = last_json_line(capsys.readouterr().out)
    assert report["promoted"] is False
    assert report["candidate"]["bpc"] > report["champion"]["metrics"]["bpc"]
    assert registry.champion("lstm").version == before.version
    rejected = {info.version: info for info in registry.versions("lstm")}[report["version"]]
    assert rejected.status == "rejected" and "does not beat" in rejected.note


def test_champion_scored_under_an_older_split_does_not_block_promotion(
    tmp_path: Path, corpus_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    """A champion trained before held-out twins were left out saw copies of the held-out text, so its
    score says nothing; even an untrained candidate replaces it, and the report says why."""
    assert train_main(train_argv("lstm", tmp_path, corpus_dir)) == 0
    registry = ModelRegistry(tmp_path)
    old = registry.champion("lstm")
    meta_path = old.path / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    del meta["data"]["heldout_split"]  # what checkpoints written before the split was named look like
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    capsys.readouterr()
    assert train_main(train_argv("lstm", tmp_path, corpus_dir, "--set", "lr=0")) == 0
    report = last_json_line(capsys.readouterr().out)
    assert report["promoted"] is True
    assert "cannot be compared" in report["reason"]
    assert "bpc" in report["champion"]["metrics"]
    assert TrainReport.from_json(report).champion.error == report["champion"]["error"]
    assert registry.champion("lstm").version == report["version"] != old.version


def test_a_report_without_newer_fields_loads_and_is_written_back_unchanged() -> None:
    old = {"event": "report", "kind": "lstm", "version": "v1", "promoted": False, "reason": "worse"}
    report = TrainReport.from_json(old)
    assert (report.promoted, report.warnings, report.path, report.champion, report.seconds) == (
        False,
        [],
        None,
        None,
        None,
    )
    assert json.dumps(report.to_json()) == json.dumps(old)


def test_bad_arguments_fail_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert (
        train_main(["lstm", "--dry-run", "--models-dir", str(tmp_path), "--data", str(tmp_path / "missing")])
        == 1
    )
    assert "no text files" in capsys.readouterr().err
    assert train_main(["gan", "--dry-run", "--models-dir", str(tmp_path), "--set", "nonsense=1"]) == 1
    assert ModelRegistry(tmp_path).versions("gan") == []


@pytest.mark.parametrize(
    ("kind", "candidate", "champion", "expected"),
    [
        ("lstm", {"bpc": 2.0}, {"bpc": 2.1}, True),
        ("lstm", {"bpc": 2.2}, {"bpc": 2.1}, False),
        ("lstm", {"bpc": 2.2}, None, True),
        # A collapsed GAN with perfect accuracy but poor diversity loses to one that meets more targets.
        (
            "gan",
            {"accuracy": 1.0, "fd_ratio": 1.5, "diversity": 0.3, "near_copies": 0.0},
            {"accuracy": 0.96, "fd_ratio": 2.5, "diversity": 0.9, "near_copies": 0.0},
            False,
        ),
        (
            "gan",
            {"accuracy": 0.97, "fd_ratio": 2.0, "diversity": 0.9, "near_copies": 0.0},
            {"accuracy": 0.96, "fd_ratio": 2.5, "diversity": 0.9, "near_copies": 0.0},
            True,
        ),
    ],
)
def test_promotion_rule(kind: str, candidate: dict, champion: dict | None, expected: bool) -> None:
    assert beats(kind, candidate, champion)[0] is expected
    if kind == "gan":  # the VAE is held to the same four image figures
        assert beats("vae", candidate, champion)[0] is expected
        assert targets_met("vae", candidate) == targets_met("gan", candidate)


def test_dry_run_metrics_are_finite(trained_models: Path) -> None:
    for kind in ("gan", "lstm", "vae", "word"):
        champion = ModelRegistry(trained_models).champion(kind)
        assert champion is not None
        assert champion.metrics and all(math.isfinite(value) for value in champion.metrics.values())


@pytest.mark.parametrize("kind", ["gan", "vae"])
def test_image_models_train_unconditionally_on_a_folder_of_pictures(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    rng = np.random.default_rng(0)
    for index in range(24):
        Image.fromarray(rng.integers(0, 256, size=(20, 20), dtype=np.uint8), mode="L").save(
            pictures / f"{index}.png"
        )
    assert train_main(train_argv(kind, tmp_path / "models", tmp_path, "--data", str(pictures))) == 0
    report = last_json_line(capsys.readouterr().out)
    assert report["promoted"] is True
    assert "accuracy" not in report["candidate"] and math.isfinite(report["candidate"]["fd_ratio"])
    champion = load_checkpoint(ModelRegistry(tmp_path / "models").champion(kind).path, kind)
    assert champion.model.config.num_classes == 0


def test_discriminator_spread_exposes_a_collapse_within_each_class() -> None:
    """One drawing per class looks varied over a mixed batch; the per-class spread D sees is ~0."""
    torch.manual_seed(0)
    discriminator = Discriminator(GanConfig(image_size=8, z_dim=4, num_classes=2, g_channels=8, d_channels=4))
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    drawings = torch.rand(2, 1, 8, 8) * 2 - 1
    collapsed = drawings[labels]
    varied = torch.rand(6, 1, 8, 8) * 2 - 1
    with torch.no_grad():
        per_class_collapsed = discriminator._spread(discriminator.body(collapsed), labels)
        whole_batch_collapsed = discriminator._spread(discriminator.body(collapsed), None)
        per_class_varied = discriminator._spread(discriminator.body(varied), labels)
    assert per_class_collapsed.shape == (6,)
    assert float(per_class_collapsed.max()) < 1e-3
    assert float(whole_batch_collapsed.min()) > 1e-2
    assert float(per_class_varied.min()) > 1e-2


class _Silent:
    def step(self, step: int, loss: float) -> None:
        pass


def _tiny_lstm_run(corpus_dir: Path, **settings) -> CharLSTM:
    text = "".join(path.read_text(encoding="utf-8") for path in sorted(corpus_dir.glob("*.txt")))
    recipe = LstmRecipe.dry_run()
    recipe.time_limit_s = None
    for key, value in settings.items():
        setattr(recipe, key, value)
    corpus = TextCorpus(["a"], [text], [""], "fixture")
    model, _, _ = train_lstm(recipe, corpus, torch.device("cpu"), lambda total: _Silent(), seed=0)
    return model


def test_training_forward_without_noise_is_the_saved_network() -> None:
    torch.manual_seed(0)
    model = CharLSTM(LstmConfig(vocab_size=11, embed_dim=6, hidden_size=8, layers=2, tie_embeddings=True))
    model.eval()
    ids = torch.randint(0, 11, (3, 7))
    quiet = LstmRecipe(dropout=0.0, embed_dropout=0.0, weight_drop=0.0)
    logits, (hidden, cell) = regularized_forward(model, ids, None, quiet)
    expected, (expected_hidden, expected_cell) = model(ids)
    assert torch.allclose(logits, expected, atol=1e-6)
    assert torch.allclose(hidden, expected_hidden, atol=1e-6) and torch.allclose(
        cell, expected_cell, atol=1e-6
    )
    noisy = LstmRecipe(dropout=0.0, embed_dropout=0.0, weight_drop=0.5)
    before = model.rnn.weight_hh_l0.clone()
    assert not torch.allclose(regularized_forward(model, ids, None, noisy)[0], expected, atol=1e-4)
    assert torch.equal(model.rnn.weight_hh_l0, before)  # DropConnect masks a copy, never the weights


def test_weight_average_is_what_training_returns(corpus_dir: Path) -> None:
    # An average that barely moves stays at the weights after its first step: a one-step run.
    one_step = _tiny_lstm_run(corpus_dir, max_steps=1)
    averaged = _tiny_lstm_run(corpus_dir, max_steps=6, ema_decay=1 - 1e-9, ema_start=0.0)
    last = _tiny_lstm_run(corpus_dir, max_steps=6)
    for name, tensor in averaged.state_dict().items():
        assert torch.allclose(tensor, one_step.state_dict()[name], atol=1e-5), name
    assert not torch.allclose(averaged.rnn.weight_hh_l0, last.rnn.weight_hh_l0, atol=1e-4)
