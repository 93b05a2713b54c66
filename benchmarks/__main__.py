"""Run every benchmark script in this folder (`make bench`), one process each, and summarise."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

SKIPPED = {"__init__", "__main__", "gpu_check"}  # gpu_check needs a CUDA device: `make gpu-check`


def main() -> int:
    """Run each benchmarks/<name>.py as `python -m benchmarks.<name>`; exit 1 if any missed its target."""
    names = sorted(path.stem for path in Path(__file__).parent.glob("*.py") if path.stem not in SKIPPED)
    results: list[tuple[str, int, float]] = []
    for name in names:
        print(f"== benchmarks.{name}", flush=True)
        started = time.perf_counter()
        returncode = subprocess.call([sys.executable, "-m", f"benchmarks.{name}"])
        results.append((name, returncode, time.perf_counter() - started))
    print("\n== summary")
    for name, returncode, seconds in results:
        print(f"{'PASS' if returncode == 0 else 'FAIL'}  {name}  ({seconds:.0f} s)")
    return 0 if all(returncode == 0 for _, returncode, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
