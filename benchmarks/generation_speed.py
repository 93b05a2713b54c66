"""Generator speed on this machine: an 8-image grid from each image model (GAN, VAE), 300 characters
of text from each text model (character LSTM, word-level LSTM), and batched vs sequential.

    python -m benchmarks.generation_speed [--models-dir DIR] [--device cpu] [--threads N] [--lstm-hidden H]

Uses the champions under DATA_DIR/models when present; otherwise untrained networks of the default
recipes' shapes (--lstm-hidden sets the untrained LSTM's width, to check others), and for the word
model the shipped default champion (its length depends on where its sentences end). Exits 1 when a
figure misses its target. The last line gives this process's CPU time over its wall time: well
under 100% (times the threads) means other work shared the CPU during the run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from generation.api import IMAGE_KINDS, ImageKind, ImageRequest, TextRequest
from generation.models.checkpoint import Checkpoint
from generation.models.gan import GanConfig, Generator
from generation.models.lstm import CharLSTM
from generation.models.vae import VaeConfig, VaeDecoder
from generation.models.vocab import CharVocab
from generation.service.inference import ImageGenerator, TextGenerator, load_champion
from generation.service.packed import compute_dtype
from generation.service.word_generator import WordTextGenerator
from generation.settings import GenerationSettings
from generation.train.data import load_text_corpus
from generation.train.gan import GanRecipe
from generation.train.lstm import LstmRecipe
from generation.train.vae import VaeRecipe

GRID_MS_TARGET = 30.0
TEXT_MS_TARGET = 250.0
BATCH_SPEEDUP_TARGET = 8.0
BATCH = 32


def timed_ms(action: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall time and median CPU time of this process over `repeats` runs, in milliseconds (after
    one warm-up run). The CPU time leaves out the time other programs held the CPU."""
    action()
    wall, cpu = [], []
    for _ in range(repeats):
        started_wall, started_cpu = time.perf_counter(), time.process_time()
        action()
        wall.append((time.perf_counter() - started_wall) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def untrained_image_generator(kind: ImageKind, device: str) -> ImageGenerator:
    """An untrained network of `kind`'s default recipe shape."""
    if kind == "vae":
        vae = VaeRecipe()
        model: Generator | VaeDecoder = VaeDecoder(VaeConfig(vae.image_size, vae.z_dim, 10, vae.hidden))
    else:
        gan = GanRecipe()
        model = Generator(GanConfig(gan.image_size, gan.z_dim, 10, gan.g_channels, gan.d_channels))
    return ImageGenerator(Checkpoint(kind, model.eval(), {"version": "untrained"}), torch.device(device))


def untrained_text_generator(settings: GenerationSettings, device: str, hidden: int | None) -> TextGenerator:
    """An untrained LSTM of the default recipe's shape (`hidden` wide when given)."""
    lstm = LstmRecipe()
    corpus = load_text_corpus(settings.text_corpus_dir)
    vocab = CharVocab.build(corpus.train, min_count=lstm.min_char_count)
    config = replace(lstm, hidden_size=hidden or lstm.hidden_size).network(len(vocab))
    checkpoint = Checkpoint("lstm", CharLSTM(config).eval(), {"version": "untrained"}, vocab=vocab)
    return TextGenerator(checkpoint, torch.device(device))


@dataclass(frozen=True)
class ImageSpeed:
    """One image model's figures: the 8-image grid, and 32 requests batched vs one at a time."""

    grid_ms: float
    sequential_ms: float
    batched_ms: float
    sequential_cpu_ms: float
    batched_cpu_ms: float
    sequential_png_ms: float
    batched_png_ms: float

    @property
    def speedup(self) -> float:
        return self.sequential_ms / self.batched_ms

    @property
    def png_speedup(self) -> float:
        return self.sequential_png_ms / self.batched_png_ms

    @property
    def cpu_speedup(self) -> float:
        return self.sequential_cpu_ms / self.batched_cpu_ms


def image_speed(images: ImageGenerator, repeats: int) -> ImageSpeed:
    """Time an 8-image grid (PNG included) and BATCH requests of 8 images, batched and one by one."""
    grid_ms, _ = timed_ms(lambda: images.generate_batch([ImageRequest(count=8, seed=1)]), repeats)
    requests = [ImageRequest(count=8, seed=seed) for seed in range(BATCH)]
    sequential, sequential_cpu = timed_ms(
        lambda: [images.generate_arrays([request]) for request in requests], 3
    )
    batched, batched_cpu = timed_ms(lambda: images.generate_arrays(requests), 3)
    sequential_png, _ = timed_ms(lambda: [images.generate_batch([request]) for request in requests], 3)
    batched_png, _ = timed_ms(lambda: images.generate_batch(requests), 3)
    return ImageSpeed(grid_ms, sequential, batched, sequential_cpu, batched_cpu, sequential_png, batched_png)


@dataclass(frozen=True)
class TextSpeed:
    """One text model's figures: 300 characters alone, and 32 requests batched vs one at a time."""

    single_ms: float
    sequential_ms: float
    batched_ms: float
    sequential_cpu_ms: float
    batched_cpu_ms: float


def text_speed(texts: TextGenerator | WordTextGenerator) -> TextSpeed:
    kind = "word" if isinstance(texts, WordTextGenerator) else "lstm"
    single, _ = timed_ms(
        lambda: texts.generate_batch([TextRequest(model=kind, prompt="AI startups", length=300, seed=1)]), 5
    )
    requests = [
        TextRequest(model=kind, prompt="创业 startup", length=300, seed=seed) for seed in range(BATCH)
    ]
    sequential, sequential_cpu = timed_ms(
        lambda: [texts.generate_batch([request]) for request in requests], 1
    )
    batched, batched_cpu = timed_ms(lambda: texts.generate_batch(requests), 3)
    return TextSpeed(single, sequential, batched, sequential_cpu, batched_cpu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.generation_speed", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--models-dir", type=Path)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="0 = torch's default")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--lstm-hidden", type=int, help="width of the untrained LSTM (default: the recipe's)")
    args = parser.parse_args(argv)
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = GenerationSettings.load()
    models_dir = args.models_dir or settings.models_dir
    images: dict[ImageKind, ImageGenerator] = {}
    for kind in IMAGE_KINDS:
        loaded = load_champion(models_dir, kind, args.device)
        assert loaded is None or isinstance(loaded, ImageGenerator)
        images[kind] = loaded or untrained_image_generator(kind, args.device)
    texts = None if args.lstm_hidden else load_champion(models_dir, "lstm", args.device)
    texts = texts or untrained_text_generator(settings, args.device, args.lstm_hidden)
    assert isinstance(texts, TextGenerator)
    words = load_champion(models_dir, "word", args.device) or load_champion(
        models_dir, "word", args.device, settings.shipped_dir
    )
    assert words is None or isinstance(words, WordTextGenerator)
    versions = ", ".join(f"{kind} {generator.version}" for kind, generator in images.items())
    print(
        f"device {args.device}, torch threads {torch.get_num_threads()}, matrix products in "
        f"{str(compute_dtype(torch.device(args.device))).removeprefix('torch.')}, {versions}, "
        f"lstm {texts.version} (hidden {texts.model.config.hidden_size}, vocabulary {len(texts.vocab)})"
        + (
            ""
            if words is None
            else f", word {words.version} (vocabulary {len(words.vocab)}, runs on {words.device.type})"
        )
    )

    speeds = {kind: image_speed(generator, args.repeats) for kind, generator in images.items()}
    text_speeds = {"lstm": text_speed(texts)}
    if words is not None:
        text_speeds["word"] = text_speed(words)

    rows = [
        (
            f"8-image grid (PNG), {kind}",
            speed.grid_ms,
            f"<= {GRID_MS_TARGET:.0f} ms",
            speed.grid_ms <= GRID_MS_TARGET,
        )
        for kind, speed in speeds.items()
    ]
    for kind, speed in text_speeds.items():
        rows.append(
            (
                f"300 characters of text, {kind}",
                speed.single_ms,
                f"<= {TEXT_MS_TARGET:.0f} ms",
                speed.single_ms <= TEXT_MS_TARGET,
            )
        )
    print(f"{'figure':44} {'value':>12}  target")
    for name, value, target, ok in rows:
        print(f"{name:44} {value:9.1f} ms  {target}  {'PASS' if ok else 'FAIL'}")
    speedups = [
        row
        for kind, speed in speeds.items()
        for row in (
            (f"{kind} sampling, 32 x 8 images", speed.speedup, True),
            (f"{kind} sampling + PNG, 32 x 8 images", speed.png_speedup, False),
        )
    ]
    for kind, speed in text_speeds.items():
        speedups.append((f"{kind} text, 32 x 300 characters", speed.sequential_ms / speed.batched_ms, True))
    ok = all(row[3] for row in rows)
    for name, speedup, gated in speedups:
        verdict = ("PASS" if speedup >= BATCH_SPEEDUP_TARGET else "FAIL") if gated else "info"
        ok = ok and (speedup >= BATCH_SPEEDUP_TARGET or not gated)
        print(
            f"{'batched/sequential ' + name:44} {speedup:9.1f} x   >= {BATCH_SPEEDUP_TARGET:.0f}x  {verdict}"
        )
    image_ms = ", ".join(
        f"{kind} {speed.sequential_ms:.0f}/{speed.batched_ms:.0f}, with PNG "
        f"{speed.sequential_png_ms:.0f}/{speed.batched_png_ms:.0f}"
        for kind, speed in speeds.items()
    )
    text_ms = ", ".join(
        f"{kind} text {speed.sequential_ms:.0f}/{speed.batched_ms:.0f}" for kind, speed in text_speeds.items()
    )
    print(f"(sequential/batched ms: {image_ms}, {text_ms})")
    image_cpu = ", ".join(f"{kind} {speed.cpu_speedup:.1f}x" for kind, speed in speeds.items())
    print(
        f"(the same ratios in CPU time, for a loaded machine: {image_cpu}"
        + "".join(
            f", {kind} text {speed.sequential_cpu_ms / speed.batched_cpu_ms:.1f}x"
            for kind, speed in text_speeds.items()
        )
        + ")"
    )
    wall, cpu = time.perf_counter() - started_wall, time.process_time() - started_cpu
    print(f"this process: {cpu:.1f} s CPU in {wall:.1f} s wall ({100 * cpu / wall:.0f}%)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
