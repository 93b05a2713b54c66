"""What a text generator writes, measured on many samples: how many of its English words are words of
the training text, whether it copies long stretches of the corpus, and how varied it is.

    python -m benchmarks.text_samples [--model char|word] [--checkpoint DIR] [--samples 100] [--length 300]
        [--temperature T] [--top-p P] [--top-k K]

Targets: >= 99% of generated English words are in the training text's vocabulary; in 100 samples of
300 characters no 60-character span copied verbatim from the corpus; distinct 10-grams >= 0.7.
Samples continue a fixed set of English and Chinese prompts (and none) with seeds 0, 1, 2, ...
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from generation.api import DEFAULT_TEXT_KIND, TEXT_MODEL_KINDS, TextKind, TextRequest
from generation.service.inference import load_champion, load_generator
from generation.settings import GenerationSettings
from generation.train.data import load_text_corpus

PROMPTS = ("", "Our startup", "Large models", "The founder", "大模型", "创业公司", "In this article", "数据")
COPY_CHARS = 60
NGRAM_CHARS = 10
TARGET_VOCAB_SHARE = 0.99
TARGET_COPIES = 0
TARGET_DISTINCT = 0.7
ENGLISH_WORD = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True)
class SampleFigures:
    vocab_share: float  # generated English words that are words of the training text
    copies: int  # samples holding a COPY_CHARS-character stretch of the corpus, verbatim
    distinct: float  # distinct character NGRAM_CHARS-grams over all of them, across samples
    words: int
    samples: int

    def targets(self) -> dict[str, bool]:
        return {
            "vocab_words": self.vocab_share >= TARGET_VOCAB_SHARE,
            "copies": self.copies <= TARGET_COPIES,
            "distinct_10grams": self.distinct >= TARGET_DISTINCT,
        }


def measure(continuations: list[str], training_texts: list[str], corpus_texts: list[str]) -> SampleFigures:
    """Figures of generated `continuations` (prompts left out) against the training text's English
    words and every COPY_CHARS-character stretch of the whole corpus."""
    vocabulary = {word.lower() for text in training_texts for word in ENGLISH_WORD.findall(text)}
    stretches = {
        text[start : start + COPY_CHARS]
        for text in corpus_texts
        for start in range(len(text) - COPY_CHARS + 1)
    }
    words = [word.lower() for text in continuations for word in ENGLISH_WORD.findall(text)]
    known = sum(word in vocabulary for word in words)
    copies = sum(
        any(text[start : start + COPY_CHARS] in stretches for start in range(len(text) - COPY_CHARS + 1))
        for text in continuations
    )
    grams = [
        text[start : start + NGRAM_CHARS]
        for text in continuations
        for start in range(len(text) - NGRAM_CHARS + 1)
    ]
    return SampleFigures(
        vocab_share=known / max(1, len(words)),
        copies=copies,
        distinct=len(set(grams)) / max(1, len(grams)),
        words=len(words),
        samples=len(continuations),
    )


def sample_requests(kind: TextKind, count: int, length: int, **sampling: float) -> list[TextRequest]:
    return [
        TextRequest(model=kind, prompt=PROMPTS[seed % len(PROMPTS)], length=length, seed=seed, **sampling)
        for seed in range(count)
    ]


def draw(generator, requests: list[TextRequest], batch: int = 16) -> list[str]:
    """Each request's continuation (its prompt cut off)."""
    out = []
    for start in range(0, len(requests), batch):
        chunk = requests[start : start + batch]
        for request, result in zip(chunk, generator.generate_batch(chunk), strict=True):
            out.append(result.text[len(request.prompt) :])
    return out


def report(figures: SampleFigures) -> list[str]:
    met = figures.targets()
    return [
        f"  English words in the training vocabulary: {figures.vocab_share:.2%} of {figures.words} "
        f"(target >= {TARGET_VOCAB_SHARE:.0%}) {'PASS' if met['vocab_words'] else 'FAIL'}",
        f"  samples with a {COPY_CHARS}-character verbatim copy of the corpus: {figures.copies} of "
        f"{figures.samples} (target {TARGET_COPIES}) {'PASS' if met['copies'] else 'FAIL'}",
        f"  distinct {NGRAM_CHARS}-grams: {figures.distinct:.3f} (target >= {TARGET_DISTINCT}) "
        f"{'PASS' if met['distinct_10grams'] else 'FAIL'}",
    ]


def sample_figures(
    generator, kind: TextKind, corpus_dir: Path, count: int = 100, length: int = 300, **sampling: float
) -> SampleFigures:
    corpus = load_text_corpus(corpus_dir)
    continuations = draw(generator, sample_requests(kind, count, length, **sampling))
    whole = [train + heldout for train, heldout in zip(corpus.train, corpus.heldout, strict=True)]
    return measure(continuations, corpus.train, whole)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.text_samples", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--model", choices=sorted(TEXT_MODEL_KINDS), help="default: word")
    parser.add_argument("--checkpoint", type=Path, help="a checkpoint folder (default: the champion)")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--length", type=int, default=300)
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--top-p", type=float)
    parser.add_argument("--top-k", type=int)
    parser.add_argument("--show", type=int, default=3, help="print this many samples")
    args = parser.parse_args(argv)
    settings = GenerationSettings.load()
    kind = TEXT_MODEL_KINDS[args.model] if args.model else DEFAULT_TEXT_KIND
    generator = (
        load_generator(args.checkpoint, kind, "cpu")
        if args.checkpoint
        else load_champion(settings.models_dir, kind, "cpu", settings.shipped_dir)
    )
    if generator is None:
        print(f"no {kind} model", file=sys.stderr)
        return 1
    sampling = {
        key: value
        for key, value in (("temperature", args.temperature), ("top_p", args.top_p), ("top_k", args.top_k))
        if value is not None
    }
    requests = sample_requests(kind, args.samples, args.length, **sampling)
    continuations = draw(generator, requests)
    corpus = load_text_corpus(settings.text_corpus_dir)
    whole = [train + heldout for train, heldout in zip(corpus.train, corpus.heldout, strict=True)]
    figures = measure(continuations, corpus.train, whole)
    for request, text in list(zip(requests, continuations, strict=True))[: args.show]:
        print(json.dumps(request.prompt + text, ensure_ascii=False))
    print(f"== {kind} {generator.version} {json.dumps(sampling)}")
    print("\n".join(report(figures)))
    return 0 if all(figures.targets().values()) else 1


if __name__ == "__main__":
    sys.exit(main())
