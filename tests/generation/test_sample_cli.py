"""python -m generation.sample image|text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generation.registry import ModelRegistry
from generation.sample import main as sample_main


@pytest.fixture
def data_dir(trained_models: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DATA_DIR whose models folder holds the session's trained models."""
    monkeypatch.setenv("DATA_DIR", str(trained_models.parent))
    return trained_models.parent


def test_image_png_and_npy(data_dir: Path, tmp_path: Path) -> None:
    assert (
        sample_main(["image", "--digit", "7", "--n", "4", "--seed", "1", "--out", str(tmp_path / "g.png")])
        == 0
    )
    assert min(Image.open(tmp_path / "g.png").size) >= 256
    assert sample_main(["image", "--n", "5", "--seed", "1", "--out", str(tmp_path / "g.npy")]) == 0
    raw = np.load(tmp_path / "g.npy")
    assert raw.shape[0] == 5 and raw.ndim == 3 and raw.min() >= 0.0 and raw.max() <= 1.0


def test_image_model_is_chosen_by_name_or_by_the_checkpoint(
    data_dir: Path, trained_models: Path, tmp_path: Path
) -> None:
    argv = ["image", "--digit", "2", "--n", "3", "--seed", "5", "--out"]
    assert sample_main([*argv[:1], "--model", "vae", *argv[1:], str(tmp_path / "vae.npy")]) == 0
    assert sample_main([*argv, str(tmp_path / "gan.npy")]) == 0
    vae, gan = np.load(tmp_path / "vae.npy"), np.load(tmp_path / "gan.npy")
    assert vae.shape == gan.shape == (3, 16, 16) and not np.array_equal(vae, gan)
    # A checkpoint folder is drawn by its own kind; naming another kind is refused.
    champion = str(ModelRegistry(trained_models).champion("vae").path)
    assert sample_main(["--checkpoint", champion, *argv, str(tmp_path / "again.npy")]) == 0
    assert np.array_equal(np.load(tmp_path / "again.npy"), vae)
    wrong = ["--checkpoint", champion, "image", "--model", "gan", "--out", str(tmp_path / "x.png")]
    assert sample_main(wrong) == 1


def test_unknown_image_model_gets_the_usage_and_no_image(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        sample_main(["image", "--model", "x", "--out", str(tmp_path / "x.png")])
    assert exit_info.value.code == 2
    assert "usage:" in capsys.readouterr().err and not (tmp_path / "x.png").exists()


def test_text_prints_prompt_and_continuation(data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    assert sample_main(["text", "Hello", "--model", "char", "--length", "12", "--seed", "4"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("Hello") and len(first.rstrip("\n")) == 17
    assert sample_main(["text", "Hello", "--model", "char", "--length", "12", "--seed", "4"]) == 0
    assert capsys.readouterr().out == first


def test_text_is_written_by_the_word_model_by_default(data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    assert sample_main(["text", "Hello", "--length", "12", "--seed", "4"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("Hello") and len(first.rstrip("\n")) >= 17  # on to a sentence end
    assert sample_main(["text", "Hello", "--model", "word", "--length", "12", "--seed", "4"]) == 0
    assert capsys.readouterr().out == first


def test_friendly_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    assert sample_main(["text", "hi"]) == 1
    assert "python -m generation.train word" in capsys.readouterr().err
    assert sample_main(["text", "hi", "--model", "char"]) == 1
    assert "python -m generation.train lstm" in capsys.readouterr().err
    assert sample_main(["image", "--digit", "12", "--out", str(tmp_path / "x.png")]) == 2
    assert "--digit" in capsys.readouterr().err
    assert sample_main(["text", "hi", "--temperature", "0"]) == 2
