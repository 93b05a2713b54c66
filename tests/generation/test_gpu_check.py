"""The prepared GPU check's plumbing, on the CPU with tiny recipes (the real run needs a CUDA device)."""

from __future__ import annotations

import re

from benchmarks.gpu_check import default_recipe_overrides, main
from generation.api import MODEL_KINDS


def test_a_cuda_run_is_set_back_to_the_default_recipe() -> None:
    from generation.train.gan import GanRecipe
    from generation.train.lstm import LstmRecipe
    from generation.train.word import WordRecipe

    assert default_recipe_overrides("gan") == [
        f"--set=epochs={GanRecipe().epochs}",
        f"--set=batch_size={GanRecipe().batch_size}",
    ]
    assert f"--set=hidden_size={LstmRecipe().hidden_size}" in default_recipe_overrides("lstm")
    assert f"--set=hidden_size={WordRecipe().hidden_size}" in default_recipe_overrides("word")


def test_dry_run_trains_every_recipe_on_each_side_and_prints_the_comparison(capsys) -> None:
    assert main(["--device", "cpu", "--dry-run"]) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^(\w+) +(\d+) +[\d.]+ +[\d.]+ +[\d.]+x  >= 5x info$", out, re.M)
    assert [kind for kind, _ in rows] == list(MODEL_KINDS) and all(int(steps) > 0 for _, steps in rows)
    assert "targets met" in out
