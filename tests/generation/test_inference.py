"""Loaded generators: seeded determinism across batches, prompt handling, limits and PNG size; the
rearranged networks and the sampler against their plain definitions."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from generation.api import ImageRequest, TextRequest
from generation.models.gan import GanConfig, Generator
from generation.models.lstm import CharLSTM, LstmConfig
from generation.registry import ModelRegistry
from generation.service.image_network import (
    ROW_BUCKET,
    FoldedGenerator,
    as_subpixel_convolution,
    fold_batch_norms,
    image_network,
)
from generation.service.inference import ImageGenerator, TextGenerator, load_champion
from generation.service.packed import compute_dtype, onednn_packs
from generation.service.text_stepper import CharStepper, sample_ids, text_stepper

CPU = torch.device("cpu")
# The bf16 cases need oneDNN's packed bf16 path, which CPUs without AVX512-BW/VL/DQ or AVX-NE-CONVERT
# refuse (serving runs float32 there: test_packed_linear_falls_back_where_onednn_refuses).
needs_bf16_packing = pytest.mark.skipif(
    not onednn_packs(torch.bfloat16), reason="oneDNN does not pack bf16 matrix products on this CPU"
)
BF16 = pytest.param(torch.bfloat16, 2e-2, marks=needs_bf16_packing, id="bf16")
FP32 = pytest.param(torch.float32, 1e-5, id="fp32")


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


def test_warm_up_leaves_no_trace_in_what_is_served(images: ImageGenerator, texts: TextGenerator) -> None:
    image, text_request = ImageRequest(digit=3, count=2, seed=5), TextRequest(prompt="AI", length=30, seed=5)
    before = images.generate_batch([image])[0], texts.generate_batch([text_request])[0]
    images.warm_up()
    texts.warm_up()
    after = images.generate_batch([image])[0], texts.generate_batch([text_request])[0]
    assert before[0].png == after[0].png
    assert before[1].text == after[1].text


def test_seeded_text_is_identical_in_any_batch_whatever_the_settings(texts: TextGenerator) -> None:
    """Mixed prompts, lengths and sampling settings: each seeded request reads the same alone."""
    rng = np.random.default_rng(0)
    requests = [
        TextRequest(
            prompt=str(rng.choice(["", "创业", "Founders raise", "Zebra ☃"])),
            length=int(rng.integers(1, 80)),
            temperature=float(rng.choice([0.5, 1.0, 1.7])),
            top_k=int(rng.choice([0, 0, 1, 5])),
            top_p=float(rng.choice([1.0, 0.95, 0.5])),
            seed=seed,
        )
        for seed in range(10)
    ]
    together = [result.text for result in texts.generate_batch(requests)]
    assert together == [texts.generate_batch([request])[0].text for request in requests]


def _lstm(tie_embeddings: bool, seed: int = 0) -> CharLSTM:
    torch.manual_seed(seed)
    config = LstmConfig(vocab_size=40, embed_dim=6, hidden_size=10, layers=2, tie_embeddings=tie_embeddings)
    return CharLSTM(config).eval()


@pytest.mark.parametrize(("dtype", "tolerance"), [FP32, BF16])
@pytest.mark.parametrize("tie_embeddings", [True, False])
def test_stepper_computes_what_the_trained_lstm_computes(
    tie_embeddings: bool, dtype: torch.dtype, tolerance: float
) -> None:
    """Character by character, the rearranged network gives nn.LSTM's states and the model's logits
    (float32 exactly up to rounding; bf16 closely); UNK's logit is -inf."""
    model = _lstm(tie_embeddings)
    ids = torch.tensor([[3, 5, 7, 9], [1, 2, 11, 39]])
    with torch.inference_mode():
        outputs, (hidden, memory) = model.rnn(model.embed(ids))
        expected = model.logits(outputs[:, -1])
        stepper = CharStepper(model, CPU, dtype)
        state = stepper.new_state(2)
        for position in range(ids.shape[1]):
            top = stepper.advance(ids[:, position], state)
        logits = stepper.logits(top)
    torch.testing.assert_close(top, outputs[:, -1], atol=tolerance, rtol=tolerance)
    torch.testing.assert_close(state[0], hidden, atol=tolerance, rtol=tolerance)
    torch.testing.assert_close(state[1], memory, atol=tolerance, rtol=tolerance)
    torch.testing.assert_close(logits[:, 1:], expected[:, 1:], atol=5 * tolerance, rtol=5 * tolerance)
    assert torch.isneginf(logits[:, 0]).all()


