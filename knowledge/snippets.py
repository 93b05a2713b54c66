"""The code in a passage that answers a question: fenced blocks cut into snippets (runs of lines
between blank lines: a comment and the statements it explains), chosen by the question's words."""

from __future__ import annotations

from collections.abc import Callable

from knowledge.api import CODE_FENCE_MARK as FENCE
from knowledge.text import lexical_tokens

# A snippet is quoted when the question's words it holds, beyond those the prose quote already holds,
# weigh this much together (their idf summed): one common word ("model", "size") does not make a
# question about the code; a rare one ("lr", "save") or two ("epochs", "batch_size") do. Chosen leaving
# each labelled set out in turn, by the answers that gain an expected phrase less those that gain code
# without one.
MIN_MATCH = 4.0
MOST_SNIPPETS = 3
CODE_CHARS = 400


def fence_balanced(pieces: list[str]) -> list[str]:
    """Consecutive pieces of one text, each with the code fences it lacks: a piece that starts inside a
    block opens it, one that ends inside a block closes it (a long block split into passages)."""
    balanced = []
    inside = False
    for piece in pieces:
        opened = inside
        for line in piece.split("\n"):
            if _is_fence(line):
                inside = not inside
        text = f"{FENCE}\n{piece}" if opened else piece
        balanced.append(f"{text}\n{FENCE}" if inside else text)
    return balanced


def _is_fence(line: str) -> bool:
    return line.strip().startswith(FENCE)


def snippets(text: str) -> list[str]:
    """The runs of non-blank lines inside the text's code fences, in order."""
    found: list[str] = []
    run: list[str] = []
    inside = False
    for line in text.split("\n"):
        fence = _is_fence(line)
        if fence or not line.strip():
            if run:
                found.append("\n".join(run))
                run = []
            inside = inside != fence
            continue
        if inside:
            run.append(line.rstrip())
    if run and inside:
        found.append("\n".join(run))
    return found


def opening_code(text: str, limit: int) -> list[str]:
    """The text's first snippets within limit (at least the first, cut if it must be)."""
    chosen: list[str] = []
    used = 0
    for snippet in snippets(text):
        if chosen and used + len(snippet) > limit:
            break
        chosen.append(snippet[:limit])
        used += len(snippet)
    return chosen


def matching_snippets(text: str, terms: set[str], idf: Callable[[str], float]) -> list[str]:
    """The text's snippets that the question's `terms` point to, in order, within CODE_CHARS: the best
    (when its terms weigh MIN_MATCH) and up to MOST_SNIPPETS in all that match half as well."""
    found = snippets(text)

    def weight(snippet: str) -> float:
        return sum(idf(term) for term in terms & set(lexical_tokens(snippet)))

    weights = [weight(snippet) for snippet in found]
    if not weights or max(weights) < MIN_MATCH:
        return []
    best = max(weights)
    order = sorted(range(len(found)), key=lambda n: (-weights[n], n))[:MOST_SNIPPETS]
    chosen: dict[int, str] = {}
    used = 0
    for n in order:
        if weights[n] < best / 2:
            break
        shown = _shortened(found[n], weight)
        if chosen and used + len(shown) > CODE_CHARS:
            continue
        chosen[n] = shown
        used += len(shown)
    return [chosen[n] for n in sorted(chosen)]


def _shortened(snippet: str, weight: Callable[[str], float]) -> str:
    """A snippet within CODE_CHARS: whole when it fits, else its first line and, while they fit, the
    lines holding the question's words that weigh most, in their order."""
    if len(snippet) <= CODE_CHARS:
        return snippet
    lines = snippet.split("\n")
    weights = [weight(line) for line in lines]
    kept = {0}
    used = len(lines[0])
    for n in sorted(range(1, len(lines)), key=lambda n: (-weights[n], n)):
        if weights[n] <= 0:
            break
        if used + len(lines[n]) + 1 <= CODE_CHARS:
            kept.add(n)
            used += len(lines[n]) + 1
    return "\n".join(lines[n] for n in sorted(kept))
