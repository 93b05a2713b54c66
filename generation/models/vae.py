"""Conditional VAE for small grey-scale images: MLP encoder and decoder, the one-hot label fed to both,
and a learned prior per label (Sohn et al.'s conditional prior, a diagonal Gaussian for each class).

Only the decoder, which holds the prior, is checkpointed and served: like the GAN's generator it maps
(standard normal noise, label) to an image in [-1, 1], so sampling, evaluation and serving treat both
image generators alike. The noise is drawn at temperature 1 and moved to the label's prior.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class VaeConfig:
    """Network shape; stored in checkpoint metadata so the loader rebuilds the same decoder."""

    image_size: int = 16
    z_dim: int = 16
    num_classes: int = 10  # 0 = unconditional
    hidden: int = 256  # width of the layer next to the latent; the layer next to the pixels is twice it

    def __post_init__(self) -> None:
        if self.image_size < 4 or self.z_dim < 1 or self.hidden < 1 or self.num_classes < 0:
            raise ValueError(f"bad VAE shape: {self}")

    @property
    def pixels(self) -> int:
        return self.image_size * self.image_size

    def to_dict(self) -> dict:
        return asdict(self)


def one_hot(labels: torch.Tensor | None, config: VaeConfig, rows: int, like: torch.Tensor) -> torch.Tensor:
    """The label as a one-hot condition, (rows, num_classes); empty for an unconditional model."""
    if labels is None or config.num_classes == 0:
        return like.new_zeros(rows, config.num_classes)
    return F.one_hot(labels, config.num_classes).to(like.dtype)


class VaeDecoder(nn.Module):
    """(noise, label) -> image in [-1, 1], shape (batch, 1, size, size)."""

    def __init__(self, config: VaeConfig) -> None:
        super().__init__()
        self.config = config
        # The prior p(z | label) starts as the standard normal and is learned with the rest: a learned
        # prior follows where the encoder puts each class, so samples from it land where the decoder
        # was trained.
        self.prior_mean = nn.Embedding(max(config.num_classes, 1), config.z_dim)
        self.prior_log_std = nn.Embedding(max(config.num_classes, 1), config.z_dim)
        nn.init.zeros_(self.prior_mean.weight)
        nn.init.zeros_(self.prior_log_std.weight)
        self.body = nn.Sequential(
            nn.Linear(config.z_dim + config.num_classes, config.hidden),
            nn.ReLU(),
            nn.Linear(config.hidden, 2 * config.hidden),
            nn.ReLU(),
            nn.Linear(2 * config.hidden, config.pixels),
        )

    def prior(self, labels: torch.Tensor | None, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The prior's mean and log standard deviation for each row's label, each (rows, z_dim)."""
        if labels is None or self.config.num_classes == 0:
            labels = torch.zeros(rows, dtype=torch.long, device=self.prior_mean.weight.device)
        return self.prior_mean(labels), self.prior_log_std(labels)

    def logits(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Per-pixel ink logits (batch, pixels) of latent `z`: what the Bernoulli likelihood is trained on."""
        return self.body(torch.cat([z, one_hot(labels, self.config, z.shape[0], z)], dim=1))

    def forward(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        mean, log_std = self.prior(labels, noise.shape[0])
        z = mean + log_std.exp() * noise
        # tanh(x / 2) = 2 sigmoid(x) - 1: the ink probability on the GAN's [-1, 1] scale.
        images = torch.tanh(self.logits(z, labels) * 0.5)
        return images.view(noise.shape[0], 1, self.config.image_size, self.config.image_size)


class VaeEncoder(nn.Module):
    """(image in [0, 1], label) -> the posterior's mean and log-variance, each (batch, z_dim)."""

    def __init__(self, config: VaeConfig) -> None:
        super().__init__()
        self.config = config
        self.body = nn.Sequential(
            nn.Linear(config.pixels + config.num_classes, 2 * config.hidden),
            nn.ReLU(),
            nn.Linear(2 * config.hidden, config.hidden),
            nn.ReLU(),
        )
        self.mean = nn.Linear(config.hidden, config.z_dim)
        self.log_variance = nn.Linear(config.hidden, config.z_dim)

    def forward(
        self, images: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        flat = images.flatten(1)
        hidden = self.body(torch.cat([flat, one_hot(labels, self.config, flat.shape[0], flat)], dim=1))
        return self.mean(hidden), self.log_variance(hidden)
