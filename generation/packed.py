"""Matrix products for fast CPU inference: weights packed once for oneDNN, bf16 where the CPU has it."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from generation.models.device import native_cpu_bfloat16

PROBE_ROWS = 8  # rows of random input that check a rearranged network against the original at load


def _onednn_linear_available(device: torch.device) -> bool:
    return (
        device.type == "cpu"
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
        and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
    )


def compute_dtype(device: torch.device) -> torch.dtype:
    """bf16 matrix products on CPUs with native bf16 (the generators are trained under bf16 autocast
    there too), float32 elsewhere."""
    if _onednn_linear_available(device) and native_cpu_bfloat16():
        return torch.bfloat16
    return torch.float32


class PackedLinear:
    """x @ weight.T + bias in `dtype`. On CPU the weight is packed once for oneDNN: its matrix product
    is faster here than MKL's, and gives each row the same result whatever the number of rows (MKL's
    does not), which keeps a seeded request's text identical alone or in any batch."""

    def __init__(
        self, weight: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype, device: torch.device
    ) -> None:
        self.onednn = _onednn_linear_available(device)
        weight = weight.detach().to(device=device, dtype=dtype).contiguous()
        self.weight = torch.ops.mkldnn._reorder_linear_weight(weight) if self.onednn else weight
        self.bias = None if bias is None else bias.detach().to(device=device, dtype=dtype).contiguous()

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.onednn:
            return torch.ops.mkldnn._linear_pointwise(inputs, self.weight, self.bias, "none", [], "")
        return F.linear(inputs, self.weight, self.bias)
