"""Ready-to-serve generators: load a checkpoint once, then answer batches of requests in one pass.

Used by `python -m generation.sample`, the in-process client and `python -m generation.serve`.
Seeded requests are reproducible whatever other requests share their batch: each request draws
its own random numbers from its own seeded generator, and on CPU every row is computed by kernels
whose result for that row does not depend on how many rows run with it (tests check both).

On CPU the trained networks are rearranged once at load for speed (checked against the networks'
own forward pass, falling back to it on any mismatch): batch norms folded into the layers before
them, the LSTM's first layer turned into a per-character table, weights packed for oneDNN, and
matrix products in bf16 where the CPU has native bf16 (the default recipes train under bf16
autocast there too).
"""

from __future__ import annotations

import math
import secrets
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from generation.api import (
    DEFAULT_IMAGE_KIND,
    IMAGE_KINDS,
    ImageKind,
    ImageRequest,
    ImageResult,
    ModelKind,
    TextRequest,
    TextResult,
)
from generation.models.checkpoint import Checkpoint, load_checkpoint
from generation.models.device import resolve_device
from generation.registry import ModelRegistry
from generation.service.image_network import image_network
from generation.service.png import encode_grey_png
from generation.service.text_stepper import sample_ids, text_stepper
from generation.service.word_generator import WordTextGenerator

MIN_SIDE_PX = 256  # Telegram shows small photos blurred; keep each side at least this big
GAP_PX = 1  # gap between tiles, in model pixels


def _fresh_seed() -> int:
    return secrets.randbelow(2**31)


def _version(checkpoint: Checkpoint) -> str:
    return str(checkpoint.metadata.get("version") or (checkpoint.path.name if checkpoint.path else "unknown"))


