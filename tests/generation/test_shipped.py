"""The default champions shipped with the package: made by `make models`, small, and served at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from generation.api import IMAGE_KINDS, MODEL_KINDS, ImageRequest, TextRequest
from generation.models.checkpoint import load_checkpoint
from generation.registry import ModelRegistry
from generation.service.inference import ImageGenerator, TextGenerator, load_champion
from generation.service.word_generator import WordTextGenerator
from generation.settings import PACKAGE_SHIPPED_DIR
from generation.train import evaluate
from generation.train.data import HELDOUT_SPLIT
from generation.train.gan import GanRecipe
from generation.train.lstm import LstmRecipe
from generation.train.ship import SHIPPED_SEED
from generation.train.vae import VaeRecipe
from generation.train.word import WordRecipe

RECIPES = {"gan": GanRecipe, "lstm": LstmRecipe, "vae": VaeRecipe, "word": WordRecipe}
MAX_SHIPPED_BYTES = 12 * 1024 * 1024


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_shipped_champion_is_the_default_recipe_with_its_record(kind: str) -> None:
    checkpoint = load_checkpoint(PACKAGE_SHIPPED_DIR / kind, kind)
    meta = checkpoint.metadata
    assert meta["recipe"] == RECIPES[kind]().to_dict()  # retrain with `make models` after a recipe change
    assert meta["train"]["seed"] == SHIPPED_SEED and not meta["train"]["dry_run"]
    assert meta["train"]["steps"] == meta["train"]["planned_steps"]
    assert not meta["train"]["stopped_by_time_limit"]
    assert meta["data"]["fingerprint"] and meta["shipped"]["commit"] and meta["shipped"]["made_by"]
    if kind in IMAGE_KINDS:
        assert all(evaluate.targets_met(kind, checkpoint.metrics).values()), checkpoint.metrics
    else:
        assert meta["data"]["heldout_split"] == HELDOUT_SPLIT and checkpoint.metrics["bpc"] > 0


def test_shipped_weights_are_small() -> None:
    sizes = [path.stat().st_size for path in PACKAGE_SHIPPED_DIR.glob("*/model.safetensors")]
    assert len(sizes) == len(MODEL_KINDS) and sum(sizes) <= MAX_SHIPPED_BYTES


def test_a_fresh_data_dir_serves_the_shipped_champions(tmp_path: Path) -> None:
    images = load_champion(tmp_path / "models", "gan", "cpu", PACKAGE_SHIPPED_DIR)
    texts = load_champion(tmp_path / "models", "lstm", "cpu", PACKAGE_SHIPPED_DIR)
    assert isinstance(images, ImageGenerator) and isinstance(texts, TextGenerator)
    assert images.version == ModelRegistry(tmp_path / "models", PACKAGE_SHIPPED_DIR).champion("gan").version
    [grid] = images.generate_batch([ImageRequest(digit=7, count=4, seed=1)])
    assert grid.png.startswith(b"\x89PNG") and grid.digits == [7, 7, 7, 7]
    [text] = texts.generate_batch([TextRequest(model="lstm", prompt="Large models", length=120, seed=1)])
    assert text.text.startswith("Large models") and len(text.text) == len("Large models") + 120
    words = load_champion(tmp_path / "models", "word", "cpu", PACKAGE_SHIPPED_DIR)
    assert isinstance(words, WordTextGenerator)
    [written] = words.generate_batch([TextRequest(model="word", prompt="Large models", length=120, seed=1)])
    assert written.text.startswith("Large models") and len(written.text) >= len("Large models") + 120
    vae = load_champion(tmp_path / "models", "vae", "cpu", PACKAGE_SHIPPED_DIR)
    assert isinstance(vae, ImageGenerator) and vae.kind == "vae"
    [vae_grid] = vae.generate_batch([ImageRequest(model="vae", digit=7, count=4, seed=1)])
    assert vae_grid.png.startswith(b"\x89PNG") and vae_grid.png != grid.png
    assert not (tmp_path / "models").exists()  # serving wrote nothing