def test_stepper_advances_only_the_leading_rows() -> None:
    model = _lstm(True)
    with torch.inference_mode():
        stepper = CharStepper(model, CPU, torch.float32)
        state = stepper.new_state(3)
        stepper.advance(torch.tensor([4, 5, 6]), state)
        before = (state[0][:, 2].clone(), state[1][:, 2].clone())
        stepper.advance(torch.tensor([7, 8]), state)
    assert torch.equal(state[0][:, 2], before[0]) and torch.equal(state[1][:, 2], before[1])


def test_unknown_output_layer_falls_back_to_the_models_own() -> None:
    """An output mapping the stepper cannot pack is used as it is, still never producing UNK."""
    model = _lstm(False)
    model.logits = lambda output: model.head(output) * 2.0  # not what the packed head computes
    with torch.inference_mode():
        stepper = text_stepper(model, CPU)
        state = stepper.new_state(1)
        logits = stepper.logits(stepper.advance(torch.tensor([3]), state))
        expected = model.head(state[0][-1]) * 2.0
    assert stepper.output is None
    torch.testing.assert_close(logits[:, 1:], expected[:, 1:], atol=2e-2, rtol=2e-2)
    assert torch.isneginf(logits[:, 0]).all()


def _nucleus(probs: torch.Tensor, top_p: float, top_k: int) -> torch.Tensor:
    """Reference: the kept, renormalised distribution from a full descending sort of the ids."""
    values, order = probs.sort(descending=True)
    before = values.cumsum(0) - values
    keep = before < top_p
    if top_k:
        keep[top_k:] = False
    kept = torch.zeros_like(probs)
    kept[order[keep]] = values[keep]
    return kept / kept.sum()


@pytest.mark.parametrize(
    ("temperature", "top_p", "top_k"),
    [(1.0, 1.0, 0), (0.8, 0.95, 0), (1.3, 0.5, 0), (1.0, 1.0, 3), (0.7, 0.9, 5), (1.0, 0.3, 1)],
)
def test_sampler_draws_the_nucleus_distribution(temperature: float, top_p: float, top_k: int) -> None:
    """Evenly spread uniform numbers through the inverse CDF reproduce the kept probabilities, ties
    included (bf16 logits often tie), and never UNK."""
    torch.manual_seed(1)
    logits = torch.randn(60) * 2.0
    logits[10:14] = logits[20]  # a run of equal probabilities
    logits[0] = float("-inf")
    expected = _nucleus(torch.softmax(logits / temperature, dim=0), top_p, top_k)
    draws = 20_000
    uniforms = (torch.arange(draws, dtype=torch.float64) + 0.5) / draws
    picks = sample_ids(
        logits.repeat(draws, 1),
        uniforms.float(),
        torch.full((draws, 1), 1.0 / temperature),
        torch.full((draws, 1), top_p),
        torch.full((draws, 1), top_k or 60),
    )
    frequencies = torch.bincount(picks, minlength=60).double() / draws
    assert frequencies[0] == 0
    assert len(picks.unique()) == int((expected > 0).sum())
    # Which of several equally probable ids a cut keeps is arbitrary: compare the mass per probability.
    probs = torch.softmax(logits / temperature, dim=0)
    for value in probs.unique():
        same = probs == value
        assert abs(frequencies[same].sum() - expected[same].sum()) <= 3.0 / draws


