"""Chinese typo repair: the homophones a pinyin keyboard swaps in (计算资原 for 计算资源, 交叉商 for 交叉熵).

A question character that no two-character word of the corpus holds (beside a neighbour that is not
a particle) is replaced by one with the same pinyin, tones ignored, when that makes a three-character
run the corpus uses, and uses mostly: the run's other two characters are followed (or preceded, or
surrounded) by the new character in at least TRIGRAM_SHARE of the corpus's runs of that shape.
Common characters the corpus happens not to use beside their neighbours ("书" in "的书推荐") find no
such run and stay.
"""

from __future__ import annotations

import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable

from pypinyin.pinyin_dict import pinyin_dict

from knowledge.text import CHINESE_STOP_CHARS, CJK_RUN

# Both chosen out of fold on the labelled sets: the fewest changed questions among the variants that
# found the most answers (a run seen once or twice, or a share under a half, also changed real words).
MIN_TRIGRAM_COUNT = 3
TRIGRAM_SHARE = 0.5
WILDCARD = "*"


def readings(char: str) -> frozenset[str]:
    """The character's pinyin readings without tone marks (none for a character pinyin does not know)."""
    raw = pinyin_dict.get(ord(char))
    if not raw:
        return frozenset()
    return frozenset(_toneless(reading) for reading in raw.split(","))


def _toneless(reading: str) -> str:
    decomposed = unicodedata.normalize("NFD", reading)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


class ChineseSpelling:
    """Repairs homophone typos in the Chinese of a question against a corpus's character runs."""

    def __init__(self, texts: Iterable[str]) -> None:
        counts: Counter[str] = Counter()
        for text in texts:
            for run in CJK_RUN.findall(text):
                counts.update(run[i : i + 2] for i in range(len(run) - 1))
                counts.update(run[i : i + 3] for i in range(len(run) - 2))
        self._pairs = {gram for gram in counts if len(gram) == 2}
        self._triples = {gram: n for gram, n in counts.items() if len(gram) == 3 and n >= MIN_TRIGRAM_COUNT}
        # How often each trigram's shape (two characters and a gap) occurs, whatever fills the gap.
        self._shapes: Counter[str] = Counter()
        for gram, n in counts.items():
            if len(gram) == 3:
                for i in range(3):
                    self._shapes[gram[:i] + WILDCARD + gram[i + 1 :]] += n
        self._homophones: dict[str, set[str]] = defaultdict(set)
        for char in {c for pair in self._pairs for c in pair} - CHINESE_STOP_CHARS:
            for reading in readings(char):
                self._homophones[reading].add(char)

    def repair(self, text: str) -> str:
        """The text with each typo'd character replaced; text without Chinese is returned as is."""
        chars = list(text)
        for match in CJK_RUN.finditer(text):
            start, end = match.span()
            for i in range(start, end):
                if chars[i] in CHINESE_STOP_CHARS or self._in_pair(chars, start, end, i):
                    continue
                replacement = self._best_homophone(chars, start, end, i)
                if replacement:
                    chars[i] = replacement
        return "".join(chars)

    def _in_pair(self, chars: list[str], start: int, end: int, i: int) -> bool:
        """Whether a corpus word of two characters holds position i with a neighbour that is not a
        particle ("将有" says nothing about 将)."""
        neighbours = [(chars[i - 1], chars[i - 1] + chars[i])] if i > start else []
        if i + 1 < end:
            neighbours.append((chars[i + 1], chars[i] + chars[i + 1]))
        return any(pair in self._pairs and other not in CHINESE_STOP_CHARS for other, pair in neighbours)

    def _best_homophone(self, chars: list[str], start: int, end: int, i: int) -> str | None:
        """The same-sounding character with the most convincing trigrams at position i, if any convinces."""
        best: tuple[tuple[int, float], str] | None = None
        original = chars[i]
        # One set over all of a polyphone's readings, in a fixed order: a character two readings share
        # is weighed once, and a tie goes the same way in every process (frozenset order does not).
        candidates = set().union(*(self._homophones.get(reading, ()) for reading in readings(original)))
        for candidate in sorted(candidates - {original}):
            shares = self._trigram_shares(chars, start, end, i, candidate)
            if not shares or max(shares) < TRIGRAM_SHARE:
                continue
            score = (len(shares), max(shares))
            if best is None or score > best[0]:
                best = (score, candidate)
        return best[1] if best else None

    def _trigram_shares(self, chars: list[str], start: int, end: int, i: int, candidate: str) -> list[float]:
        """For each corpus trigram the candidate makes at position i: how much of its shape it is."""
        shares = []
        for first in range(max(start, i - 2), min(i, end - 3) + 1):
            window = chars[first : first + 3]
            window[i - first] = candidate
            gram = "".join(window)
            count = self._triples.get(gram)
            if count and not all(c in CHINESE_STOP_CHARS for c in gram if c != candidate):
                window[i - first] = WILDCARD
                shares.append(count / self._shapes["".join(window)])
        return shares
