"""Stable deep-link payloads: every article section and FAQ entry gets one, usable as
`t.me/<bot>?start=<payload>`, the same whenever the same corpus is indexed again."""

from __future__ import annotations

import hashlib
import re
from collections import Counter

from knowledge.ingest import Section

# What Telegram accepts as a start parameter.
PAYLOAD = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def entry_payload(section: Section) -> str:
    """`s-` (a section) or `f-` (an FAQ entry) and 12 hex digits of a hash of where it is: its file,
    heading and question, not its position, so unrelated edits elsewhere leave it unchanged."""
    key = "\x1f".join((section.doc, section.kind, section.heading, section.question))
    return ("f-" if section.kind == "faq" else "s-") + hashlib.sha256(key.encode()).hexdigest()[:12]


def entry_payloads(sections: list[Section]) -> list[str]:
    """One payload per section, all distinct: a heading repeated in one article gets -2, -3, ... in
    document order."""
    seen: Counter[str] = Counter()
    payloads = []
    for section in sections:
        payload = entry_payload(section)
        seen[payload] += 1
        payloads.append(payload if seen[payload] == 1 else f"{payload}-{seen[payload]}")
    return payloads
