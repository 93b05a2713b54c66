"""Packed matrix products: where oneDNN refuses a packed or bf16 path, serving runs plain float32."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from generation.api import ImageRequest, TextRequest
from generation.models import device as device_module
from generation.service import packed
from generation.service.inference import ImageGenerator, TextGenerator, load_champion
from generation.service.packed import PackedLinear, compute_dtype, onednn_packs

CPU = torch.device("cpu")


@pytest.fixture()
def refusing_cpu(monkeypatch: pytest.MonkeyPatch):
    """A CPU that claims native bf16 but whose oneDNN refuses to pack any weight, as an AVX2-only
    CPU refuses bf16 packing."""
    calls = []

    def refuse(weight: torch.Tensor) -> torch.Tensor:
        calls.append(weight.dtype)
        raise RuntimeError("mkldnn_reorder_linear_weight: bf16 path needs the cpu support avx512bw")

    monkeypatch.setattr(torch.ops.mkldnn, "_reorder_linear_weight", refuse)
    monkeypatch.setattr(device_module, "native_cpu_bfloat16", lambda: True)
    monkeypatch.setattr(packed, "native_cpu_bfloat16", lambda: True)
    onednn_packs.cache_clear()
    yield calls
    onednn_packs.cache_clear()  # the next probe sees the real oneDNN again (monkeypatch restores it)


def test_packed_linear_falls_back_where_onednn_refuses(refusing_cpu, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="generation.service.packed")
    assert compute_dtype(CPU) == torch.float32
    weight, bias, inputs = torch.randn(5, 7), torch.randn(5), torch.randn(3, 7)
    for _ in range(3):
        linear = PackedLinear(weight, bias, torch.float32, CPU)
        assert not linear.onednn
        torch.testing.assert_close(linear(inputs), inputs @ weight.T + bias)
    refusals = [record for record in caplog.records if "refuses packed" in record.getMessage()]
    assert len(refusals) == 2  # once for bf16, once for float32; never again
    assert refusing_cpu == [torch.bfloat16, torch.float32]


def test_generators_serve_where_onednn_refuses(refusing_cpu, trained_models: Path) -> None:
    """The trained champions load and answer: seeded images identical alone and in a batch, seeded
    text reproducible."""
    images = load_champion(trained_models, "gan", device="cpu")
    texts = load_champion(trained_models, "lstm", device="cpu")
    assert isinstance(images, ImageGenerator) and isinstance(texts, TextGenerator)
    alone = images.generate_arrays([ImageRequest(digit=3, count=2, seed=5)])[0][0]
    batch = images.generate_arrays([ImageRequest(count=3, seed=1), ImageRequest(digit=3, count=2, seed=5)])
    assert (alone == batch[1][0]).all()
    request = TextRequest(prompt="AI", length=30, seed=4)
    first, again = (texts.generate_batch([request])[0].text for _ in range(2))
    assert first == again and first.startswith("AI") and len(first) == len("AI") + 30
