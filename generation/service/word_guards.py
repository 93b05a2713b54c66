"""Sampling guards of the word-level generator, built from the training text the model keeps.

Like top-k and top-p they only narrow what the sampler may draw from the model's distribution; the
probabilities the scorer measures are the model's own.

VocabularyGuard: an English word is written only if the training text has it (case aside): the
letters drawn so far must begin some training word, and a word may end only once it is one.
CopyGuard: no stretch of COPY_CHARS characters of the continuation repeats the training text.
"""

from __future__ import annotations

import functools
import re

import torch

WORD = re.compile(r"[A-Za-z]+")
LETTERS = re.compile(r"[A-Za-z]+")
COPY_CHARS = 60


class VocabularyGuard:
    """Which tokens may come next, given the English word being written (its letters so far)."""

    def __init__(self, training_text: str, tokens: list[str]) -> None:
        self.words = {word.lower() for word in WORD.findall(training_text)}
        self.prefixes = {word[:end] for word in self.words for end in range(1, len(word) + 1)}
        self.letters = [index for index, token in enumerate(tokens) if LETTERS.fullmatch(token)]
        self._letter_tokens = [tokens[index].lower() for index in self.letters]
        spaced = [
            index
            for index, token in enumerate(tokens)
            if token.startswith(" ") and LETTERS.fullmatch(token[1:])
        ]
        size = len(tokens)
        self.others = torch.ones(size, dtype=torch.bool)  # tokens that end a word being written
        self.others[self.letters] = False
        self.others[spaced] = False
        self.new_words = torch.zeros(size, dtype=torch.bool)  # " word" tokens that begin a training word
        self.new_words[[i for i in spaced if tokens[i][1:].lower() in self.prefixes]] = True
        # Remembered per partial word: generation meets the same few hundred again and again.
        self.penalty = functools.lru_cache(maxsize=4096)(self._penalty)

    def allowed(self, partial: str) -> torch.Tensor:
        """Tokens allowed after the letters `partial` (lower-case; "" outside a word)."""
        complete = partial == "" or partial in self.words or partial not in self.prefixes
        mask = torch.zeros_like(self.others)
        extend = partial == "" or partial in self.prefixes
        if extend:
            mask[
                [
                    i
                    for i, t in zip(self.letters, self._letter_tokens, strict=True)
                    if partial + t in self.prefixes
                ]
            ] = True
        if complete:
            mask |= self.others | self.new_words
        return mask

    def _penalty(self, partial: str) -> torch.Tensor:
        """What `allowed` says as an addition to log-probabilities: 0 where allowed, -inf where not
        (adding is much faster on CPU than masking or taking the log of zeros)."""
        return torch.zeros(len(self.others)).masked_fill_(~self.allowed(partial), float("-inf"))

    @staticmethod
    def follow(partial: str, token: str) -> str:
        """The letters of the word being written after `token` (lower-case)."""
        if LETTERS.fullmatch(token):
            return partial + token.lower()
        if token.startswith(" ") and LETTERS.fullmatch(token[1:]):
            return token[1:].lower()
        return ""

    @staticmethod
    def start(prompt: str) -> str:
        """The letters of the word a prompt ends in the middle of."""
        match = re.search(r"[A-Za-z]+$", prompt)
        return match.group(0).lower() if match else ""


class CopyGuard:
    """Whether the end of a text repeats COPY_CHARS characters of the training text verbatim."""

    def __init__(self, training_text: str) -> None:
        self._stretches = {
            hash(training_text[start : start + COPY_CHARS])
            for start in range(len(training_text) - COPY_CHARS + 1)
        }

    def copies(self, text: str, new_chars: int) -> bool:
        """Whether one of the stretches ending in the last `new_chars` characters of `text` is a copy."""
        first = max(COPY_CHARS, len(text) - new_chars + 1)
        return any(
            hash(text[end - COPY_CHARS : end]) in self._stretches for end in range(first, len(text) + 1)
        )
