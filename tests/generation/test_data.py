"""Training data loaders: text corpora with held-out tenths, image folders, MNIST IDX files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from generation.train.data import drop_heldout_twins, load_images, load_text_corpus, stratified_split


def test_text_corpus_holds_out_the_last_tenth_of_every_file(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x" * 90 + "y" * 10, encoding="utf-8")
    (tmp_path / "b.md").write_text("中" * 45 + "文" * 5, encoding="utf-8")
    corpus = load_text_corpus(tmp_path)
    assert corpus.names == ["a.txt", "b.md"]
    assert corpus.train == ["x" * 90, "中" * 45] and corpus.heldout == ["y" * 10, "文" * 5]


def test_training_paragraphs_that_repeat_heldout_text_are_dropped(tmp_path: Path) -> None:
    twin = "Large models learn from vast amounts of data, which makes them useful."
    own = "Founders should talk to customers every single week of the year."
    other = "Pricing is a product decision as much as a finance one, always."
    filler = "\n\n".join(f"Line {i} about markets and teams and growth plans." for i in range(10))
    # The held-out tail restates a training paragraph with other punctuation and case.
    body = f"{own}\n\n{twin}\n\n{filler}\n\n"
    tail = f"{other}\n\n{twin.upper().replace(',', ' ;')}"
    (tmp_path / "a.txt").write_text(body + "x" * (len(tail) * 9 - len(body)) + tail, encoding="utf-8")
    corpus = load_text_corpus(tmp_path)
    assert corpus.heldout[0].endswith(twin.upper().replace(",", " ;"))
    assert twin not in corpus.train[0] and corpus.train[0].startswith(own + "\n\nLine 0")
    assert corpus.twin_chars_dropped == len(twin)
    # Another file's training text is checked against every held-out tail.
    cleaned, dropped = drop_heldout_twins([f"{own}\n\n{twin}"], [twin])
    assert cleaned == [own] and dropped == len(twin)
    assert drop_heldout_twins([own], ["Founders should talk to customers"]) == ([own], 0)  # short: no twin


def test_a_corpus_of_repetitions_keeps_its_training_text(tmp_path: Path) -> None:
    line = "The same sentence about startups, said again and again and again.\n"
    (tmp_path / "a.txt").write_text(line * 20, encoding="utf-8")
    corpus = load_text_corpus(tmp_path)
    assert corpus.train == [(line * 20)[: len(line) * 18]]
    assert corpus.twin_chars_dropped == 0 and corpus.twin_chars_kept == len(line) * 18


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
