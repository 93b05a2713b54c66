"""The image generators rearranged for inference. GAN: batch norms folded away, sub-pixel convolutions,
bf16. VAE: packed matrix products. Both: the label folded into the first layer as one row per class."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable

import torch
from torch import nn

from generation.models.gan import Generator
from generation.models.image import ImageModel
from generation.models.vae import VaeDecoder
from generation.service.packed import PROBE_ROWS, PackedLinear, compute_dtype

log = logging.getLogger(__name__)

# Off the bf16 oneDNN path (fp32, other devices) the generator runs on a multiple of this many rows:
# fp32 kernels were measured to give a row other low bits for 1-3 rows than for more, which would
# change a seeded grid. The bf16 path gives the same bits for any number of rows (tests check it).
ROW_BUCKET = 16


def _fold_batch_norm(layer: nn.Module, norm: nn.Module) -> nn.Module:
    """A copy of `layer` (Linear, Conv2d or ConvTranspose2d) that also applies the eval-mode `norm`."""
    folded = copy.deepcopy(layer)
    scale = torch.rsqrt(norm.running_var + norm.eps)
    shift = -norm.running_mean * scale
    if norm.affine:
        scale, shift = scale * norm.weight.detach(), shift * norm.weight.detach() + norm.bias.detach()
    out_dim = 1 if isinstance(layer, nn.ConvTranspose2d) else 0
    shape = [1] * folded.weight.dim()
    shape[out_dim] = -1
    folded.weight = nn.Parameter(folded.weight.detach() * scale.view(shape))
    bias = shift if folded.bias is None else folded.bias.detach() * scale + shift
    folded.bias = nn.Parameter(bias)
    return folded


def fold_batch_norms(layers: nn.Sequential) -> nn.Sequential:
    """The same layers with every batch norm that follows a linear or convolution folded into it."""
    folded: list[nn.Module] = []
    foldable = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
    for layer in layers:
        is_norm = isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)) and layer.track_running_stats
        if is_norm and folded and isinstance(folded[-1], foldable) and getattr(folded[-1], "groups", 1) == 1:
            folded[-1] = _fold_batch_norm(folded[-1], layer)
        else:
            folded.append(copy.deepcopy(layer))
    return nn.Sequential(*folded)


class _DepthToSpace(nn.Module):
    """(batch, 4c, h, w), channel (2a + b) c + k -> (batch, c, 2h, 2w), pixel (2i + a, 2j + b) of
    channel k: one copy of contiguous runs of channels in channels-last memory (PixelShuffle's channel
    order copies single values and is slower here)."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = inputs.shape
        pixels = inputs.permute(0, 2, 3, 1).reshape(batch, height, width, 2, 2, channels // 4)
        pixels = pixels.permute(0, 1, 3, 2, 4, 5).reshape(batch, 2 * height, 2 * width, channels // 4)
        return pixels.permute(0, 3, 1, 2)


def as_subpixel_convolution(layer: nn.Module) -> nn.Module:
    """A ConvTranspose2d(kernel 4, stride 2, padding 1) as a 3x3 Conv2d to four times the channels, one
    group per output phase, then _DepthToSpace: the same sums, but oneDNN runs that ordinary
    convolution faster. Any other layer comes back as it is."""
    if not isinstance(layer, nn.ConvTranspose2d):
        return layer
    shape = (layer.kernel_size, layer.stride, layer.padding, layer.output_padding, layer.dilation)
    if shape != ((4, 4), (2, 2), (1, 1), (0, 0), (1, 1)) or layer.groups != 1:
        return layer
    weight = layer.weight.detach()  # (in, out, 4, 4)
    inputs, outputs = weight.shape[:2]
    kernel = weight.new_zeros(2, 2, outputs, inputs, 3, 3)
    # Output row 2i + a takes input rows i - 1 + tap, tap 0..2, through kernel row a + 3 - 2 tap.
    taps = [
        (phase, tap, phase + 3 - 2 * tap)
        for phase in (0, 1)
        for tap in range(3)
        if 0 <= phase + 3 - 2 * tap < 4
    ]
    for row_phase, row_tap, kernel_row in taps:
        for column_phase, column_tap, kernel_column in taps:
            kernel[row_phase, column_phase, :, :, row_tap, column_tap] = weight[
                :, :, kernel_row, kernel_column
            ].T
    convolution = nn.Conv2d(inputs, 4 * outputs, 3, padding=1, bias=layer.bias is not None)
    convolution.weight = nn.Parameter(kernel.reshape(4 * outputs, inputs, 3, 3))
    if layer.bias is not None:
        convolution.bias = nn.Parameter(layer.bias.detach().repeat(4))
    return nn.Sequential(convolution, _DepthToSpace())


class ConditionedLinear:
    """A Linear over `cat(noise, code of the label)` as a packed product of the noise plus a stored row
    per class (bias + the label code's share), picked by index: the label costs no matrix product."""

    def __init__(
        self,
        linear: nn.Linear,
        z_dim: int,
        label_codes: torch.Tensor,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        weight = linear.weight.detach().float()
        bias = linear.bias.detach().float() if linear.bias is not None else weight.new_zeros(weight.shape[0])
        if weight.shape[1] != z_dim + label_codes.shape[1]:
            raise ValueError("the first layer does not take the noise and the label code")
        self.noise_layer = PackedLinear(weight[:, :z_dim], None, dtype, device)
        self.label_rows = torch.addmm(bias, label_codes.float(), weight[:, z_dim:].T).to(
            device=device, dtype=dtype
        )
        self.dtype = dtype

    def __call__(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.noise_layer(noise.to(self.dtype)).add_(self.label_rows.index_select(0, labels))


class FoldedGenerator:
    """The GAN generator arranged for inference: batch norms folded away, the label embedding folded
    into the first layer as one row per class, transposed convolutions as sub-pixel ones, bf16
    channels-last convolutions on CPU.

    Same inputs and outputs as Generator.forward; rows come out identical whatever the batch size on
    the bf16 oneDNN path (tests check it)."""

    def __init__(self, model: Generator, device: torch.device, dtype: torch.dtype) -> None:
        config = model.config
        project = fold_batch_norms(model.project)
        linear = project[0]
        if not isinstance(linear, nn.Linear) or len(project) != 2 or not isinstance(project[1], nn.ReLU):
            raise ValueError("the generator's projection is not Linear, BatchNorm1d, ReLU")
        self.channels = config.g_channels
        self.first = ConditionedLinear(
            linear, config.z_dim, model.label_embedding.weight.detach(), dtype, device
        )
        body = nn.Sequential(*(as_subpixel_convolution(layer) for layer in fold_batch_norms(model.body)))
        self.body = body.to(device=device, dtype=dtype, memory_format=torch.channels_last).requires_grad_(
            False
        )

    def __call__(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        hidden = self.first(noise, labels).relu_()
        hidden = hidden.view(noise.shape[0], self.channels, 4, 4).contiguous(
            memory_format=torch.channels_last
        )
        return self.body(hidden)


class PackedVaeDecoder:
    """The VAE decoder arranged for inference: the noise moved to the label's prior by one multiply-add,
    the one-hot label folded into the first layer as one row per class, every weight packed for oneDNN,
    bf16 products on CPUs with native bf16.

    Same inputs and outputs as VaeDecoder.forward."""

    def __init__(self, model: VaeDecoder, device: torch.device, dtype: torch.dtype) -> None:
        config = model.config
        layers = list(model.body)
        linears = [layer for layer in layers if isinstance(layer, nn.Linear)]
        if len(layers) != 2 * len(linears) - 1 or not all(
            isinstance(layer, nn.ReLU) for layer in layers[1::2]
        ):
            raise ValueError("the decoder is not Linear layers with ReLU between them")
        codes = torch.eye(config.num_classes) if config.num_classes else torch.zeros(1, 0)
        self.prior_mean = model.prior_mean.weight.detach().to(device=device, dtype=dtype)
        self.prior_std = model.prior_log_std.weight.detach().exp().to(device=device, dtype=dtype)
        self.first = ConditionedLinear(linears[0], config.z_dim, codes, dtype, device)
        self.rest = [PackedLinear(layer.weight, layer.bias, dtype, device) for layer in linears[1:]]
        self.size = config.image_size
        self.dtype = dtype

    def __call__(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        z = torch.addcmul(
            self.prior_mean.index_select(0, labels),
            noise.to(self.dtype),
            self.prior_std.index_select(0, labels),
        )
        hidden = self.first(z, labels)
        for layer in self.rest:
            hidden = layer(hidden.relu_())
        return torch.tanh(hidden.mul_(0.5)).view(noise.shape[0], 1, self.size, self.size)


def _rearranged(
    model: ImageModel, device: torch.device, dtype: torch.dtype
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if isinstance(model, VaeDecoder):
        return PackedVaeDecoder(model, device, dtype)
    return FoldedGenerator(model, device, dtype)


def image_network(
    model: ImageModel, device: torch.device
) -> tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], int]:
    """The fastest network that draws what `model` draws, and the row multiple it must run on."""
    dtype = compute_dtype(device)
    try:
        folded = _rearranged(model, device, torch.float32)
        probe = torch.Generator().manual_seed(0)
        noise = torch.randn(PROBE_ROWS, model.config.z_dim, generator=probe).to(device)
        labels = torch.arange(PROBE_ROWS, device=device) % max(model.config.num_classes, 1)
        if not torch.allclose(folded(noise, labels), model(noise, labels), atol=1e-4, rtol=1e-4):
            raise ValueError("the folded generator draws something else")
        if dtype != torch.float32:
            folded = _rearranged(model, device, dtype)
    except (ValueError, AttributeError, TypeError, IndexError, RuntimeError) as exc:
        log.warning("image generator: using the plain network (%s)", exc)
        return model, ROW_BUCKET
    # bf16 through oneDNN gives each row the same bits for any number of rows; fp32 MKL does not.
    return folded, 1 if dtype == torch.bfloat16 else ROW_BUCKET