def test_sampler_rows_do_not_depend_on_each_other() -> None:
    torch.manual_seed(2)
    logits = torch.randn(9, 50)
    logits[:, 0] = float("-inf")
    settings = (
        torch.rand(9),
        torch.rand(9, 1) + 0.5,
        torch.rand(9, 1) * 0.9 + 0.1,
        torch.randint(1, 50, (9, 1)),
    )
    together = sample_ids(logits.clone(), *settings)
    alone = [sample_ids(logits[i : i + 1].clone(), *(s[i : i + 1] for s in settings)) for i in range(9)]
    assert together.tolist() == torch.cat(alone).tolist()


def _generator(seed: int = 0) -> Generator:
    """An untrained generator with non-trivial batch-norm statistics."""
    torch.manual_seed(seed)
    model = Generator(GanConfig(image_size=16, z_dim=16, num_classes=10, g_channels=32)).eval()
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            module.running_mean.normal_(0.0, 0.2)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0.0, 0.2)
    return model


def test_folded_generator_draws_what_the_generator_draws() -> None:
    """Batch norms and the label embedding folded away: the same images, up to float32 rounding."""
    model = _generator()
    noise, labels = torch.randn(40, 16), torch.arange(40) % 10
    with torch.inference_mode():
        expected = model(noise, labels)
        folded = FoldedGenerator(model, CPU, torch.float32)(noise, labels)
    torch.testing.assert_close(folded, expected, atol=1e-5, rtol=1e-4)


@needs_bf16_packing
def test_folded_generator_in_bf16_draws_the_same_rows_in_any_batch() -> None:
    """In bf16 the images stay within a fraction of one grey level of 255, and each row is
    bit-identical for any batch."""
    model = _generator()
    noise, labels = torch.randn(40, 16), torch.arange(40) % 10
    with torch.inference_mode():
        expected = model(noise, labels)
        network = FoldedGenerator(model, CPU, torch.bfloat16)
        drawn = network(noise, labels).float()
        assert (drawn - expected).abs().max() / 2 < 0.5 / 255
        for rows in (1, 3, 8, 17):
            assert torch.equal(network(noise[:rows], labels[:rows]).float(), drawn[:rows])


def test_generator_that_folding_does_not_fit_runs_as_it_is() -> None:
    class Flipped(Generator):
        def forward(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
            return -super().forward(noise, labels)

    model = Flipped(_generator().config).eval()
    with torch.inference_mode():
        network, bucket = image_network(model, CPU)
    assert network is model and bucket == ROW_BUCKET
    with torch.inference_mode():
        network, bucket = image_network(_generator(), CPU)
    assert isinstance(network, FoldedGenerator)
    assert bucket == (1 if compute_dtype(CPU) == torch.bfloat16 else ROW_BUCKET)


@pytest.mark.parametrize(
    "layers",
    [
        [torch.nn.Linear(6, 5), torch.nn.BatchNorm1d(5), torch.nn.ReLU()],
        [torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4)],
        [torch.nn.ConvTranspose2d(3, 4, 4, 2, 1, bias=False), torch.nn.BatchNorm2d(4, affine=False)],
        [torch.nn.ConvTranspose2d(3, 4, 4, 2, 1), torch.nn.ReLU()],
    ],
)
def test_folded_layers_compute_the_same(layers: list[torch.nn.Module]) -> None:
    """Batch norms folded into the layer before them, and transposed convolutions rewritten as
    sub-pixel ones, give the original outputs."""
    torch.manual_seed(3)
    original = torch.nn.Sequential(*layers).eval()
    for module in original.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            module.running_mean.normal_(0.0, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    inputs = torch.randn(2, 6) if isinstance(layers[0], torch.nn.Linear) else torch.randn(2, 3, 5, 5)
    folded = torch.nn.Sequential(*(as_subpixel_convolution(layer) for layer in fold_batch_norms(original)))
    assert not any(isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)) for m in folded.modules())
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in folded.modules())
    with torch.no_grad():
        torch.testing.assert_close(folded(inputs), original(inputs), atol=1e-5, rtol=1e-4)
