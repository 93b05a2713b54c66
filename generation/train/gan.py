"""Training recipe for the conditional DCGAN (hinge loss, projection + auxiliary-classifier
discriminator with spectral norm and a per-class minibatch-spread channel, random-shift
augmentation, and an EMA copy of the generator)."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from generation.models.device import bf16_autocast
from generation.models.gan import Discriminator, GanConfig, Generator
from generation.train.data import ImageData
from generation.train.progress import SAFETY_TIME_LIMIT_S, ProgressReporter
from generation.train.schedule import StepSchedule


@dataclass
class GanRecipe:
    """Hyperparameters; the defaults are the CPU recipe."""

    # Enough steps to meet every quality target in float32 on an AVX2-only CPU within the training-time
    # budget (benchmarks.generation_quality checks both).
    epochs: int = 150
    batch_size: int = 64
    image_size: int = 16
    z_dim: int = 64
    g_channels: int = 32  # small on purpose: grids stay quick to draw on a CPU
    d_channels: int = 32
    lr_g: float = 2e-4
    lr_d: float = 4e-4
    aux_weight: float = 0.1  # weight of the auxiliary class loss (sharper classes)
    shift: int = 1  # random translation of real and fake images seen by D, in pixels
    ema_decay: float = 0.995
    # bf16 autocast on CPUs with native bf16: faster there, but a default model that depends on the CPU.
    cpu_bf16: bool = False
    max_steps: int | None = None
    # A safety net only: the recipe is its steps. A run it cuts short says so in its report.
    time_limit_s: float | None = SAFETY_TIME_LIMIT_S

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def dry_run(cls) -> GanRecipe:
        return cls(epochs=1, batch_size=16, g_channels=32, d_channels=16, z_dim=16, max_steps=6)

    @classmethod
    def for_cuda(cls) -> GanRecipe:
        return cls(batch_size=256, epochs=600, time_limit_s=None)


def _shift(images: torch.Tensor, limit: int) -> torch.Tensor:
    """Roll each batch by one random offset: cheap, differentiable augmentation for D."""
    if limit <= 0:
        return images
    dx, dy = (int(v) for v in torch.randint(-limit, limit + 1, (2,)))
    return torch.roll(images, shifts=(dy, dx), dims=(2, 3))


@torch.no_grad()
def _update_ema(ema: Generator, model: Generator, decay: float) -> None:
    for ema_param, param in zip(ema.parameters(), model.parameters(), strict=True):
        ema_param.lerp_(param, 1.0 - decay)
    for ema_buffer, buffer in zip(ema.buffers(), model.buffers(), strict=True):
        ema_buffer.copy_(buffer)


@torch.no_grad()
def _recompute_batch_norm(
    generator: Generator, config: GanConfig, device: torch.device, conditional: bool
) -> None:
    """Batch-norm statistics that match the EMA weights (the copied ones belong to the raw generator)."""
    for module in generator.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the passes below
    generator.train()
    for _ in range(16):
        noise = torch.randn(256, config.z_dim, device=device)
        labels = torch.randint(0, max(config.num_classes, 1), (256,), device=device) if conditional else None
        generator(noise, labels)
    for module in generator.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = 0.1
    generator.eval()


def train_gan(
    recipe: GanRecipe, data: ImageData, device: torch.device, reporter_factory, seed: int
) -> tuple[Generator, GanConfig, dict]:
    """Train on `data` (images in [0, 1]); returns the EMA generator on the CPU."""
    torch.manual_seed(seed)
    config = GanConfig(
        recipe.image_size, recipe.z_dim, data.num_classes, recipe.g_channels, recipe.d_channels
    )
    generator, discriminator = Generator(config).to(device), Discriminator(config).to(device)
    ema = copy.deepcopy(generator).eval()
    opt_g = torch.optim.Adam(generator.parameters(), lr=recipe.lr_g, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=recipe.lr_d, betas=(0.0, 0.9))
    images = (data.images * 2 - 1).to(device)
    labels = data.labels.to(device) if data.labels is not None else None
    conditional = labels is not None
    schedule = StepSchedule(
        len(images), recipe.batch_size, recipe.epochs, recipe.max_steps, recipe.time_limit_s
    )
    reporter: ProgressReporter = reporter_factory(schedule.total)
    use_amp = bf16_autocast(device, recipe.cpu_bf16)
    d_loss = g_loss = torch.tensor(0.0)
    for step, index in schedule.batches(device):
        real = images[index]
        real_labels = labels[index] if conditional else None
        fake_labels = (
            torch.randint(0, config.num_classes, (len(index),), device=device) if conditional else None
        )
        noise = torch.randn(len(index), config.z_dim, device=device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            # Discriminator: hinge loss, plus the auxiliary class loss on real images.
            fake = generator(noise, fake_labels)
            real_score, real_logits = discriminator(_shift(real, recipe.shift), real_labels)
            fake_score, _ = discriminator(_shift(fake.detach(), recipe.shift), fake_labels)
            d_loss = F.relu(1 - real_score).mean() + F.relu(1 + fake_score).mean()
            if conditional:
                d_loss = d_loss + recipe.aux_weight * F.cross_entropy(real_logits.float(), real_labels)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            score, logits = discriminator(_shift(fake, recipe.shift), fake_labels)
            g_loss = -score.mean()
            if conditional:
                g_loss = g_loss + recipe.aux_weight * F.cross_entropy(logits.float(), fake_labels)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        _update_ema(ema, generator, recipe.ema_decay if step > 100 else 0.0)
        reporter.step(step + 1, g_loss.item())
    _recompute_batch_norm(ema, config, device, conditional)
    info = {
        **schedule.info(),
        "d_loss_last": round(d_loss.item(), 4),
        "g_loss_last": round(g_loss.item(), 4),
        "train_images": len(images),
    }
    return ema.cpu().eval(), config, info
