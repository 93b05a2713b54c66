"""Character vocabulary with an unknown-character slot, serialisable into checkpoint metadata."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

UNK = "\ufffd"  # stands in for any character the model never learned


class CharVocab:
    """Maps characters to ids; id 0 is UNK, so unseen characters never crash encoding."""

    def __init__(self, chars: Iterable[str]) -> None:
        ordered = [UNK, *(char for char in chars if char != UNK)]
        if len(set(ordered)) != len(ordered):
            raise ValueError("vocabulary characters must be unique")
        self.chars = ordered
        self._index = {char: index for index, char in enumerate(ordered)}

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 2) -> CharVocab:
        """Characters seen at least `min_count` times, most frequent first; rarer ones become UNK."""
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(text)
        kept = sorted(
            (char for char, count in counts.items() if count >= min_count), key=lambda c: (-counts[c], c)
        )
        return cls(kept)

    @property
    def unk_id(self) -> int:
        return 0

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, char: str) -> bool:
        return char in self._index

    def encode(self, text: str) -> list[int]:
        """Character ids; characters outside the vocabulary map to UNK."""
        return [self._index.get(char, 0) for char in text]

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.chars[index] for index in ids)

    def to_json(self) -> list[str]:
        """JSON-safe form (the order is the id order)."""
        return list(self.chars)

    @classmethod
    def from_json(cls, chars: list[str]) -> CharVocab:
        if not chars or chars[0] != UNK:
            raise ValueError("vocabulary must start with the UNK character")
        return cls(chars)
