"""Quality metrics for the trainer's promotion gate.

LSTM: bits per character on the held-out last tenth of every corpus file.
Image generators (GAN and VAE alike): a small digit classifier, trained on held-out real digits and
cached as safetensors, scores samples: conditional accuracy, Frechet distance in its feature space (with the real-vs-real
distance of two halves as the floor), intra-class diversity relative to real digits, and the share
of samples that are near-copies of a training image.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from scipy import linalg
from torch import nn

from generation.models.image import ImageModel
from generation.models.lstm import CharLSTM
from generation.models.vocab import CharVocab
from generation.train.data import ImageData, stratified_split

LSTM_CONTEXT_CHARS = 256  # held-out text is scored as the continuation of the file's preceding text

# Quality targets. The promotion gate compares candidate and champion on the same data.
TARGET_ACCURACY = 0.95
TARGET_FD_RATIO = 3.0
TARGET_DIVERSITY = 0.8
TARGET_NEAR_COPIES = 0.0
TARGET_BPC = 1.9

EVAL_SPLIT_SEED = 1234  # fixes which real digits train the generators and which train the judge
JUDGE_FRACTION = 0.4


# ---------------------------------------------------------------------------------------- LSTM
# A character outside the vocabulary is scored as the UNK class *and* the choice of which character
# UNK stands for, so UNK is no free catch-all: one bit for "a CJK ideograph or not", then uniform over
# that group's code points the vocabulary lacks (a proper distribution over all of Unicode; about 15.4
# bits for an unseen Chinese character, 21 for anything else). Singletons of the training text are UNK
# in training (CharVocab min_count=2), so the model learns how often an unknown character comes.
CJK_IDEOGRAPHS = range(0x4E00, 0xA000)
UNICODE_CODE_POINTS = 0x110000


class CharAlphabet(Protocol):
    """What BitTally needs of a vocabulary: its characters (UNK's slot counted) and membership."""

    chars: Collection[str]

    def __contains__(self, char: str) -> bool: ...


def unknown_char_bits(vocab: CharAlphabet) -> tuple[float, float]:
    """Bits to name which character an UNK is, beyond the UNK class: (for CJK ideographs, for others)."""
    known_cjk = sum(1 for char in vocab.chars if ord(char) in CJK_IDEOGRAPHS)
    known_other = len(vocab.chars) - known_cjk
    return (
        1.0 + math.log2(len(CJK_IDEOGRAPHS) - known_cjk),
        1.0 + math.log2(UNICODE_CODE_POINTS - len(CJK_IDEOGRAPHS) - known_other),
    )


class BitTally:
    """Bits per character over scored characters, split between CJK ideographs and everything else
    (an ideograph carries several times the information of a Latin letter). A character outside
    `vocab` also pays for naming it (unknown_char_bits), beyond the bits scored for its UNK class."""

    def __init__(self, vocab: CharAlphabet) -> None:
        self.vocab = vocab
        self.cjk_naming, self.other_naming = unknown_char_bits(vocab)
        self.bits = {True: 0.0, False: 0.0}  # keyed by "is a CJK ideograph"
        self.chars = {True: 0, False: 0}
        self.unknown, self.naming_bits = 0, 0.0

    def add(self, char: str, bits: float) -> None:
        cjk = ord(char) in CJK_IDEOGRAPHS
        if char not in self.vocab:
            naming = self.cjk_naming if cjk else self.other_naming
            bits += naming
            self.naming_bits += naming
            self.unknown += 1
        self.bits[cjk] += bits
        self.chars[cjk] += 1

    def summary(self) -> dict[str, float]:
        total = self.chars[True] + self.chars[False]
        return {
            "bpc": (self.bits[True] + self.bits[False]) / max(1, total),
            "bpc_cjk": self.bits[True] / max(1, self.chars[True]),
            "bpc_other": self.bits[False] / max(1, self.chars[False]),
            "cjk_share": self.chars[True] / max(1, total),
            "heldout_chars": float(total),
            "unk_rate": self.unknown / max(1, total),
            "unk_bits": self.naming_bits / max(1, total),
        }


@torch.inference_mode()
def bits_per_char(
    model: CharLSTM, vocab: CharVocab, contexts: list[str], texts: list[str]
) -> dict[str, float]:
    """Mean bits per character over all `texts`, each scored after its `contexts` entry (static
    evaluation: eval mode, no weight updates), with BitTally's split and unknown-character charge;
    `unk_bits` is that charge's share of `bpc`."""
    model.eval()
    device = next(model.parameters()).device
    tally = BitTally(vocab)
    for context, text in zip(contexts, texts, strict=True):
        context = context[-LSTM_CONTEXT_CHARS:]
        ids = torch.tensor(vocab.encode(context + text), dtype=torch.long, device=device)
        if len(ids) < 2:
            continue
        logits, _ = model(ids[None, :-1])
        nll = F.cross_entropy(logits[0].float(), ids[1:], reduction="none")
        scored = (nll[max(0, len(context) - 1) :] / math.log(2)).tolist()
        for char, char_bits in zip(text[len(text) - len(scored) :], scored, strict=True):
            tally.add(char, char_bits)
    return tally.summary()


# -------------------------------------------------------------------------------------- images
class DigitJudge(nn.Module):
    """A small CNN digit classifier; its penultimate layer is the feature space for the Frechet distance."""

    def __init__(self, image_size: int, num_classes: int = 10, features: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(64 * (image_size // 4) ** 2, features),
            nn.ReLU(),
        )
        self.head = nn.Linear(features, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(images))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images)


@dataclass(frozen=True)
class JudgeRecipe:
    epochs: int = 40
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0
    augment_shift: int = 1  # random shifts of up to this many pixels: a judge that generalises


def _judge_key(data: ImageData, recipe: JudgeRecipe, image_size: int) -> str:
    payload = json.dumps(
        {
            "data": data.fingerprint,
            "size": image_size,
            "split": [EVAL_SPLIT_SEED, JUDGE_FRACTION],
            **asdict(recipe),
        }
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def split_for_images(data: ImageData) -> tuple[ImageData, ImageData]:
    """(image generators' training digits, held-out digits that only the judge sees); fixed by EVAL_SPLIT_SEED."""
    train_index, judge_index = stratified_split(
        data.labels, len(data.images), JUDGE_FRACTION, EVAL_SPLIT_SEED
    )
    return data.subset(train_index), data.subset(judge_index)


def _shift(images: torch.Tensor, limit: int, rng: torch.Generator) -> torch.Tensor:
    if limit <= 0:
        return images
    dx, dy = (int(v) for v in torch.randint(-limit, limit + 1, (2,), generator=rng))
    return torch.roll(images, shifts=(dy, dx), dims=(2, 3))


def train_judge(heldout: ImageData, recipe: JudgeRecipe = JudgeRecipe()) -> DigitJudge:
    """Deterministic: same data and recipe give the same weights (single-threaded, seeded)."""
    assert heldout.labels is not None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(recipe.seed)
        rng = torch.Generator().manual_seed(recipe.seed)
        judge = DigitJudge(heldout.images.shape[-1], heldout.num_classes)
        optimizer = torch.optim.Adam(judge.parameters(), lr=recipe.lr)
        images = heldout.images * 2 - 1
        for _ in range(recipe.epochs):
            order = torch.randperm(len(images), generator=rng)
            for start in range(0, len(order), recipe.batch_size):
                batch = order[start : start + recipe.batch_size]
                x = _shift(images[batch], recipe.augment_shift, rng)
                loss = F.cross_entropy(judge(x), heldout.labels[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return judge.eval()


def load_or_train_judge(data: ImageData, cache_dir: Path, recipe: JudgeRecipe = JudgeRecipe()) -> DigitJudge:
    """The judge for `data`, from the safetensors cache when present (trained once per data set)."""
    _, heldout = split_for_images(data)
    size = data.images.shape[-1]
    path = Path(cache_dir) / f"judge-{_judge_key(data, recipe, size)}.safetensors"
    judge = DigitJudge(size, data.num_classes)
    if path.is_file():
        try:
            judge.load_state_dict(load_file(str(path)))
            return judge.eval()
        except (RuntimeError, OSError):
            path.unlink(missing_ok=True)  # a corrupt cache entry is simply rebuilt
    judge = train_judge(heldout, recipe)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(f".{os.getpid()}.tmp")
    save_file({k: v.contiguous() for k, v in judge.state_dict().items()}, str(temp))
    os.replace(temp, path)
    return judge


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (rows = samples)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # near-singular covariances (tiny samples) are handled below
        root = linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(root).all():
            offset = np.eye(len(cov_a)) * 1e-6
            root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    root = np.real(root)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def intra_class_diversity(images: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean pairwise pixel distance between images of the same class, averaged over classes."""
    flat = images.flatten(1)
    values = []
    for label in labels.unique():
        group = flat[labels == label]
        if len(group) > 1:
            distances = torch.cdist(group, group)
            values.append(float(distances.sum() / (len(group) * (len(group) - 1))))
    return float(np.mean(values)) if values else 0.0


@torch.inference_mode()
def evaluate_images(
    generator: ImageModel, data: ImageData, judge: DigitJudge, seed: int = 0
) -> dict[str, float]:
    """Score `generator` against the real digits it was trained on (labelled data only)."""
    assert data.labels is not None, "image metrics need labelled images"
    generator.eval()
    train, heldout = split_for_images(data)
    assert train.labels is not None and heldout.labels is not None
    half_a_index, half_b_index = stratified_split(train.labels, len(train.images), 0.5, seed)
    half_a, half_b = train.subset(half_a_index), train.subset(half_b_index)
    # Samples: as many as half B, with half A's label mix, so both distances compare equal-sized sets.
    labels = half_a.labels
    rng = torch.Generator().manual_seed(seed)
    noise = torch.randn(len(labels), generator.config.z_dim, generator=rng)
    device = next(generator.parameters()).device
    samples = ((generator(noise.to(device), labels.to(device)).float().cpu() + 1) / 2).clamp(0, 1)

    def feats(images: torch.Tensor) -> np.ndarray:
        return judge.features(images * 2 - 1).double().numpy()

    floor = frechet_distance(feats(half_a.images), feats(half_b.images))
    distance = frechet_distance(feats(samples), feats(half_b.images))
    accuracy = float((judge(samples * 2 - 1).argmax(1) == labels).float().mean())
    judge_accuracy_real = float((judge(train.images * 2 - 1).argmax(1) == train.labels).float().mean())
    diversity = intra_class_diversity(samples, labels) / intra_class_diversity(train.images, train.labels)
    # Near-copy: closer to a training image than 1/2 of the closest any held-out real digit comes.
    train_flat = train.images.flatten(1)
    real_nearest = torch.cdist(heldout.images.flatten(1), train_flat).min(1).values
    threshold = 0.5 * float(real_nearest.min())
    sample_nearest = torch.cdist(samples.flatten(1), train_flat).min(1).values
    return {
        "accuracy": accuracy,
        "fd": distance,
        "fd_floor": floor,
        "fd_ratio": distance / max(floor, 1e-9),
        "diversity": diversity,
        "near_copies": float((sample_nearest < threshold).float().mean()),
        "judge_accuracy_real": judge_accuracy_real,
    }


@torch.inference_mode()
def evaluate_unlabelled_images(generator: ImageModel, data: ImageData, seed: int = 0) -> dict[str, float]:
    """For pictures without classes (no judge): Frechet distance on 8x8 average-pooled pixels, overall
    diversity and near-copies. These are weaker metrics; they only rank models trained on this data."""
    generator.eval()
    half_a_index, half_b_index = stratified_split(None, len(data.images), 0.5, seed)
    half_a, half_b = data.images[half_a_index], data.images[half_b_index]
    rng = torch.Generator().manual_seed(seed)
    noise = torch.randn(len(half_a), generator.config.z_dim, generator=rng)
    device = next(generator.parameters()).device
    samples = ((generator(noise.to(device), None).float().cpu() + 1) / 2).clamp(0, 1)

    def feats(images: torch.Tensor) -> np.ndarray:
        return F.adaptive_avg_pool2d(images, 8).flatten(1).double().numpy()

    floor = frechet_distance(feats(half_a), feats(half_b))
    distance = frechet_distance(feats(samples), feats(half_b))
    zeros = torch.zeros(len(samples), dtype=torch.long)
    diversity = intra_class_diversity(samples, zeros) / intra_class_diversity(
        data.images, torch.zeros(len(data.images), dtype=torch.long)
    )
    real_nearest = torch.cdist(half_b.flatten(1), half_a.flatten(1)).min(1).values
    sample_nearest = torch.cdist(samples.flatten(1), data.images.flatten(1)).min(1).values
    return {
        "fd": distance,
        "fd_floor": floor,
        "fd_ratio": distance / max(floor, 1e-9),
        "diversity": diversity,
        "near_copies": float((sample_nearest < 0.5 * float(real_nearest.min())).float().mean()),
    }


# ---------------------------------------------------------------------------------- promotion
def targets_met(kind: str, metrics: dict[str, float]) -> dict[str, bool]:
    """Each quality target, met or not. The word model's target is a share of a reference n-gram's
    score, which benchmarks.generation_quality computes; the trainer has none of its own."""
    if kind == "word":
        return {}
    if kind == "lstm":
        return {"bpc": metrics.get("bpc", math.inf) <= TARGET_BPC}
    return {
        "accuracy": metrics.get("accuracy", 0.0) >= TARGET_ACCURACY,
        "fd_ratio": metrics.get("fd_ratio", math.inf) <= TARGET_FD_RATIO,
        "diversity": metrics.get("diversity", 0.0) >= TARGET_DIVERSITY,
        "near_copies": metrics.get("near_copies", 1.0) <= TARGET_NEAR_COPIES,
    }


def quality_key(kind: str, metrics: dict[str, float]) -> tuple[float, ...]:
    """Bigger is better. LSTM: lower bpc. Images: more targets met, then a lower Frechet ratio,
    then higher accuracy."""
    if kind in ("lstm", "word"):
        return (-metrics.get("bpc", math.inf),)
    met = sum(targets_met(kind, metrics).values())
    return (float(met), -metrics.get("fd_ratio", math.inf), metrics.get("accuracy", 0.0))


def beats(kind: str, candidate: dict[str, float], champion: dict[str, float] | None) -> tuple[bool, str]:
    """Promotion decision with its reason, on metrics measured on the same data."""
    if champion is None:
        return True, "no champion yet"
    if quality_key(kind, candidate) > quality_key(kind, champion):
        return True, "candidate beats the champion"
    return False, "candidate does not beat the champion"
