"""Ready-to-serve generators: load a checkpoint once, then answer batches of requests in one pass.

Used by `python -m generation.sample`, the in-process client and `python -m generation.serve`.
Seeded requests are reproducible whatever other requests share their batch: each request draws
its own random numbers from its own seeded generator.
"""

from __future__ import annotations

import io
import math
import secrets
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn.utils.rnn import pack_sequence, pad_packed_sequence

from generation.api import ImageRequest, ImageResult, ModelKind, TextRequest, TextResult
from generation.models.checkpoint import Checkpoint, load_checkpoint
from generation.models.device import resolve_device
from generation.registry import ModelRegistry

MIN_SIDE_PX = 256  # Telegram shows small photos blurred; keep each side at least this big
GAP_PX = 1  # gap between tiles, in model pixels
ROW_BUCKET = 16  # the generator always runs on a multiple of this many rows (see _generate_rows)


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
    buffer = io.BytesIO()
    paper.save(buffer, format="PNG", compress_level=1)  # fast; a grey grid stays far under 1 MB
    return buffer.getvalue()


class ImageGenerator:
    """The champion GAN generator, drawing digit grids."""

    def __init__(self, checkpoint: Checkpoint, device: torch.device) -> None:
        self.checkpoint = checkpoint
        self.model = checkpoint.model
        self.device = device
        self.config = checkpoint.model.config
        self.version = _version(checkpoint)
        self.metrics = checkpoint.metrics
        self.created_at = str(checkpoint.metadata.get("created_at", ""))

    @classmethod
    def load(cls, checkpoint_dir: Path, device: str = "auto") -> ImageGenerator:
        chosen = resolve_device(device)
        return cls(load_checkpoint(Path(checkpoint_dir), "gan", device=chosen), chosen)

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
        return noise, labels, [int(label) for label in labels]

    @torch.inference_mode()
    def _generate_rows(self, noise: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
        """Images in [0, 1], (n, h, w). Rows are padded to a multiple of ROW_BUCKET so the kernels see
        the same shapes whatever the batch holds, which keeps each row's result bit-identical."""
        rows = noise.shape[0]
        padded = math.ceil(rows / ROW_BUCKET) * ROW_BUCKET
        if padded > rows:
            noise = torch.cat([noise, torch.zeros(padded - rows, noise.shape[1])])
            labels = torch.cat([labels, torch.zeros(padded - rows, dtype=torch.long)])
        images = self.model(noise.to(self.device), labels.to(self.device))[:rows]
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


RANKED_PREFIX = 64  # sampling sorts only this many top characters when they hold every kept one


def _ranked(
    probs: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities in descending order with their ids. A full sort of the vocabulary is the slowest
    part of a batched step, so only the top RANKED_PREFIX come back when, in every row, top-k or
    top-p already drops all the others; those leading entries are exactly the full sort's."""
    if probs.shape[1] > RANKED_PREFIX:
        values, order = probs.topk(RANKED_PREFIX, dim=-1)
        mass = values.cumsum(dim=-1)[:, -1]
        if bool((((top_k > 0) & (top_k <= RANKED_PREFIX)) | (mass >= top_p)).all()):
            return values, order
    return probs.sort(dim=-1, descending=True)


def _step_cells(rnn: torch.nn.LSTM) -> list[torch.nn.LSTMCell]:
    """One LSTMCell per layer sharing the LSTM's weights. One character at a time, a cell is several
    times faster on CPU than nn.LSTM, whose oneDNN path pays a large fixed cost per call."""
    cells = []
    for layer in range(rnn.num_layers):
        cell = torch.nn.LSTMCell(rnn.input_size if layer == 0 else rnn.hidden_size, rnn.hidden_size)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            setattr(cell, name, getattr(rnn, f"{name}_l{layer}"))
        cells.append(cell.eval())
    return cells


def _step(
    cells: list[torch.nn.LSTMCell], inputs: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """One time step through the stacked cells; `state` is nn.LSTM's (h, c), each (layers, batch, hidden)."""
    hiddens, cells_state = [], []
    for layer, cell in enumerate(cells):
        hidden, memory = cell(inputs, (state[0][layer], state[1][layer]))
        hiddens.append(hidden)
        cells_state.append(memory)
        inputs = hidden
    return inputs, (torch.stack(hiddens), torch.stack(cells_state))


class TextGenerator:
    """The champion LSTM, continuing prompts."""

    def __init__(self, checkpoint: Checkpoint, device: torch.device) -> None:
        assert checkpoint.vocab is not None
        self.checkpoint = checkpoint
        self.model = checkpoint.model
        self.vocab = checkpoint.vocab
        self.device = device
        self.version = _version(checkpoint)
        self.metrics = checkpoint.metrics
        self.created_at = str(checkpoint.metadata.get("created_at", ""))
        # Generation never emits UNK; an empty prompt starts as if after a paragraph break.
        self._start_id = self.vocab.encode("\n")[0]
        self._cells = _step_cells(self.model.rnn)

    @classmethod
    def load(cls, checkpoint_dir: Path, device: str = "auto") -> TextGenerator:
        chosen = resolve_device(device)
        return cls(load_checkpoint(Path(checkpoint_dir), "lstm", device=chosen), chosen)

    @staticmethod
    def _pick(
        logits: torch.Tensor,
        uniforms: torch.Tensor,
        temperature: torch.Tensor,
        top_k: torch.Tensor,
        top_p: torch.Tensor,
    ) -> torch.Tensor:
        """Sample one id per row by inverse CDF with the row's own uniform number (batch-independent)."""
        logits = logits.float()
        logits[:, 0] = float("-inf")  # never produce UNK
        probs = torch.softmax(logits / temperature[:, None], dim=-1)
        sorted_probs, order = _ranked(probs, top_k, top_p)
        ranks = torch.arange(sorted_probs.shape[1], device=probs.device)[None, :]
        keep_k = (top_k[:, None] == 0) | (ranks < top_k[:, None])
        before = sorted_probs.cumsum(dim=-1) - sorted_probs
        keep_p = (before < top_p[:, None]) | (ranks == 0)
        sorted_probs = sorted_probs * (keep_k & keep_p)
        cdf = sorted_probs.cumsum(dim=-1)
        targets = (uniforms * cdf[:, -1]).unsqueeze(1)
        picks = torch.searchsorted(cdf, targets, right=True).clamp_(max=sorted_probs.shape[1] - 1)
        return order.gather(1, picks).squeeze(1)

    @torch.inference_mode()
    def generate_batch(self, requests: list[TextRequest]) -> list[TextResult]:
        """Prompts run together (packed), then every request advances one character per step together."""
        if not requests:
            return []
        seeds = [request.seed if request.seed is not None else _fresh_seed() for request in requests]
        steps = max(request.length for request in requests)
        uniforms = torch.stack(
            [
                torch.rand(steps, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
                for seed in seeds
            ]
        ).float()
        prompts = [
            torch.tensor([self._start_id, *self.vocab.encode(r.prompt)], dtype=torch.long) for r in requests
        ]
        lengths = torch.tensor([len(prompt) for prompt in prompts])
        packed = pack_sequence([p.to(self.device) for p in prompts], enforce_sorted=False)
        embedded = packed._replace(data=self.model.embed(packed.data))
        output, state = self.model.rnn(embedded)
        output, _ = pad_packed_sequence(output, batch_first=True)
        last = output[torch.arange(len(requests)), lengths.to(output.device) - 1]
        logits = self.model.logits(last)
        temperature = torch.tensor([r.temperature for r in requests], device=self.device)
        top_k = torch.tensor([r.top_k for r in requests], device=self.device)
        top_p = torch.tensor([r.top_p for r in requests], device=self.device)
        uniforms = uniforms.to(self.device)
        produced = torch.empty(len(requests), steps, dtype=torch.long)
        for step in range(steps):
            ids = self._pick(logits, uniforms[:, step], temperature, top_k, top_p)
            produced[:, step] = ids.cpu()
            if step + 1 < steps:
                hidden, state = _step(self._cells, self.model.embed(ids), state)
                logits = self.model.logits(hidden)
        return [
            TextResult(
                text=request.prompt + self.vocab.decode(produced[index, : request.length].tolist()),
                model_version=self.version,
                seed=seed,
            )
            for index, (request, seed) in enumerate(zip(requests, seeds, strict=True))
        ]

    def warm_up(self) -> None:
        self.generate_batch([TextRequest(prompt="AI", length=20, seed=0)])


def load_champion(
    models_dir: Path, kind: ModelKind, device: str = "auto"
) -> ImageGenerator | TextGenerator | None:
    """The current champion of `kind`, loaded; None when none has been promoted yet."""
    champion = ModelRegistry(Path(models_dir)).champion(kind)
    if champion is None:
        return None
    if kind == "gan":
        return ImageGenerator.load(champion.path, device)
    return TextGenerator.load(champion.path, device)
