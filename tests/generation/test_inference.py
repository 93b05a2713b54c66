"""Loaded generators: seeded determinism across batches, prompt handling, limits and PNG size."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from PIL import Image

from generation.api import ImageRequest, TextRequest
from generation.inference import (
    RANKED_PREFIX,
    ImageGenerator,
    TextGenerator,
    _ranked,
    _step,
    _step_cells,
    load_champion,
)
from generation.models.lstm import CharLSTM, LstmConfig
from generation.registry import ModelRegistry


@pytest.fixture(scope="module")
def images(trained_models: Path) -> ImageGenerator:
    generator = load_champion(trained_models, "gan", device="cpu")
    assert isinstance(generator, ImageGenerator)
    return generator


@pytest.fixture(scope="module")
def texts(trained_models: Path) -> TextGenerator:
    generator = load_champion(trained_models, "lstm", device="cpu")
    assert isinstance(generator, TextGenerator)
    return generator


def test_no_champion_gives_none(tmp_path: Path) -> None:
    assert load_champion(tmp_path, "gan", device="cpu") is None
    assert load_champion(tmp_path, "lstm", device="cpu") is None


def test_loaded_generator_describes_itself(images: ImageGenerator, trained_models: Path) -> None:
    champion = ModelRegistry(trained_models).champion("gan")
    assert images.version == champion.version
    assert images.metrics == pytest.approx(champion.metrics)
    assert images.created_at == champion.created_at != ""


def test_seeded_images_are_identical_alone_or_in_a_batch(images: ImageGenerator) -> None:
    alone = images.generate_batch([ImageRequest(digit=3, count=5, seed=42)])[0]
    batch = images.generate_batch(
        [ImageRequest(count=16, seed=1), ImageRequest(digit=3, count=5, seed=42), ImageRequest(count=2)]
    )
    assert batch[1].png == alone.png
    assert batch[1].digits == [3] * 5
    assert batch[0].png != alone.png


def test_unseeded_request_reports_a_reusable_seed(images: ImageGenerator) -> None:
    first = images.generate_batch([ImageRequest(count=4)])[0]
    again = images.generate_batch([ImageRequest(count=4, seed=first.seed)])[0]
    assert again.png == first.png


def test_mixed_grid_shows_different_digits(images: ImageGenerator) -> None:
    result = images.generate_batch([ImageRequest(count=10, seed=7)])[0]
    assert sorted(result.digits) == list(range(10))


@pytest.mark.parametrize("count", [1, 3, 8, 16])
def test_png_is_sized_for_telegram(images: ImageGenerator, count: int) -> None:
    png = images.generate_batch([ImageRequest(count=count, seed=0)])[0].png
    picture = Image.open(io.BytesIO(png))
    assert picture.format == "PNG"
    assert min(picture.size) >= 256
    assert len(png) < 1_000_000


def test_seeded_text_is_identical_alone_or_in_a_batch(texts: TextGenerator) -> None:
    request = TextRequest(prompt="Founders", length=60, seed=5)
    alone = texts.generate_batch([request])[0]
    batch = texts.generate_batch(
        [TextRequest(prompt="创业", length=90, seed=9), request, TextRequest(length=10)]
    )
    assert batch[1].text == alone.text
    assert texts.generate_batch([request])[0].text == alone.text


def test_text_includes_prompt_and_respects_length(texts: TextGenerator) -> None:
    results = texts.generate_batch(
        [TextRequest(prompt="Startups", length=25, seed=1), TextRequest(prompt="", length=7, seed=2)]
    )
    assert results[0].text.startswith("Startups") and len(results[0].text) == len("Startups") + 25
    assert len(results[1].text) == 7
    assert "\ufffd" not in results[0].text + results[1].text


def test_prompt_with_characters_the_vocabulary_lacks(texts: TextGenerator) -> None:
    prompt = "Zebra ☃ 🚀 ∮ 𝔘"
    assert any(char not in texts.vocab for char in prompt)
    result = texts.generate_batch([TextRequest(prompt=prompt, length=20, seed=3)])[0]
    assert result.text.startswith(prompt) and len(result.text) == len(prompt) + 20


def test_top_k_one_is_greedy(texts: TextGenerator) -> None:
    greedy = [
        texts.generate_batch([TextRequest(prompt="The ", length=30, top_k=1, seed=seed)])[0].text
        for seed in (1, 2)
    ]
    assert greedy[0] == greedy[1]
    sampled = {
        texts.generate_batch([TextRequest(prompt="The ", length=30, temperature=2.0, top_p=1.0, seed=seed)])[
            0
        ].text
        for seed in range(4)
    }
    assert len(sampled) > 1


def test_warm_up_runs(images: ImageGenerator, texts: TextGenerator) -> None:
    images.warm_up()
    texts.warm_up()


def test_sampling_step_matches_the_trained_lstm() -> None:
    """The per-character cells that sampling uses compute what the trained nn.LSTM computes."""
    torch.manual_seed(0)
    model = CharLSTM(
        LstmConfig(vocab_size=12, embed_dim=6, hidden_size=10, layers=2, tie_embeddings=True)
    ).eval()
    ids = torch.tensor([[3, 5, 7], [1, 2, 11]])
    with torch.no_grad():
        _, state = model.rnn(model.embed(ids[:, :2]))
        expected, expected_state = model.rnn(model.embed(ids[:, 2:]), state)
        hidden, stepped_state = _step(_step_cells(model.rnn), model.embed(ids[:, 2]), state)
    torch.testing.assert_close(hidden, expected[:, 0])
    torch.testing.assert_close(stepped_state[0], expected_state[0])
    torch.testing.assert_close(stepped_state[1], expected_state[1])


def test_ranking_shortcut_keeps_what_a_full_sort_keeps() -> None:
    """Peaked rows (top-p reached within the prefix) get the full sort's leading entries; a flat row
    makes the whole batch fall back to the full sort."""
    vocab = RANKED_PREFIX * 4
    logits = torch.randn(3, vocab)
    logits[:, :5] += 20.0  # almost all the mass on five characters
    probs = torch.softmax(logits, dim=-1)
    top_k, top_p = torch.tensor([0, 0, 0]), torch.tensor([0.95, 0.9, 0.5])
    values, order = _ranked(probs, top_k, top_p)
    full_values, full_order = probs.sort(dim=-1, descending=True)
    assert values.shape == (3, RANKED_PREFIX)
    torch.testing.assert_close(values, full_values[:, :RANKED_PREFIX], rtol=0, atol=0)
    assert torch.equal(order[:, :5].sort().values, full_order[:, :5].sort().values)
    flat = torch.cat([probs[:2], torch.full((1, vocab), 1.0 / vocab)])
    assert _ranked(flat, top_k, top_p)[0].shape == (3, vocab)
    assert _ranked(flat, torch.tensor([0, 0, 10]), top_p)[0].shape == (3, RANKED_PREFIX)