def images_to_png(images: np.ndarray) -> bytes:
    """(n, h, w) floats in [0, 1] (1 = ink) -> a PNG grid, dark ink on white, >= 256 px a side."""
    count, height, width = images.shape
    cols = count if count <= 4 else (4 if count <= 8 else math.ceil(math.sqrt(count)))
    rows = math.ceil(count / cols)
    grid = np.zeros((rows * (height + GAP_PX) + GAP_PX, cols * (width + GAP_PX) + GAP_PX), dtype=np.float32)
    for index, image in enumerate(images):
        top = GAP_PX + (index // cols) * (height + GAP_PX)
        left = GAP_PX + (index % cols) * (width + GAP_PX)
        grid[top : top + height, left : left + width] = image
    paper = Image.fromarray(np.round((1.0 - np.clip(grid, 0.0, 1.0)) * 255).astype(np.uint8), mode="L")
    scale = max(1, math.ceil(MIN_SIDE_PX / min(paper.size)))
    paper = paper.resize((paper.width * scale, paper.height * scale), Image.Resampling.BILINEAR)
    return encode_grey_png(np.asarray(paper))


class ImageGenerator:
    """An image generator (the GAN's generator or the VAE's decoder), drawing digit grids."""

    def __init__(self, checkpoint: Checkpoint, device: torch.device) -> None:
        self.kind = checkpoint.kind
        self.model = checkpoint.model
        self.device = device
        self.config = checkpoint.model.config
        self.version = _version(checkpoint)
        self.metrics = checkpoint.metrics
        self.created_at = str(checkpoint.metadata.get("created_at", ""))
        with torch.inference_mode():
            self.network, self.row_bucket = image_network(self.model, device)

    @classmethod
    def load(
        cls, checkpoint_dir: Path, device: str = "auto", kind: ImageKind = DEFAULT_IMAGE_KIND
    ) -> ImageGenerator:
        chosen = resolve_device(device)
        return cls(load_checkpoint(Path(checkpoint_dir), kind, device=chosen), chosen)

    @property
    def conditional(self) -> bool:
        return self.config.num_classes > 0

    def _plan(self, request: ImageRequest, seed: int) -> tuple[torch.Tensor, torch.Tensor, list[int | None]]:
        """Noise and labels for one request, from its own seeded generator."""
        rng = torch.Generator().manual_seed(seed)
        noise = torch.randn(request.count, self.config.z_dim, generator=rng)
        if not self.conditional:
            return noise, torch.zeros(request.count, dtype=torch.long), [None] * request.count
        if request.digit is not None:
            labels = torch.full((request.count,), request.digit, dtype=torch.long)
        else:  # a mix: a shuffled run through the digits, so a grid shows as many different ones as fit
            order = torch.randperm(self.config.num_classes, generator=rng)
            labels = order.repeat(math.ceil(request.count / self.config.num_classes))[: request.count]
        return noise, labels, labels.tolist()

    @torch.inference_mode()
    def _generate_rows(self, noise: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
        """Images in [0, 1], (n, h, w). Rows are padded to a multiple of the network's row bucket (see
        ROW_BUCKET), so each row's result is bit-identical whatever the batch holds."""
        rows = noise.shape[0]
        padded = math.ceil(rows / self.row_bucket) * self.row_bucket
        if padded > rows:
            noise = torch.cat([noise, torch.zeros(padded - rows, noise.shape[1])])
            labels = torch.cat([labels, torch.zeros(padded - rows, dtype=torch.long)])
        images = self.network(noise.to(self.device), labels.to(self.device))[:rows]
        return ((images.squeeze(1).float().cpu().numpy() + 1.0) / 2.0).clip(0.0, 1.0)

    def generate_arrays(self, requests: list[ImageRequest]) -> list[tuple[np.ndarray, int, list[int | None]]]:
        """Raw images (n, h, w) in [0, 1] per request, with the seed used and the digits drawn."""
        plans = []
        for request in requests:
            seed = request.seed if request.seed is not None else _fresh_seed()
            plans.append((seed, *self._plan(request, seed)))
        if not plans:
            return []
        images = self._generate_rows(torch.cat([p[1] for p in plans]), torch.cat([p[2] for p in plans]))
        results, start = [], 0
        for seed, noise, _labels, digits in plans:
            results.append((images[start : start + noise.shape[0]], seed, digits))
            start += noise.shape[0]
        return results

    def generate_batch(self, requests: list[ImageRequest]) -> list[ImageResult]:
        """One generator pass for the whole batch; one PNG grid per request."""
        return [
            ImageResult(png=images_to_png(images), model_version=self.version, seed=seed, digits=digits)
            for images, seed, digits in self.generate_arrays(requests)
        ]

    def warm_up(self) -> None:
        self.generate_batch([ImageRequest(count=8, seed=0)])


class TextGenerator:
    """The champion LSTM, continuing prompts."""

    def __init__(self, checkpoint: Checkpoint, device: torch.device) -> None:
        assert checkpoint.vocab is not None
        self.model = checkpoint.model
        self.vocab = checkpoint.vocab
        self.device = device
        self.version = _version(checkpoint)
        self.metrics = checkpoint.metrics
        self.created_at = str(checkpoint.metadata.get("created_at", ""))
        # Generation never emits UNK; an empty prompt starts as if after a paragraph break.
        self._start_id = self.vocab.encode("\n")[0]
        with torch.inference_mode():
            self.stepper = text_stepper(self.model, device)

    @classmethod
    def load(cls, checkpoint_dir: Path, device: str = "auto") -> TextGenerator:
        chosen = resolve_device(device)
        return cls(load_checkpoint(Path(checkpoint_dir), "lstm", device=chosen), chosen)

    def _read_prompts(self, prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Run every prompt through the network; returns the state after each and its next-character
        logits. Rows are fed longest prompt first, so the rows still reading are always the first ones."""
        order = sorted(range(len(prompts)), key=lambda row: -len(prompts[row]))
        table = torch.zeros(len(prompts), len(prompts[order[0]]), dtype=torch.long)
        for rank, row in enumerate(order):
            table[rank, : len(prompts[row])] = torch.tensor(prompts[row])
        table = table.to(self.device)
        state = self.stepper.new_state(len(prompts))
        reading = len(prompts)
        for position in range(table.shape[1]):
            while len(prompts[order[reading - 1]]) <= position:
                reading -= 1
            self.stepper.advance(table[:reading, position], state)
        back = torch.empty(len(prompts), dtype=torch.long)
        back[torch.tensor(order)] = torch.arange(len(prompts))
        back = back.to(self.device)
        state = (state[0].index_select(1, back), state[1].index_select(1, back))
        return state, self.stepper.logits(state[0][-1])

    @torch.inference_mode()
    def generate_batch(self, requests: list[TextRequest]) -> list[TextResult]:
        """Prompts are read together, then every request advances one character per step together;
        rows are ordered longest request first, so finished ones simply drop off the end."""
        if not requests:
            return []
        seeds = [request.seed if request.seed is not None else _fresh_seed() for request in requests]
        order = sorted(range(len(requests)), key=lambda row: -requests[row].length)
        ordered = [requests[row] for row in order]
        steps = ordered[0].length
        uniforms = torch.stack(
            [
                torch.rand(steps, generator=torch.Generator().manual_seed(seeds[row]), dtype=torch.float64)
                for row in order
            ]
        ).float()
        prompts = [[self._start_id, *self.vocab.encode(request.prompt)] for request in ordered]
        state, logits = self._read_prompts(prompts)
        device = self.device
        uniforms = uniforms.to(device)
        inverse_temperature = torch.tensor([[1.0 / r.temperature] for r in ordered], device=device)
        top_p = torch.tensor([[r.top_p] for r in ordered], device=device)
        vocab_size = self.stepper.vocab_size
        top_k = None
        if any(0 < r.top_k < vocab_size for r in ordered):
            top_k = torch.tensor(
                [[r.top_k if 0 < r.top_k < vocab_size else vocab_size] for r in ordered], device=device
            )
        produced = torch.empty(len(requests), steps, dtype=torch.long, device=device)
        active = len(ordered)
        for step in range(steps):
            while ordered[active - 1].length <= step:
                active -= 1
            ids = sample_ids(
                logits[:active],
                uniforms[:active, step],
                inverse_temperature[:active],
                top_p[:active],
                None if top_k is None else top_k[:active],
            )
            produced[:active, step] = ids
            if step + 1 < steps:
                logits = self.stepper.logits(self.stepper.advance(ids, state))
        produced_rows = produced.cpu().tolist()
        texts = [""] * len(requests)
        for rank, row in enumerate(order):
            texts[row] = requests[row].prompt + self.vocab.decode(produced_rows[rank][: requests[row].length])
        return [
            TextResult(text=text, model_version=self.version, seed=seed, model="lstm")
            for text, seed in zip(texts, seeds, strict=True)
        ]

    def warm_up(self) -> None:
        self.generate_batch([TextRequest(prompt="AI", length=20, seed=0, model="lstm")])


def load_generator(
    path: Path, kind: ModelKind, device: str = "auto"
) -> ImageGenerator | TextGenerator | WordTextGenerator:
    """The checkpoint of `kind` at `path`, loaded as a generator."""
    if kind in IMAGE_KINDS:
        return ImageGenerator.load(path, device, kind)
    if kind == "word":
        return WordTextGenerator.load(path, device)
    return TextGenerator.load(path, device)


def load_champion(
    models_dir: Path, kind: ModelKind, device: str = "auto", shipped_dir: Path | None = None
) -> ImageGenerator | TextGenerator | WordTextGenerator | None:
    """The current champion of `kind`, loaded; None when there is none (nothing promoted or shipped)."""
    champion = ModelRegistry(Path(models_dir), shipped_dir).champion(kind)
    if champion is None:
        return None
    return load_generator(champion.path, kind, device)
