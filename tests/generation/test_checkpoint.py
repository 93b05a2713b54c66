"""Checkpoints: safetensors + JSON round trip, and refusal of anything that does not match."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from generation.api import MODEL_KINDS
from generation.models.checkpoint import NETWORKS, CheckpointError, load_checkpoint, save_checkpoint
from generation.models.gan import GanConfig, Generator
from generation.models.lstm import CharLSTM, LstmConfig
from generation.models.vocab import UNK, CharVocab


@pytest.fixture(params=[False, True], ids=["untied", "tied-embeddings"])
def lstm_checkpoint(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Path, CharLSTM, CharVocab]:
    torch.manual_seed(0)
    vocab = CharVocab.build(["hello world 你好世界"], min_count=1)
    config = LstmConfig(
        vocab_size=len(vocab), embed_dim=8, hidden_size=16, layers=2, tie_embeddings=request.param
    )
    model = CharLSTM(config).eval()
    save_checkpoint(
        tmp_path / "ckpt", "lstm", model, config.to_dict(), vocab=vocab, metadata={"metrics": {"bpc": 3.0}}
    )
    return tmp_path / "ckpt", model, vocab


def test_lstm_round_trip(lstm_checkpoint: tuple[Path, CharLSTM, CharVocab]) -> None:
    path, model, vocab = lstm_checkpoint
    loaded = load_checkpoint(path, "lstm")
    assert loaded.vocab is not None and loaded.vocab.to_json() == vocab.to_json()
    assert loaded.metrics == {"bpc": 3.0}
    ids = torch.tensor([vocab.encode("hello 你好")])
    with torch.no_grad():
        assert torch.equal(loaded.model(ids)[0], model(ids)[0])


def test_gan_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = GanConfig(image_size=16, z_dim=8, g_channels=16)
    model = Generator(config).eval()
    save_checkpoint(tmp_path, "gan", model, config.to_dict())
    loaded = load_checkpoint(tmp_path, "gan")
    noise, labels = torch.randn(3, 8), torch.tensor([1, 2, 3])
    with torch.no_grad():
        assert torch.equal(loaded.model(noise, labels), model(noise, labels))
    assert json.loads((tmp_path / "meta.json").read_text())["weights_sha256"]


def _edit_meta(path: Path, **changes: object) -> None:
    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    meta.update(changes)
    (path / "meta.json").write_text(json.dumps(meta), encoding="utf-8")


def test_every_model_kind_has_a_network_and_no_other() -> None:
    """generation.models may not import generation.api, so its network table is checked here."""
    assert sorted(NETWORKS) == sorted(MODEL_KINDS)


def test_save_refuses_an_unknown_kind(tmp_path: Path) -> None:
    config = GanConfig(z_dim=4, g_channels=8, image_size=8)
    with pytest.raises(CheckpointError, match="unknown model kind"):
        save_checkpoint(tmp_path, "diffusion", Generator(config), config.to_dict())


def test_refuses_wrong_kind(lstm_checkpoint: tuple[Path, CharLSTM, CharVocab]) -> None:
    with pytest.raises(CheckpointError, match="expected 'gan'"):
        load_checkpoint(lstm_checkpoint[0], "gan")


def test_refuses_weights_from_another_checkpoint(
    lstm_checkpoint: tuple[Path, CharLSTM, CharVocab], tmp_path: Path
) -> None:
    path = lstm_checkpoint[0]
    other = tmp_path / "other"
    shutil.copytree(path, other)
    config = LstmConfig(vocab_size=len(lstm_checkpoint[2]), embed_dim=8, hidden_size=16, layers=2)
    save_checkpoint(tmp_path / "third", "lstm", CharLSTM(config), config.to_dict(), vocab=lstm_checkpoint[2])
    shutil.copy(tmp_path / "third" / "model.safetensors", other / "model.safetensors")
    with pytest.raises(CheckpointError, match="hash"):
        load_checkpoint(other, "lstm")


def test_refuses_config_that_does_not_fit_weights(lstm_checkpoint: tuple[Path, CharLSTM, CharVocab]) -> None:
    path, _, vocab = lstm_checkpoint
    _edit_meta(path, config={"vocab_size": len(vocab), "embed_dim": 8, "hidden_size": 32, "layers": 2})
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(path, "lstm")


def test_refuses_vocabulary_of_the_wrong_size(lstm_checkpoint: tuple[Path, CharLSTM, CharVocab]) -> None:
    path, _, vocab = lstm_checkpoint
    _edit_meta(path, vocab=[*vocab.to_json(), "x"] if "x" not in vocab else [*vocab.to_json(), "q"])
    with pytest.raises(CheckpointError, match="vocabulary"):
        load_checkpoint(path, "lstm")


@pytest.mark.parametrize(
    "change", [{"format": 99}, {"config": {"vocab_size": 3, "bogus": 1}}, {"vocab": ["a", "b"]}]
)
def test_refuses_bad_metadata(lstm_checkpoint: tuple[Path, CharLSTM, CharVocab], change: dict) -> None:
    _edit_meta(lstm_checkpoint[0], **change)
    with pytest.raises(CheckpointError):
        load_checkpoint(lstm_checkpoint[0], "lstm")


def test_refuses_missing_or_garbled_files(
    lstm_checkpoint: tuple[Path, CharLSTM, CharVocab], tmp_path: Path
) -> None:
    with pytest.raises(CheckpointError, match=r"no meta\.json"):
        load_checkpoint(tmp_path / "nowhere", "lstm")
    (lstm_checkpoint[0] / "meta.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(lstm_checkpoint[0], "lstm")


def test_vocabulary_maps_unknown_characters_to_unk() -> None:
    vocab = CharVocab.build(["aab"], min_count=2)
    assert vocab.to_json() == [UNK, "a"]
    assert vocab.encode("abz") == [1, 0, 0]
    assert CharVocab.from_json(vocab.to_json()).encode("a") == [1]
