"""Quality metrics: bits per character, the cached digit judge, and what the GAN metrics catch."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from generation.models.gan import GanConfig
from generation.models.lstm import CharLSTM, LstmConfig
from generation.models.vocab import CharVocab
from generation.train.data import ImageData, load_sklearn_digits
from generation.train.evaluate import (
    JudgeRecipe,
    bits_per_char,
    evaluate_images,
    frechet_distance,
    load_or_train_judge,
    split_for_images,
    train_judge,
    unknown_char_bits,
)

TINY_JUDGE = JudgeRecipe(epochs=2)


@pytest.fixture(scope="module")
def digits() -> ImageData:
    """30 digits of each class: small, still labelled."""
    data = load_sklearn_digits(16)
    keep = torch.cat([torch.nonzero(data.labels == c).flatten()[:30] for c in range(10)])
    return data.subset(keep.sort().values)


class CopyingGenerator(nn.Module):
    """A 'generator' that returns training digits of the asked class: a memoriser."""

    def __init__(self, data: ImageData, jitter: float = 0.0) -> None:
        super().__init__()
        self.config = GanConfig(image_size=16, z_dim=4)
        self.data, self.jitter = data, jitter
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        picks = [torch.nonzero(self.data.labels == label).flatten() for label in labels.tolist()]
        index = torch.stack(
            [group[int(abs(n[0]) * 1000) % len(group)] for group, n in zip(picks, noise, strict=True)]
        )
        return self.data.images[index] * 2 - 1


class OneDigitGenerator(CopyingGenerator):
    """Always the same image per class: mode collapse."""

    def forward(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return super().forward(torch.zeros_like(noise), labels)


def test_uniform_model_scores_log2_vocab_bits_and_unknown_characters_pay_for_their_name() -> None:
    vocab = CharVocab.build(["abcd中"], min_count=1)
    model = CharLSTM(LstmConfig(vocab_size=len(vocab), embed_dim=4, hidden_size=4, layers=1))
    with torch.no_grad():
        for parameter in model.head.parameters():
            parameter.zero_()
    result = bits_per_char(model, vocab, ["ab"], ["cdab€文"])
    # "€" and "文" are UNK: the class costs log2(V) like any character, naming them costs extra.
    cjk_bits, other_bits = unknown_char_bits(vocab)
    assert cjk_bits == pytest.approx(1 + math.log2(0xA000 - 0x4E00 - 1))  # "中" is known
    assert other_bits == pytest.approx(1 + math.log2(0x110000 - (0xA000 - 0x4E00) - 5))  # UNK, a-d
    assert result["unk_bits"] == pytest.approx((cjk_bits + other_bits) / 6, rel=1e-6)
    assert result["bpc"] == pytest.approx(math.log2(len(vocab)) + result["unk_bits"], rel=1e-5)
    assert result["heldout_chars"] == 6 and result["unk_rate"] == pytest.approx(2 / 6)
    # One ideograph ("文", unknown) among six characters; the split means average back to bpc.
    assert result["cjk_share"] == pytest.approx(1 / 6)
    assert result["bpc_cjk"] == pytest.approx(math.log2(len(vocab)) + cjk_bits, rel=1e-5)
    assert result["bpc_other"] == pytest.approx(math.log2(len(vocab)) + other_bits / 5, rel=1e-5)
    mixed = result["cjk_share"] * result["bpc_cjk"] + (1 - result["cjk_share"]) * result["bpc_other"]
    assert mixed == pytest.approx(result["bpc"], rel=1e-6)


def test_scoring_is_static_and_leaves_the_model_unchanged() -> None:
    torch.manual_seed(0)
    vocab = CharVocab.build(["hello world"], min_count=1)
    model = CharLSTM(LstmConfig(vocab_size=len(vocab), embed_dim=4, hidden_size=8, layers=2, dropout=0.5))
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    model.train()
    first = bits_per_char(model, vocab, ["hello "], ["world"])
    assert first == bits_per_char(model, vocab, ["hello "], ["world"])  # dropout off, nothing learned
    assert all(torch.equal(before[name], tensor) for name, tensor in model.state_dict().items())


def test_frechet_distance_is_zero_for_the_same_set_and_grows_with_shift() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, 5))
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(features, features + 1.0) == pytest.approx(5.0, rel=1e-3)


def test_judge_is_reproducible_and_cached_as_safetensors(digits: ImageData, tmp_path: Path) -> None:
    _, heldout = split_for_images(digits)
    first, second = train_judge(heldout, TINY_JUDGE), train_judge(heldout, TINY_JUDGE)
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    cached = load_or_train_judge(digits, tmp_path, TINY_JUDGE)
    files = list(tmp_path.glob("judge-*.safetensors"))
    assert len(files) == 1
    again = load_or_train_judge(digits, tmp_path, TINY_JUDGE)
    assert all(
        torch.equal(a, b)
        for a, b in zip(cached.state_dict().values(), again.state_dict().values(), strict=True)
    )


def test_gan_metrics_catch_copies_and_collapse(digits: ImageData, tmp_path: Path) -> None:
    judge = load_or_train_judge(digits, tmp_path, JudgeRecipe(epochs=15))
    train, _ = split_for_images(digits)
    copier = evaluate_images(CopyingGenerator(train), digits, judge)
    assert copier["near_copies"] == 1.0
    collapsed = evaluate_images(OneDigitGenerator(train), digits, judge)
    assert collapsed["diversity"] < 0.2 < copier["diversity"]
    assert collapsed["fd_ratio"] > copier["fd_ratio"]
