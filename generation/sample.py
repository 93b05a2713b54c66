"""python -m generation.sample image|text: draw from the champion (or a given checkpoint).

image [--model gan|vae] [--digit D] [--n N] [--seed S] --out FILE.png   (FILE.npy: raw images (n, h, w) in [0, 1])
text ["prompt"] [--model char|word] [--length N] [--temperature T] [--top-k K] [--top-p P] [--seed S]
     prints the text, prompt included, to stdout; logs go to stderr
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from generation.api import (
    DEFAULT_IMAGE_KIND,
    DEFAULT_TEXT_KIND,
    DEFAULT_TEXT_LENGTH,
    IMAGE_KINDS,
    TEXT_KINDS,
    TEXT_MODEL_KINDS,
    ImageRequest,
    ModelKind,
    TextRequest,
)
from generation.models.checkpoint import CheckpointError, read_metadata
from generation.service.inference import ImageGenerator, load_champion, load_generator
from generation.settings import GenerationSettings

log = logging.getLogger("generation.sample")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m generation.sample", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="a checkpoint folder (default: the champion)")
    parser.add_argument("--device", default=None, choices=["auto", "cpu", "cuda", "mps"])
    kinds = parser.add_subparsers(dest="kind", required=True)
    image = kinds.add_parser("image", help="a grid of digits as PNG, or raw images as .npy")
    image.add_argument(
        "--model",
        choices=IMAGE_KINDS,
        help=f"the image generator (default: {DEFAULT_IMAGE_KIND}, or the --checkpoint's own kind)",
    )
    image.add_argument("--digit", type=int, help="0-9; default: a mix")
    image.add_argument("--n", type=int, default=8, help="how many images (default 8)")
    image.add_argument("--seed", type=int)
    image.add_argument("--out", type=Path, required=True, help="FILE.png or FILE.npy")
    text = kinds.add_parser("text", help="continue a prompt")
    text.add_argument("prompt", nargs="?", default="")
    text.add_argument(
        "--model",
        choices=sorted(TEXT_MODEL_KINDS),
        help="char: the character LSTM; word: the word-level LSTM (default: word, or the --checkpoint's own kind)",
    )
    text.add_argument("--length", type=int, default=DEFAULT_TEXT_LENGTH, help="characters to add")
    text.add_argument("--temperature", type=float, default=0.8)
    text.add_argument("--top-k", type=int, default=0, help="0 = off")
    text.add_argument("--top-p", type=float, default=0.95)
    text.add_argument("--seed", type=int)
    return parser


def _kind(args: argparse.Namespace) -> ModelKind:
    """The generator to draw from: `--model` (else the checkpoint's own kind, else the default)."""
    if args.model is not None:
        return TEXT_MODEL_KINDS[args.model] if args.kind == "text" else args.model
    if args.checkpoint is not None:
        try:
            kind = read_metadata(args.checkpoint).get("kind")
        except CheckpointError:
            kind = None  # the loader says what is wrong with it
        if kind in (TEXT_KINDS if args.kind == "text" else IMAGE_KINDS):
            return kind
    return DEFAULT_TEXT_KIND if args.kind == "text" else DEFAULT_IMAGE_KIND


def _load(kind: ModelKind, args: argparse.Namespace, settings: GenerationSettings):
    device = args.device or settings.generation_device
    if args.checkpoint is not None:
        return load_generator(args.checkpoint, kind, device)
    return load_champion(settings.models_dir, kind, device, settings.shipped_dir)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    settings = GenerationSettings.load()
    kind = _kind(args)
    try:
        if args.kind == "image":
            request = ImageRequest(model=kind, digit=args.digit, count=args.n, seed=args.seed)
            if args.out.suffix.lower() not in (".png", ".npy"):
                print("--out must end in .png or .npy", file=sys.stderr)
                return 2
        else:
            request = TextRequest(
                model=kind,
                prompt=args.prompt,
                length=args.length,
                temperature=args.temperature,
                top_k=args.top_k,
                top_p=args.top_p,
                seed=args.seed,
            )
    except ValidationError as exc:
        error = exc.errors()[0]
        flag = {"count": "n", "top_k": "top-k", "top_p": "top-p"}.get(str(error["loc"][0]), error["loc"][0])
        print(f"bad --{flag}: {error['msg']}", file=sys.stderr)
        return 2
    try:
        generator = _load(kind, args, settings)
    except CheckpointError as exc:
        print(f"cannot load the model: {exc}", file=sys.stderr)
        return 1
    if generator is None:
        print(f"no {kind} model yet: train one with `python -m generation.train {kind}`", file=sys.stderr)
        return 1
    log.info("model %s %s", kind, generator.version)
    if isinstance(generator, ImageGenerator):
        assert isinstance(request, ImageRequest)
        if args.out.suffix.lower() == ".npy":
            images, seed, digits = generator.generate_arrays([request])[0]
            np.save(args.out, images.astype(np.float32))
        else:
            result = generator.generate_batch([request])[0]
            args.out.write_bytes(result.png)
            seed, digits = result.seed, result.digits
        log.info("wrote %s (seed %d, digits %s)", args.out, seed, digits)
        return 0
    assert isinstance(request, TextRequest)
    result = generator.generate_batch([request])[0]
    log.info("seed %d", result.seed)
    sys.stdout.write(result.text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
