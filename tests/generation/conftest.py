"""Shared fixtures for the generator tests: one tiny corpus and dry-run models trained once per session."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from generation.train.__main__ import main as train_main

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ENGLISH = (
    "A startup turns a large model into a product people pay for. Founders test demand early, "
    "measure retention, and keep costs per request low. "
)
CHINESE = "创业公司把大模型变成用户愿意付费的产品。创始人尽早验证需求，衡量留存，并控制每次请求的成本。"


def write_corpus(folder: Path) -> Path:
    """Two small bilingual files: enough text for a dry run and a held-out tenth of each."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(2):
        (folder / f"article_{index}.txt").write_text(
            (ENGLISH + "\n" + CHINESE + "\n") * (12 + index), encoding="utf-8"
        )
    return folder


def train_argv(kind: str, models_dir: Path, corpus: Path, *extra: str) -> list[str]:
    """Trainer arguments for a quiet, single-threaded CPU dry run into `models_dir`."""
    argv = [
        kind,
        "--dry-run",
        "--quiet",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--models-dir",
        str(models_dir),
    ]
    if kind in ("lstm", "word"):
        argv += ["--data", str(corpus)]
    return [*argv, *extra]


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Path:
    """DATA_DIR/models with a dry-run champion of each kind (trained through the CLI entry point)."""
    models_dir = tmp_path_factory.mktemp("data") / "models"
    for kind in ("gan", "lstm", "vae", "word"):
        steps = "40" if kind == "lstm" else "6"  # the LSTM champion must clearly beat an untrained one
        assert train_main(train_argv(kind, models_dir, corpus_dir, "--max-steps", steps)) == 0
    return models_dir


def last_json_line(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])
