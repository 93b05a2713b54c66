"""Subword tokens for the word-level LSTM: a byte-pair vocabulary over pre-split words, with a
character fallback, serialisable into checkpoint metadata as plain JSON.

Text is first split into pieces that never mix scripts: a run of CJK ideographs, an English word
(with the space before it), a number, a run of other symbols, or whitespace. Each piece starts as
its characters and byte-pair merges, applied in the order they were learned, join them into tokens.
Every character of the training text (seen often enough) is a token of its own, so any text splits
into tokens; a character outside the vocabulary becomes the UNK token, which the generator never
emits (a prompt keeps its own characters). The merges are learned by `tokenizers` at training time
(generation.train.word); reading and writing text here needs only the standard library.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Sequence

UNK_TOKEN = "<unk>"
EOS_TOKEN = "<eos>"  # ends a document; generation may stop there
SPECIAL_TOKENS = (UNK_TOKEN, EOS_TOKEN)
UNK_ID, EOS_ID = 0, 1
CJK = "\u4e00-\u9fff"
CJK_IDEOGRAPHS = range(0x4E00, 0xA000)
# Pieces, in priority order: CJK runs, words, numbers, symbol runs (each with one space before it),
# then whitespace (a run's last space is left to the piece that follows it), then any other character.
PIECE = re.compile(
    rf"[{CJK}]+| ?[^\W\d_{CJK}]+| ?\d+| ?(?:_|[^\s\w{CJK}])+|\s+(?!\S)|\s+|[\s\S]",
)
# Tokens that end a sentence: generation past the requested length stops after one.
SENTENCE_END = re.compile(r"[.!?。！？…]['\"”’)）」』]*\s*$|\n\s*$")


def pieces(text: str) -> list[str]:
    """`text` cut into the pieces merges work inside; joined, they give `text` back."""
    return PIECE.findall(text)


def is_cjk(char: str) -> bool:
    return ord(char) in CJK_IDEOGRAPHS


class SubwordVocab:
    """Token strings and byte-pair merges; id 0 is UNK and id 1 is EOS."""

    def __init__(self, tokens: Sequence[str], merges: Sequence[tuple[str, str]]) -> None:
        if tuple(tokens[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"a subword vocabulary starts with {', '.join(SPECIAL_TOKENS)}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("vocabulary tokens must be unique")
        self.tokens = list(tokens)
        self.merges = [tuple(pair) for pair in merges]
        self._index = {token: index for index, token in enumerate(self.tokens)}
        for left, right in self.merges:
            if left + right not in self._index:
                raise ValueError(f"merge {left!r} + {right!r} makes no token of the vocabulary")
        self._rank = {pair: rank for rank, pair in enumerate(self.merges)}
        self.chars = {token for token in self.tokens[len(SPECIAL_TOKENS) :] if len(token) == 1}
        self._split = functools.lru_cache(maxsize=1 << 15)(self._split_piece)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, char: str) -> bool:
        """Whether a single character has a token of its own (it is not UNK)."""
        return char in self.chars

    @property
    def unk_id(self) -> int:
        return UNK_ID

    @property
    def eos_id(self) -> int:
        return EOS_ID

    def _split_piece(self, piece: str) -> tuple[str, ...]:
        """One piece as tokens: its characters (UNK where unknown), merged by rank, lowest first."""
        parts = [char if char in self.chars else UNK_TOKEN for char in piece]
        while len(parts) > 1:
            ranked = [
                (self._rank.get((left, right), len(self._rank)), index)
                for index, (left, right) in enumerate(itertools.pairwise(parts))
            ]
            rank, index = min(ranked)
            if rank == len(self._rank):
                break
            parts[index : index + 2] = [parts[index] + parts[index + 1]]
        return tuple(parts)

    def tokenize(self, text: str) -> list[str]:
        """Token strings of `text` (UNK_TOKEN for each unknown character)."""
        return [token for piece in pieces(text) for token in self._split(piece)]

    def encode(self, text: str) -> list[int]:
        return [self._index[token] for token in self.tokenize(text)]

    def spans(self, text: str) -> list[tuple[int, str]]:
        """(token id, the characters of `text` it stands for) for each token: UNK's span is the
        character it replaced, so a scorer can charge for naming it."""
        out = []
        for piece in pieces(text):
            position = 0
            for token in self._split(piece):
                width = 1 if token == UNK_TOKEN else len(token)
                out.append((self._index[token], piece[position : position + width]))
                position += width
        return out

    def decode(self, ids: Iterable[int]) -> str:
        """Text of generated ids; the special tokens stand for no characters."""
        return "".join(self.tokens[index] for index in ids if index >= len(SPECIAL_TOKENS))

    def to_json(self) -> dict[str, list]:
        """JSON-safe form: tokens in id order and merges in rank order."""
        return {"tokens": list(self.tokens), "merges": [list(pair) for pair in self.merges]}

    @classmethod
    def from_json(cls, data: dict) -> SubwordVocab:
        try:
            return cls(data["tokens"], [(left, right) for left, right in data["merges"]])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a subword vocabulary: {exc}") from None
