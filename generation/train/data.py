"""Training data: digit images (scikit-learn digits, MNIST, or a folder of pictures) and text corpora.

Everything here works offline by default; MNIST is downloaded only when asked for and not on disk.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import re
import struct
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
TEXT_SUFFIXES = {".txt", ".md"}
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")


@dataclass
class ImageData:
    """Images (n, 1, size, size) in [0, 1] with 1 = ink, labels (n,) or None, and where they came from."""

    images: torch.Tensor
    labels: torch.Tensor | None
    source: str
    fingerprint: str

    @property
    def num_classes(self) -> int:
        return 0 if self.labels is None else int(self.labels.max()) + 1

    def subset(self, index: torch.Tensor) -> ImageData:
        labels = None if self.labels is None else self.labels[index]
        return ImageData(self.images[index], labels, self.source, self.fingerprint)


def _fingerprint(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def _resize(images: np.ndarray, size: int) -> torch.Tensor:
    """(n, h, w) in [0, 1] -> (n, 1, size, size), bilinear (antialiased when shrinking)."""
    tensor = torch.from_numpy(images.astype(np.float32))[:, None]
    if tensor.shape[-1] == size and tensor.shape[-2] == size:
        return tensor
    shrink = tensor.shape[-1] > size
    return F.interpolate(
        tensor, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink
    ).clamp(0, 1)


def load_sklearn_digits(size: int) -> ImageData:
    """scikit-learn's 1,797 8x8 handwritten digits (ship with scikit-learn, no download)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images / 16.0
    return ImageData(
        _resize(images, size),
        torch.from_numpy(bunch.target).long(),
        "sklearn-digits",
        _fingerprint(bunch.images),
    )


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    _, dtype_code, dims = struct.unpack(">HBB", data[:4])
    if dtype_code != 0x08:
        raise ValueError(f"{path}: only unsigned-byte IDX files are supported")
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
        for path in folder.rglob(name):
            return path
    return None


def load_mnist(folder: Path, size: int, download: bool = True) -> ImageData:
    """MNIST training images from IDX files in `folder` (downloaded there first when missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem in MNIST_FILES:
        if _find_idx(folder, stem) is None:
            if not download:
                raise FileNotFoundError(f"no {stem}[.gz] under {folder}")
            urllib.request.urlretrieve(MNIST_URL + stem + ".gz", folder / (stem + ".gz"))
    images = _read_idx(_find_idx(folder, MNIST_FILES[0]))  # type: ignore[arg-type]
    labels = _read_idx(_find_idx(folder, MNIST_FILES[1]))  # type: ignore[arg-type]
    return ImageData(
        _resize(images / 255.0, size),
        torch.from_numpy(labels.astype(np.int64)),
        "mnist",
        _fingerprint(images, labels),
    )


def load_image_folder(folder: Path, size: int) -> ImageData:
    """Any pictures, as grey-scale with dark ink on light paper. One sub-folder per class gives labels
    (sorted folder names = class ids); pictures directly in `folder` train an unconditional model."""
    from PIL import Image, ImageOps

    files = sorted(path for path in folder.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    classes = sorted({path.parent.name for path in files if path.parent != folder})
    labelled = bool(classes) and all(path.parent != folder for path in files)
    pictures = []
    for path in files:
        with Image.open(path) as image:
            grey = ImageOps.fit(image.convert("L"), (size, size), Image.Resampling.LANCZOS)
        pictures.append(1.0 - np.asarray(grey, dtype=np.float32) / 255.0)
    images = np.stack(pictures)
    labels = np.array([classes.index(path.parent.name) for path in files]) if labelled else None
    return ImageData(
        torch.from_numpy(images)[:, None],
        None if labels is None else torch.from_numpy(labels).long(),
        f"folder:{folder}",
        _fingerprint(images, *([] if labels is None else [labels])),
    )


def load_images(spec: str | None, size: int, cache_dir: Path) -> ImageData:
    """`None`/"digits": scikit-learn digits; "mnist" or an MNIST folder; otherwise a folder of pictures."""
    if spec in (None, "", "digits", "sklearn"):
        return load_sklearn_digits(size)
    if spec == "mnist":
        return load_mnist(cache_dir / "mnist", size)
    path = Path(spec)
    if not path.is_dir():
        raise FileNotFoundError(f"image data {spec!r} is neither 'digits', 'mnist' nor a folder")
    if _find_idx(path, MNIST_FILES[0]) is not None:
        return load_mnist(path, size, download=False)
    return load_image_folder(path, size)


def stratified_split(
    labels: torch.Tensor | None, count: int, fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (first, second) with `fraction` of each class in the second; the same for the same seed."""
    rng = torch.Generator().manual_seed(seed)
    groups = (
        [torch.arange(count)]
        if labels is None
        else [torch.nonzero(labels == c).flatten() for c in labels.unique()]
    )
    first, second = [], []
    for group in groups:
        shuffled = group[torch.randperm(len(group), generator=rng)]
        cut = round(len(group) * fraction)
        second.append(shuffled[:cut])
        first.append(shuffled[cut:])
    return torch.cat(first).sort().values, torch.cat(second).sort().values


