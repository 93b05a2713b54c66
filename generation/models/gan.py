"""Conditional DCGAN for small grey-scale images: a generator and a projection discriminator."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


@dataclass(frozen=True)
class GanConfig:
    """Network shape; stored in checkpoint metadata so the loader rebuilds the same networks."""

    image_size: int = 16  # a power of two >= 8
    z_dim: int = 64
    num_classes: int = 10  # 0 = unconditional
    g_channels: int = 128  # channels at the 4x4 stage; halved at each up-sampling
    d_channels: int = 64

    def __post_init__(self) -> None:
        if self.image_size < 8 or self.image_size & (self.image_size - 1):
            raise ValueError(f"image_size must be a power of two >= 8, got {self.image_size}")

    @property
    def stages(self) -> int:
        return int(math.log2(self.image_size)) - 2

    def to_dict(self) -> dict:
        return asdict(self)


class Generator(nn.Module):
    """(noise, label) -> image in [-1, 1], shape (batch, 1, size, size)."""

    def __init__(self, config: GanConfig) -> None:
        super().__init__()
        self.config = config
        width = config.g_channels
        self.label_embedding = nn.Embedding(max(config.num_classes, 1), config.z_dim)
        self.project = nn.Sequential(
            nn.Linear(config.z_dim * 2, width * 16), nn.BatchNorm1d(width * 16), nn.ReLU(inplace=True)
        )
        blocks: list[nn.Module] = []
        for _ in range(config.stages):
            blocks += [
                nn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(inplace=True),
            ]
            width //= 2
        blocks += [nn.Conv2d(width, 1, 3, padding=1), nn.Tanh()]
        self.body = nn.Sequential(*blocks)

    def forward(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None or self.config.num_classes == 0:
            labels = torch.zeros(noise.shape[0], dtype=torch.long, device=noise.device)
        hidden = self.project(torch.cat([noise, self.label_embedding(labels)], dim=1))
        return self.body(hidden.view(noise.shape[0], self.config.g_channels, 4, 4))


class Discriminator(nn.Module):
    """Image (+ label) -> realness score, with a projection term for the label (Miyato & Koyama, 2018)."""

    def __init__(self, config: GanConfig) -> None:
        super().__init__()
        self.config = config
        width = config.d_channels
        layers: list[nn.Module] = [spectral_norm(nn.Conv2d(1, width, 3, padding=1)), nn.LeakyReLU(0.2)]
        for _ in range(config.stages):
            layers += [spectral_norm(nn.Conv2d(width, width * 2, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            width *= 2
        self.body = nn.Sequential(*layers)
        # One extra channel with the feature spread of each sample's class in the batch (minibatch
        # standard deviation, per class) lets D spot a generator that lacks variety.
        self.features = (width + 1) * 16
        self.score = spectral_norm(nn.Linear(self.features, 1))
        self.label_projection = spectral_norm(nn.Embedding(max(config.num_classes, 1), self.features))
        # An auxiliary classifier head sharpens the class of each sample (AC-GAN style).
        self.classify = nn.Linear(self.features, max(config.num_classes, 1))

    def forward(
        self, images: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Realness scores (batch,) and class logits (batch, classes)."""
        hidden = self.body(images)
        spread = self._spread(hidden, labels)
        hidden = torch.cat(
            [hidden, spread.view(-1, 1, 1, 1).expand(-1, 1, *hidden.shape[2:])], dim=1
        ).flatten(1)
        score = self.score(hidden).squeeze(1)
        if labels is not None and self.config.num_classes > 0:
            score = score + (self.label_projection(labels) * hidden).sum(dim=1)
        return score, self.classify(hidden)

    def _spread(self, hidden: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Per sample: the mean feature spread (std) of the batch's images that share its label.

        Within the class, not over the whole batch: a mixed-class batch is varied even when every
        class has collapsed to one drawing, so only the per-class spread exposes a lack of variety."""
        batch = hidden.shape[0]
        flat = hidden.flatten(1).float()
        if labels is None or self.config.num_classes == 0:
            spread = flat.std(dim=0, unbiased=False).mean() if batch > 1 else flat.new_zeros(())
            return spread.expand(batch).to(hidden.dtype)
        members = F.one_hot(labels, self.config.num_classes).float()  # (batch, classes)
        counts = members.sum(0).clamp(min=1)[:, None]
        mean = members.T @ flat / counts
        variance = (members.T @ flat.square() / counts - mean.square()).clamp(min=0)
        spread = (variance + 1e-8).sqrt().mean(1)  # (classes,)
        return spread[labels].to(hidden.dtype)
