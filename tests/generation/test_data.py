"""Training data loaders: text corpora with held-out tenths, image folders, MNIST IDX files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from generation.data import load_images, load_text_corpus, stratified_split


def test_text_corpus_holds_out_the_last_tenth_of_every_file(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x" * 90 + "y" * 10, encoding="utf-8")
    (tmp_path / "b.md").write_text("中" * 45 + "文" * 5, encoding="utf-8")
    corpus = load_text_corpus(tmp_path)
    assert corpus.names == ["a.txt", "b.md"]
    assert corpus.train == ["x" * 90, "中" * 45] and corpus.heldout == ["y" * 10, "文" * 5]


def test_image_folder_with_class_subfolders(tmp_path: Path) -> None:
    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for index in range(3):
            Image.new("L", (20, 30), color=40 * index).save(tmp_path / label / f"{index}.png")
    data = load_images(str(tmp_path), 16, tmp_path / "cache")
    assert data.images.shape == (6, 1, 16, 16) and data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert 0.0 <= float(data.images.min()) and float(data.images.max()) <= 1.0


def test_mnist_idx_files(tmp_path: Path) -> None:
    images = np.random.default_rng(0).integers(0, 256, size=(4, 28, 28), dtype=np.uint8)
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(struct.pack(">HBBIII", 0, 8, 3, 4, 28, 28) + images.tobytes())
    with gzip.open(tmp_path / "train-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write(struct.pack(">HBBI", 0, 8, 1, 4) + bytes([3, 1, 4, 1]))
    data = load_images(str(tmp_path), 16, tmp_path / "cache")
    assert data.source == "mnist" and data.labels.tolist() == [3, 1, 4, 1]
    assert data.images.shape == (4, 1, 16, 16)


def test_stratified_split_is_reproducible_and_balanced() -> None:
    labels = torch.arange(100) % 4
    first, second = stratified_split(labels, 100, 0.4, seed=3)
    assert torch.equal(stratified_split(labels, 100, 0.4, seed=3)[1], second)
    assert len(second) == 40 and sorted(set(first.tolist()) | set(second.tolist())) == list(range(100))
    assert torch.bincount(labels[second]).tolist() == [10, 10, 10, 10]
