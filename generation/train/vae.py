"""Training recipe for the conditional VAE (Bernoulli pixel likelihood, a learned prior per class, and
a KL weight warmed up from zero to a beta below 1)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from generation.models.device import bf16_autocast
from generation.models.vae import VaeConfig, VaeDecoder, VaeEncoder
from generation.train.data import ImageData
from generation.train.progress import SAFETY_TIME_LIMIT_S
from generation.train.schedule import StepSchedule


@dataclass
class VaeRecipe:
    """Hyperparameters; the defaults are the CPU recipe."""

    # Sized to meet every quality target in float32 within the training-time budget on 2 cores;
    # more epochs still lower the Frechet ratio a little.
    epochs: int = 1500
    batch_size: int = 64
    image_size: int = 16
    z_dim: int = 16
    hidden: int = 256
    lr: float = 1e-3
    lr_final: float = 1e-4  # cosine decay to this: the last epochs polish rather than jump
    # A beta below 1 keeps more of each digit in the latent, so samples are sharper and as varied as
    # real ones; the learned prior keeps samples where the decoder was trained. The weight rises from
    # 0 over the first `kl_warmup` of the steps, so the latent is put to use before it is pulled in.
    beta: float = 0.1
    kl_warmup: float = 0.1
    cpu_bf16: bool = False  # bf16 autocast on CPUs with native bf16 (a CPU-dependent default model)
    # CPU threads while training (0 = the process's setting). Products this small run fastest on one:
    # on a busy 2-core machine a second thread made each step many times slower, waiting on the
    # other at every product; one thread also sums in the same order on every machine.
    cpu_threads: int = 1
    max_steps: int | None = None
    # A safety net only: the recipe is its steps. A run it cuts short says so in its report.
    time_limit_s: float | None = SAFETY_TIME_LIMIT_S

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def dry_run(cls) -> VaeRecipe:
        return cls(epochs=1, batch_size=16, z_dim=4, hidden=32, max_steps=6)

    @classmethod
    def for_cuda(cls) -> VaeRecipe:
        return cls(time_limit_s=None)


def gaussian_kl(
    mean: torch.Tensor, log_variance: torch.Tensor, prior_mean: torch.Tensor, prior_log_std: torch.Tensor
) -> torch.Tensor:
    """KL(N(mean, exp(log_variance)) || N(prior_mean, exp(prior_log_std)^2)), summed over everything."""
    ratio = (log_variance - 2 * prior_log_std).exp()
    distance = (mean - prior_mean).square() * (-2 * prior_log_std).exp()
    return 0.5 * (ratio + distance - 1 - log_variance + 2 * prior_log_std).float().sum()


def vae_loss(
    encoder: VaeEncoder, decoder: VaeDecoder, images: torch.Tensor, labels: torch.Tensor | None, beta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(beta-weighted negative ELBO, KL term), both per image; images in [0, 1]."""
    mean, log_variance = encoder(images, labels)
    z = mean + torch.randn_like(mean) * (0.5 * log_variance).exp()
    logits = decoder.logits(z, labels).float()
    reconstruction = F.binary_cross_entropy_with_logits(logits, images.flatten(1), reduction="sum")
    kl = gaussian_kl(mean, log_variance, *decoder.prior(labels, images.shape[0]))
    rows = images.shape[0]
    return (reconstruction + beta * kl) / rows, kl / rows


def train_vae(
    recipe: VaeRecipe, data: ImageData, device: torch.device, reporter_factory, seed: int
) -> tuple[VaeDecoder, VaeConfig, dict]:
    """Train on `data` (images in [0, 1]); returns the decoder on the CPU."""
    threads = torch.get_num_threads()
    if device.type == "cpu" and recipe.cpu_threads > 0:
        torch.set_num_threads(recipe.cpu_threads)
    try:
        return _train(recipe, data, device, reporter_factory, seed)
    finally:
        torch.set_num_threads(threads)


def _train(
    recipe: VaeRecipe, data: ImageData, device: torch.device, reporter_factory, seed: int
) -> tuple[VaeDecoder, VaeConfig, dict]:
    torch.manual_seed(seed)
    config = VaeConfig(recipe.image_size, recipe.z_dim, data.num_classes, recipe.hidden)
    encoder, decoder = VaeEncoder(config).to(device), VaeDecoder(config).to(device)
    parameters = [*encoder.parameters(), *decoder.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=recipe.lr)
    images = data.images.to(device)
    labels = data.labels.to(device) if data.labels is not None else None
    schedule = StepSchedule(
        len(images), recipe.batch_size, recipe.epochs, recipe.max_steps, recipe.time_limit_s
    )
    lr_schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=schedule.total, eta_min=recipe.lr_final
    )
    reporter = reporter_factory(schedule.total)
    use_amp = bf16_autocast(device, recipe.cpu_bf16)
    warmup_steps = max(1, round(recipe.kl_warmup * schedule.total))
    loss = kl = torch.tensor(0.0)
    encoder.train()
    decoder.train()
    for step, index in schedule.batches(device):
        beta = recipe.beta * min(1.0, (step + 1) / warmup_steps)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            loss, kl = vae_loss(
                encoder, decoder, images[index], labels[index] if labels is not None else None, beta
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        lr_schedule.step()
        reporter.step(step + 1, loss.item())
    info = {
        **schedule.info(),
        "loss_last": round(loss.item(), 4),
        "kl_last": round(kl.item(), 4),
        "train_images": len(images),
    }
    return decoder.cpu().eval(), config, info
