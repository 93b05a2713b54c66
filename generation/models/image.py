"""The image generators, alike to their users: `model(noise, labels)` draws (batch, 1, size, size) in
[-1, 1], and `model.config` gives `image_size`, `z_dim` and `num_classes` (0 = unconditional)."""

from __future__ import annotations

from generation.models.gan import Generator
from generation.models.vae import VaeDecoder

ImageModel = Generator | VaeDecoder
