"""Device and precision choice: bf16 only where the CPU has it natively, not where oneDNN emulates it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from generation.models import device as device_module
from generation.models.device import bf16_autocast, native_cpu_bfloat16


@pytest.fixture()
def cpu_reporting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Pretend oneDNN supports bf16 and /proc/cpuinfo lists the given flags."""

    def report(flags: str) -> None:
        cpuinfo = tmp_path / "cpuinfo"
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 avx512f{flags}\n")
        monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
        monkeypatch.setattr(device_module, "Path", lambda _path: cpuinfo)
        native_cpu_bfloat16.cache_clear()

    yield report
    native_cpu_bfloat16.cache_clear()


@pytest.mark.parametrize(
    ("flags", "native"), [("", False), (" avx512_bf16", True), (" amx_bf16 amx_tile", True)]
)
def test_bf16_only_with_the_cpu_flags(cpu_reporting, flags: str, native: bool) -> None:
    cpu_reporting(flags)
    assert native_cpu_bfloat16() is native
    assert bf16_autocast(torch.device("cpu")) is native
    assert bf16_autocast(torch.device("cpu"), on_cpu=False) is False


def test_cuda_always_autocasts_and_other_devices_never() -> None:
    assert bf16_autocast(torch.device("cuda"), on_cpu=False) is True
    assert bf16_autocast(torch.device("mps")) is False
