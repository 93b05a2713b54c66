"""Matrix products for fast CPU inference: weights packed once for oneDNN, bf16 where the CPU has it.

Some CPUs refuse a packed or bf16 path (oneDNN's bf16 packing needs AVX512-BW/VL/DQ or AVX-NE-CONVERT;
builds without oneDNN have no packing at all). Each path is tried once on a tiny matrix; a refused one
is logged once and serving falls back to plain float32 matrix products.
"""

from __future__ import annotations

import functools
import logging

import torch
import torch.nn.functional as F

from generation.models.device import native_cpu_bfloat16

log = logging.getLogger(__name__)

PROBE_ROWS = 8  # rows of random input that check a rearranged network against the original at load


def _onednn_linear_available(device: torch.device) -> bool:
    return (
        device.type == "cpu"
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
        and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
    )


@functools.cache
def onednn_packs(dtype: torch.dtype) -> bool:
    """Whether oneDNN packs and multiplies `dtype` weights on this CPU; a refusal is logged once."""
    if not _onednn_linear_available(torch.device("cpu")):
        return False
    try:
        weight = torch.ops.mkldnn._reorder_linear_weight(torch.ones(8, 8, dtype=dtype))
        torch.ops.mkldnn._linear_pointwise(torch.ones(2, 8, dtype=dtype), weight, None, "none", [], "")
    except RuntimeError as exc:
        log.warning("this CPU refuses packed %s matrix products (%s); using plain float32", dtype, exc)
        return False
    return True


def compute_dtype(device: torch.device) -> torch.dtype:
    """bf16 matrix products on CPUs with native bf16 that oneDNN packs (the generators are trained
    under bf16 autocast there too), float32 elsewhere."""
    if _onednn_linear_available(device) and native_cpu_bfloat16() and onednn_packs(torch.bfloat16):
        return torch.bfloat16
    return torch.float32


class PackedLinear:
    """x @ weight.T + bias in `dtype`. On CPU the weight is packed once for oneDNN: its matrix product
    is faster here than MKL's, and gives each row the same result whatever the number of rows (MKL's
    does not), which keeps a seeded request's text identical alone or in any batch. Where oneDNN
    refuses to pack `dtype`, a plain matrix product computes the same."""

    def __init__(
        self, weight: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype, device: torch.device
    ) -> None:
        self.onednn = _onednn_linear_available(device) and onednn_packs(dtype)
        weight = weight.detach().to(device=device, dtype=dtype).contiguous()
        self.weight = torch.ops.mkldnn._reorder_linear_weight(weight) if self.onednn else weight
        self.bias = None if bias is None else bias.detach().to(device=device, dtype=dtype).contiguous()

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.onednn:
            return torch.ops.mkldnn._linear_pointwise(inputs, self.weight, self.bias, "none", [], "")
        return F.linear(inputs, self.weight, self.bias)
