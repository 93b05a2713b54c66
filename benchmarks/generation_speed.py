"""Generator speed on this machine: an 8-image grid, 300 characters of text, and batched vs sequential.

    python -m benchmarks.generation_speed [--models-dir DIR] [--device cpu] [--threads N] [--lstm-hidden H]

Uses the champions under DATA_DIR/models when present; otherwise untrained networks of the default
recipes' shapes (--lstm-hidden sets the untrained LSTM's width, to check others). Exits 1 when a
figure misses its target. The last line gives this process's CPU time over its wall time: well
under 100% (times the threads) means other work shared the CPU during the run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from generation.api import ImageRequest, TextRequest
from generation.models.checkpoint import Checkpoint
from generation.models.gan import GanConfig, Generator
from generation.models.lstm import CharLSTM, LstmConfig
from generation.models.vocab import CharVocab
from generation.service.inference import ImageGenerator, TextGenerator, load_champion
from generation.service.packed import compute_dtype
from generation.settings import GenerationSettings
from generation.train.data import load_text_corpus
from generation.train.gan import GanRecipe
from generation.train.lstm import LstmRecipe

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


def untrained_generators(
    settings: GenerationSettings, device: str, lstm_hidden: int | None = None
) -> tuple[ImageGenerator, TextGenerator]:
    gan = GanRecipe()
    gan_config = GanConfig(gan.image_size, gan.z_dim, 10, gan.g_channels, gan.d_channels)
    images = ImageGenerator(
        Checkpoint("gan", Generator(gan_config).eval(), {"version": "untrained"}), torch.device(device)
    )
    lstm = LstmRecipe()
    corpus = load_text_corpus(settings.text_corpus_dir)
    vocab = CharVocab.build(corpus.train, min_count=lstm.min_char_count)
    config = LstmConfig(
        len(vocab),
        lstm.embed_dim,
        lstm_hidden or lstm.hidden_size,
        lstm.layers,
        lstm.dropout,
        lstm.tie_embeddings,
    )
    checkpoint = Checkpoint("lstm", CharLSTM(config).eval(), {"version": "untrained"}, vocab=vocab)
    return images, TextGenerator(checkpoint, torch.device(device))


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
    images = load_champion(models_dir, "gan", args.device)
    texts = None if args.lstm_hidden else load_champion(models_dir, "lstm", args.device)
    fallback_images, fallback_texts = (
        untrained_generators(settings, args.device, args.lstm_hidden)
        if not (images and texts)
        else (None, None)
    )
    images = images or fallback_images
    texts = texts or fallback_texts
    assert isinstance(images, ImageGenerator) and isinstance(texts, TextGenerator)
    print(
        f"device {args.device}, torch threads {torch.get_num_threads()}, matrix products in "
        f"{str(compute_dtype(torch.device(args.device))).removeprefix('torch.')}, gan {images.version}, "
        f"lstm {texts.version} (hidden {texts.model.config.hidden_size}, vocabulary {len(texts.vocab)})"
    )

    grid_ms, _ = timed_ms(lambda: images.generate_batch([ImageRequest(count=8, seed=1)]), args.repeats)
    text_ms, _ = timed_ms(
        lambda: texts.generate_batch([TextRequest(prompt="AI startups", length=300, seed=1)]), 5
    )

    image_requests = [ImageRequest(count=8, seed=seed) for seed in range(BATCH)]
    text_requests = [TextRequest(prompt="创业 startup", length=300, seed=seed) for seed in range(BATCH)]
    image_seq, image_seq_cpu = timed_ms(
        lambda: [images.generate_arrays([request]) for request in image_requests], 3
    )
    image_batch, image_batch_cpu = timed_ms(lambda: images.generate_arrays(image_requests), 3)
    image_seq_png, _ = timed_ms(lambda: [images.generate_batch([request]) for request in image_requests], 3)
    image_batch_png, _ = timed_ms(lambda: images.generate_batch(image_requests), 3)
    text_seq, text_seq_cpu = timed_ms(
        lambda: [texts.generate_batch([request]) for request in text_requests], 1
    )
    text_batch, text_batch_cpu = timed_ms(lambda: texts.generate_batch(text_requests), 2)

    rows = [
        ("8-image grid (PNG)", grid_ms, f"<= {GRID_MS_TARGET:.0f} ms", grid_ms <= GRID_MS_TARGET),
        ("300 characters of text", text_ms, f"<= {TEXT_MS_TARGET:.0f} ms", text_ms <= TEXT_MS_TARGET),
    ]
    print(f"{'figure':44} {'value':>12}  target")
    for name, value, target, ok in rows:
        print(f"{name:44} {value:9.1f} ms  {target}  {'PASS' if ok else 'FAIL'}")
    speedups = [
        ("image sampling, 32 x 8 images", image_seq / image_batch, True),
        ("image sampling + PNG, 32 x 8 images", image_seq_png / image_batch_png, False),
        ("text sampling, 32 x 300 characters", text_seq / text_batch, True),
    ]
    ok = all(row[3] for row in rows)
    for name, speedup, gated in speedups:
        verdict = ("PASS" if speedup >= BATCH_SPEEDUP_TARGET else "FAIL") if gated else "info"
        ok = ok and (speedup >= BATCH_SPEEDUP_TARGET or not gated)
        print(
            f"{'batched/sequential ' + name:44} {speedup:9.1f} x   >= {BATCH_SPEEDUP_TARGET:.0f}x  {verdict}"
        )
    print(
        f"(sequential/batched ms: images {image_seq:.0f}/{image_batch:.0f}, with PNG {image_seq_png:.0f}/"
        f"{image_batch_png:.0f}, text {text_seq:.0f}/{text_batch:.0f})"
    )
    print(
        f"(the same ratios in CPU time, for a loaded machine: images {image_seq_cpu / image_batch_cpu:.1f}x, "
        f"text {text_seq_cpu / text_batch_cpu:.1f}x)"
    )
    wall, cpu = time.perf_counter() - started_wall, time.process_time() - started_cpu
    print(f"this process: {cpu:.1f} s CPU in {wall:.1f} s wall ({100 * cpu / wall:.0f}%)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