# Held-out text must not be predictable by having seen it: the seed articles repeat whole paragraphs
# (duplicated halves, near-verbatim restatements), so a training paragraph that shares a run of this
# many letters/digits (case and punctuation ignored) with any held-out text is a twin and is left out
# of training (what that costs and saves on the seed articles: README, "generation").
TWIN_RUN_CHARS = 32
# Names how held-out text is chosen; stored with every LSTM checkpoint. A champion evaluated under
# another split (before twins were left out it had trained on copies of the held-out text) cannot be
# compared with a candidate on this one.
HELDOUT_SPLIT = f"last-tenth/no-twins-{TWIN_RUN_CHARS}"
# A corpus that is mostly repetition (a template, a test fixture) would lose nearly all its training
# text; then the twins stay, and TextCorpus.twin_chars_kept says the held-out score is optimistic.
MAX_TWIN_SHARE = 0.5
_NOT_KEY = re.compile(r"[\W_]+")
_PARAGRAPH_BREAK = re.compile(r"(\n[ \t]*\n)")


@dataclass
class TextCorpus:
    """Per-file training text and the held-out last tenth of each file; `train` has no held-out twins."""

    names: list[str]
    train: list[str]
    heldout: list[str]
    fingerprint: str
    twin_chars_dropped: int = 0  # training characters left out because they repeat held-out text
    twin_chars_kept: int = 0  # ... or kept, when leaving them out would drop over MAX_TWIN_SHARE


def _key(text: str) -> str:
    return _NOT_KEY.sub("", text.lower())


def drop_heldout_twins(
    train: list[str], heldout: list[str], run: int = TWIN_RUN_CHARS
) -> tuple[list[str], int]:
    """`train` without the paragraphs that share a `run`-character stretch (letters and digits,
    lower-cased) with any held-out text, and how many characters that removed."""
    runs = {key[i : i + run] for key in map(_key, heldout) for i in range(len(key) - run + 1)}
    cleaned, dropped = [], 0
    for text in train:
        parts = _PARAGRAPH_BREAK.split(text)  # paragraph, break, paragraph, break, ...
        kept: list[str] = []
        for index in range(0, len(parts), 2):
            paragraph, key = parts[index], _key(parts[index])
            if any(key[i : i + run] in runs for i in range(len(key) - run + 1)):
                dropped += len(paragraph)
                continue
            if kept:
                kept.append(parts[index - 1])  # the break that preceded this paragraph
            kept.append(paragraph)
        cleaned.append("".join(kept))
    return cleaned, dropped


def load_text_corpus(path: Path, heldout_fraction: float = 0.1) -> TextCorpus:
    """Text files under `path` (or the one file `path`); each file's last tenth is held out, and
    training paragraphs that repeat held-out text are dropped (see TWIN_RUN_CHARS)."""
    path = Path(path)
    files = (
        [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix.lower() in TEXT_SUFFIXES)
    )
    if not files:
        raise FileNotFoundError(f"no text files (.txt, .md) under {path}")
    digest = hashlib.sha256()
    names, train, heldout = [], [], []
    for file in files:
        text = file.read_text(encoding="utf-8", errors="replace").replace("\r\n", "\n")
        digest.update(text.encode("utf-8"))
        cut = len(text) - max(1, round(len(text) * heldout_fraction))
        names.append(file.name)
        train.append(text[:cut])
        heldout.append(text[cut:])
    cleaned, dropped = drop_heldout_twins(train, heldout)
    fingerprint = digest.hexdigest()[:16]
    if dropped > MAX_TWIN_SHARE * sum(map(len, train)):
        log.warning("%d of the training characters repeat held-out text; kept them", dropped)
        return TextCorpus(names, train, heldout, fingerprint, 0, dropped)
    return TextCorpus(names, cleaned, heldout, fingerprint, dropped)
