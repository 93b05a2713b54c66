"""Device choice shared by the trainer and the inference wrappers."""

from __future__ import annotations

import functools
from pathlib import Path

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA, then Apple's MPS, then the CPU; an explicit choice must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but no CUDA device is available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("--device mps was asked for, but MPS is not available")
    if name not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or mps")
    return torch.device(name)


@functools.cache
def native_cpu_bfloat16() -> bool:
    """True when this CPU multiplies bf16 natively (AVX512-BF16 or AMX). oneDNN also says it supports
    bf16 on AVX512 CPUs that only emulate it, where bf16 runs slower than float32."""
    try:
        if not (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
            return False
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except (AttributeError, RuntimeError, OSError):
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def bf16_autocast(device: torch.device, on_cpu: bool = True) -> bool:
    """Whether training on `device` runs under bf16 autocast: always on CUDA; on CPUs with native bf16
    when the recipe allows it (faster there); never elsewhere."""
    return device.type == "cuda" or (device.type == "cpu" and on_cpu and native_cpu_bfloat16())
