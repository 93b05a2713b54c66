"""The conditional VAE: its networks, its loss and training, its checkpoint, and its packed inference
network against the decoder itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from generation.api import IMAGE_KINDS, MODEL_KINDS, MODEL_OUTPUTS, ImageRequest
from generation.models.checkpoint import load_checkpoint, save_checkpoint
from generation.models.vae import VaeConfig, VaeDecoder, VaeEncoder
from generation.registry import ModelRegistry
from generation.service.image_network import ROW_BUCKET, PackedVaeDecoder, image_network
from generation.service.inference import ImageGenerator, load_champion
from generation.service.packed import compute_dtype, onednn_packs
from generation.train.data import ImageData
from generation.train.run import IMAGE_TRAINERS
from generation.train.vae import VaeRecipe, gaussian_kl, train_vae, vae_loss

CPU = torch.device("cpu")
needs_bf16_packing = pytest.mark.skipif(
    not onednn_packs(torch.bfloat16), reason="oneDNN does not pack bf16 matrix products on this CPU"
)


def _decoder(num_classes: int = 10) -> VaeDecoder:
    """A decoder with a prior away from the standard normal, as a trained one has."""
    torch.manual_seed(1)
    decoder = VaeDecoder(VaeConfig(image_size=8, z_dim=4, num_classes=num_classes, hidden=16)).eval()
    with torch.no_grad():
        decoder.prior_mean.weight.normal_(0.0, 0.5)
        decoder.prior_log_std.weight.uniform_(-0.7, 0.3)
    return decoder


class _Silent:
    def step(self, step: int, loss: float) -> None:
        pass


def _blobs(count: int = 64) -> ImageData:
    """Two classes of 8x8 pictures: ink in the left half or in the right half, with noise."""
    torch.manual_seed(0)
    labels = torch.arange(count) % 2
    images = torch.rand(count, 1, 8, 8) * 0.2
    images[labels == 0, :, :, :4] += 0.7
    images[labels == 1, :, :, 4:] += 0.7
    return ImageData(images.clamp(0, 1), labels, "blobs", "blobs")


def test_decoder_draws_images_in_the_gan_range() -> None:
    decoder = _decoder()
    with torch.no_grad():
        images = decoder(torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 9]))
    assert images.shape == (5, 1, 8, 8)
    assert float(images.min()) >= -1 and float(images.max()) <= 1
    # The label changes the drawing: the condition reaches the decoder.
    noise = torch.randn(1, 4)
    assert not torch.allclose(decoder(noise, torch.tensor([0])), decoder(noise, torch.tensor([1])))


def test_decoder_moves_standard_noise_to_the_label_prior() -> None:
    decoder = _decoder()
    noise, labels = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 4, 9])
    with torch.no_grad():
        z = decoder.prior_mean(labels) + decoder.prior_log_std(labels).exp() * noise
        expected = torch.tanh(decoder.logits(z, labels) * 0.5).view(6, 1, 8, 8)
        torch.testing.assert_close(decoder(noise, labels), expected)


def test_kl_to_the_learned_prior_is_the_gaussian_kl() -> None:
    torch.manual_seed(2)
    mean, log_variance = torch.randn(5, 3), torch.randn(5, 3) * 0.5
    prior_mean, prior_log_std = torch.randn(5, 3), torch.randn(5, 3) * 0.3
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(mean, (0.5 * log_variance).exp()),
        torch.distributions.Normal(prior_mean, prior_log_std.exp()),
    ).sum()
    torch.testing.assert_close(gaussian_kl(mean, log_variance, prior_mean, prior_log_std), expected)
    assert float(gaussian_kl(prior_mean, 2 * prior_log_std, prior_mean, prior_log_std)) == pytest.approx(
        0, abs=1e-5
    )


def test_encoder_gives_one_mean_and_log_variance_per_latent_dimension() -> None:
    config = VaeConfig(image_size=8, z_dim=4, num_classes=10, hidden=16)
    mean, log_variance = VaeEncoder(config)(torch.rand(3, 1, 8, 8), torch.tensor([1, 2, 3]))
    assert mean.shape == log_variance.shape == (3, 4)


def test_unconditional_decoder_takes_no_label() -> None:
    decoder = _decoder(num_classes=0)
    noise = torch.randn(2, 4)
    assert torch.equal(decoder(noise, None), decoder(noise, torch.zeros(2, dtype=torch.long)))


def test_loss_is_the_reconstruction_plus_the_weighted_kl() -> None:
    config = VaeConfig(image_size=8, z_dim=4, num_classes=2, hidden=16)
    encoder, decoder = VaeEncoder(config), VaeDecoder(config)
    images, labels = _blobs(8).images, _blobs(8).labels
    with torch.no_grad():
        torch.manual_seed(5)
        plain, kl = vae_loss(encoder, decoder, images, labels, beta=0.0)
        torch.manual_seed(5)
        weighted, same_kl = vae_loss(encoder, decoder, images, labels, beta=0.5)
    assert float(kl) > 0 and torch.allclose(kl, same_kl)
    torch.testing.assert_close(weighted, plain + 0.5 * kl)


def test_training_lowers_the_loss_and_returns_the_decoder() -> None:
    data = _blobs()
    recipe = VaeRecipe(epochs=60, batch_size=16, image_size=8, z_dim=4, hidden=32, time_limit_s=None)
    decoder, config, info = train_vae(recipe, data, CPU, lambda total: _Silent(), seed=0)
    assert isinstance(decoder, VaeDecoder) and not decoder.training
    assert config == VaeConfig(8, 4, 2, 32) and info["steps"] == info["planned_steps"] == 60 * 4
    config_untrained = VaeConfig(8, 4, 2, 32)
    torch.manual_seed(0)
    with torch.no_grad():
        untrained = vae_loss(
            VaeEncoder(config_untrained), VaeDecoder(config_untrained), data.images, data.labels, 1.0
        )
    assert info["loss_last"] < 0.8 * float(untrained[0])
    # Drawn from the prior, each class puts its ink on its own side, on average.
    with torch.no_grad():
        drawn = decoder(torch.randn(200, 4), torch.arange(200) % 2)
    left, right = drawn[..., :4].mean((1, 2, 3)), drawn[..., 4:].mean((1, 2, 3))
    assert float(left[0::2].mean()) > float(right[0::2].mean()) + 0.5
    assert float(right[1::2].mean()) > float(left[1::2].mean()) + 0.5


def test_same_seed_trains_the_same_decoder() -> None:
    recipe = VaeRecipe.dry_run()
    recipe.image_size = 8
    first, _, _ = train_vae(recipe, _blobs(), CPU, lambda total: _Silent(), seed=3)
    second, _, _ = train_vae(recipe, _blobs(), CPU, lambda total: _Silent(), seed=3)
    for name, tensor in first.state_dict().items():
        assert torch.equal(tensor, second.state_dict()[name]), name


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    decoder = _decoder()
    save_checkpoint(tmp_path, "vae", decoder, decoder.config.to_dict())
    loaded = load_checkpoint(tmp_path, "vae")
    noise, labels = torch.randn(3, 4), torch.tensor([4, 5, 6])
    with torch.no_grad():
        assert torch.equal(loaded.model(noise, labels), decoder(noise, labels))
    with pytest.raises(ValueError, match="expected 'gan'"):
        load_checkpoint(tmp_path, "gan")


@pytest.mark.parametrize("num_classes", [10, 0])
def test_packed_decoder_draws_what_the_decoder_draws(num_classes: int) -> None:
    model = _decoder(num_classes)
    noise, labels = torch.randn(40, 4), torch.arange(40) % max(num_classes, 1)
    with torch.inference_mode():
        expected = model(noise, labels)
        packed = PackedVaeDecoder(model, CPU, torch.float32)(noise, labels)
    torch.testing.assert_close(packed, expected, atol=1e-5, rtol=1e-4)


@needs_bf16_packing
def test_packed_decoder_in_bf16_draws_the_same_rows_in_any_batch() -> None:
    model = _decoder()
    noise, labels = torch.randn(40, 4), torch.arange(40) % 10
    with torch.inference_mode():
        expected = model(noise, labels)
        network = PackedVaeDecoder(model, CPU, torch.bfloat16)
        drawn = network(noise, labels).float()
        assert (drawn - expected).abs().max() / 2 < 2 / 255
        for rows in (1, 3, 8, 17):
            assert torch.equal(network(noise[:rows], labels[:rows]).float(), drawn[:rows])


def test_image_network_packs_the_decoder_and_falls_back_for_others() -> None:
    with torch.inference_mode():
        network, bucket = image_network(_decoder(), CPU)
    assert isinstance(network, PackedVaeDecoder)
    assert bucket == (1 if compute_dtype(CPU) == torch.bfloat16 else ROW_BUCKET)

    class Doubled(VaeDecoder):
        def forward(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
            return super().forward(noise, labels) * 0.5

    odd = Doubled(_decoder().config).eval()
    with torch.inference_mode():
        network, bucket = image_network(odd, CPU)
    assert network is odd and bucket == ROW_BUCKET


@pytest.fixture(scope="module")
def vae_images(trained_models: Path) -> ImageGenerator:
    generator = load_champion(trained_models, "vae", device="cpu")
    assert isinstance(generator, ImageGenerator)
    return generator


def test_served_vae_is_the_champion(vae_images: ImageGenerator, trained_models: Path) -> None:
    assert vae_images.kind == "vae"
    assert vae_images.version == ModelRegistry(trained_models).champion("vae").version
    assert isinstance(vae_images.model, VaeDecoder)


def test_seeded_vae_images_are_identical_alone_or_in_a_batch(vae_images: ImageGenerator) -> None:
    request = ImageRequest(model="vae", digit=3, count=5, seed=11)
    [alone] = vae_images.generate_arrays([request])
    batch = vae_images.generate_arrays([ImageRequest(model="vae", count=7, seed=2), request])
    assert alone[1:] == (11, [3] * 5) and (alone[0] == batch[1][0]).all()
    assert alone[0].shape == (5, 16, 16) and alone[0].min() >= 0 and alone[0].max() <= 1
    [result] = vae_images.generate_batch([request])
    assert result.png.startswith(b"\x89PNG") and result.digits == [3] * 5


def test_image_kinds_are_the_kinds_that_draw_and_each_has_a_trainer() -> None:
    drawing = {kind for kind, output in MODEL_OUTPUTS.items() if output == "image"}
    assert set(IMAGE_KINDS) == drawing == set(IMAGE_TRAINERS) == {"gan", "vae"}
    assert set(IMAGE_KINDS) < set(MODEL_KINDS)
