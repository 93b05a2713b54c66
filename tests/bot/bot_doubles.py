"""Small stand-ins with exactly the interfaces the bot uses: KnowledgeBase and GenerationClient.

They let the bot's unit tests run without loading encoders or torch; the e2e tests use the real
services where those are available.
"""

from __future__ import annotations

import asyncio
import io
import struct
import sys
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bot.jobs import JobManager
from bot.store import Store
from generation.api import (
    MAX_PROMPT_CHARS,
    GeneratorUnavailable,
    ImageRequest,
    ImageResult,
    InvalidRequest,
    ModelInfo,
    TextRequest,
    TextResult,
)
from knowledge.api import Answer, Source, Understanding, detect_lang

FAKE_TRAINER = [sys.executable, str(Path(__file__).with_name("fake_trainer.py"))]


@asynccontextmanager
async def fake_trainer_jobs(data_dir: Path, **options: Any) -> AsyncIterator[JobManager]:
    """A JobManager over a new store in `data_dir` that runs fake_trainer.py instead of the trainer."""
    data_dir.mkdir(parents=True)
    store = Store(data_dir / "bot.sqlite3")
    store.open()
    jobs = JobManager(store, data_dir, cancel_grace_s=0.5, trainer=FAKE_TRAINER, **options)
    try:
        yield jobs
    finally:
        await jobs.shutdown()
        store.close()


class FakeKnowledgeBase:
    """Answers questions mentioning "pricing"/"定价" (with 5 sources), "long" (a 9,000-character answer);
    declines the rest. Echoes the question in the answer so escaping is exercised."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s  # simulated lookup time (ask runs in a worker thread)
        self.initialized = 0
        self.shut_down = 0
        self.rebuilt = 0
        self.questions: list[str] = []
        self.intent_version: str | None = "intent-v1"
        self.intent_on_disk = "intent-v1"  # what reload_intent() finds: a test sets it as a trainer would

    def initialize(self) -> float:
        self.initialized += 1
        return 0.0

    async def ask_async(self, question: str, k: int = 5) -> Answer:
        """Like the real one: the bot awaits it; the lookup itself runs off the event loop."""
        return await asyncio.to_thread(self.ask, question, k)

    def ask(self, question: str, k: int = 5) -> Answer:
        self.questions.append(question)
        if self.delay_s:
            time.sleep(self.delay_s)
        lang = detect_lang(question)
        sources = [
            Source(
                f"doc{i}",
                f"Article {i} <&>",
                f"Section {i}",
                lang,
                f"Passage {i} about pricing & value.",
                0.9 - i / 10,
                f"s-doc{i}",
            )
            for i in range(5)
        ]
        lowered = question.lower()
        if "long" in lowered:
            paragraphs = [f"Paragraph {i}: " + "word " * 150 for i in range(12)]
            return Answer(question, lang, True, "\n\n".join(paragraphs), 0.9, sources[:2])
        if "learning rate" in lowered:  # an answer quoting the article's code, as knowledge.answer does
            code = "From the article's code:\n```\nif loss < best:\n    optimizer = Adam(lr=1e-5)\n```"
            return Answer(question, lang, True, f"The example trains with Adam.\n\n{code}", 0.9, sources)
        if "pricing" in lowered or "定价" in question:
            body = "定价要基于价值。" if lang == "zh" else "Price on value, not cost."
            return Answer(question, lang, True, f"{body} (You asked: {question})", 0.8, sources)
        decline = "知识库里没有答案。" if lang == "zh" else "I don't know that from my articles."
        return Answer(question, lang, False, decline, 0.1, [], ["How should I price an AI product?"])

    async def understand_async(self, message: str, k: int = 5) -> Understanding:
        """Routes by a leading word, as the real classifier would read these: "draw 7 2" (digit, count),
        "write <topic>", a greeting, "recipe ..." (off-topic); "maybe draw 7 2" and "maybe write <topic>"
        are questions the classifier leaned to read as requests; "tanh" and "relu" are small talk the
        knowledge base would answer; anything else is a question."""
        words = message.lower().split()
        first = words[0] if words else ""
        numbers = [int(word) for word in words[1:] if word.isdigit()]
        if first in ("draw", "画"):
            digit = numbers[0] if numbers else None
            return Understanding("image", 0.9, digit=digit, count=numbers[1] if len(numbers) > 1 else 8)
        if first in ("write", "写"):
            return Understanding("text", 0.9, prompt=" ".join(message.split()[1:]))
        if first in ("hi", "hello", "thanks", "thanks!", "你好", "谢谢"):
            return Understanding("smalltalk", 0.9)
        if first in ("tanh", "relu"):  # a bare term read as small talk, which the articles answer
            return Understanding("smalltalk", 0.9, leaning="question")
        if first in ("recipe", "菜谱"):
            return Understanding("offtopic", 0.9)
        if first == "maybe" and len(words) > 1 and words[1] in ("draw", "write"):
            answer = await self.ask_async(message, k)
            if words[1] == "draw":
                digit = numbers[0] if numbers else None
                count = numbers[1] if len(numbers) > 1 else 1
                return Understanding("question", 0.4, answer, digit, count, leaning="image")
            return Understanding(
                "question", 0.4, answer, prompt=" ".join(message.split()[2:]), leaning="text"
            )
        return Understanding("question", 0.9, await self.ask_async(message, k))

    def entry(self, payload: str) -> Answer | None:
        """The "pricing" answer's sources are entries s-doc0 .. s-doc4; no other payload is."""
        if payload not in {f"s-doc{i}" for i in range(5)}:
            return None
        source = self.ask("pricing?").sources[int(payload[-1])]
        return Answer(source.section, "en", True, source.text, 1.0, [source])

    def faq(self, lang: str, limit: int = 5) -> list[Answer]:
        """Three FAQ entries in either language."""
        entries = [self.entry(f"s-doc{i}") for i in range(3)]
        return [replace(entry, lang=lang) for entry in entries if entry is not None][:limit]

    def reload_intent(self) -> str | None:
        self.intent_version = self.intent_on_disk
        return self.intent_version

    def rebuild(self) -> dict:
        self.rebuilt += 1
        return {"documents": 5}

    def stats(self) -> dict:
        return {
            "documents": 5,
            "sections": 40,
            "faq_entries": 12,
            "fingerprint": "abc",
            "built_at": "2026-11-26T00:00:00Z",
            "encoder": "fake",
        }

    def shutdown(self) -> None:
        self.shut_down += 1


def tiny_png(width: int = 4, height: int = 4) -> bytes:
    """A valid grey PNG, built with the standard library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes([128] * width) for _ in range(height))
    buffer = io.BytesIO()
    buffer.write(b"\x89PNG\r\n\x1a\n")
    buffer.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)))
    buffer.write(chunk(b"IDAT", zlib.compress(raw)))
    buffer.write(chunk(b"IEND", b""))
    return buffer.getvalue()


@dataclass
class FakeVersion:
    """Shaped like generation.api.ModelVersion."""

    kind: str
    version: str
    status: str
    created_at: str
    metrics: dict[str, float]
    note: str = ""


class FakeGenerationClient:
    """Returns a tiny PNG and an echo of the prompt; `available=False` makes every call fail.

    Each kind has two versions, v1 (previous) and test-1 (champion); rollback swaps the champion and
    reload serves whatever `serving` says (tests set it to what a trainer promoted)."""

    def __init__(self, available: bool = True, delay_s: float = 0.0) -> None:
        self._available = available
        self.delay_s = delay_s
        self.requests: list[object] = []
        self.initialized = 0
        self.shut_down = 0
        self.reloads = 0
        self.serving = {
            "gan": "gan-test-1",
            "lstm": "lstm-test-1",
            "vae": "vae-test-1",
            "word": "word-test-1",
        }
        self.promoted_on_reload: dict[str, str] = {}
        self.history = {kind: [f"{kind}-v1"] for kind in self.serving}

    @property
    def available(self) -> bool:
        return self._available

    @property
    def remote(self) -> bool:
        return False

    @property
    def jobs(self) -> None:
        return None  # no generation service: the bot trains on its own host

    def available_for(self, kind: str) -> bool:
        return self._available and kind in self.serving

    async def initialize(self) -> None:
        self.initialized += 1

    async def image(self, request: ImageRequest) -> ImageResult:
        self.requests.append(request)
        if not self._available:
            raise GeneratorUnavailable("no image model")
        await asyncio.sleep(self.delay_s)
        digits = [request.digit] * request.count
        return ImageResult(
            png=tiny_png(), model_version=self.serving[request.model], seed=request.seed or 42, digits=digits
        )

    async def text(self, request: TextRequest) -> TextResult:
        self.requests.append(request)
        if not self._available:
            raise GeneratorUnavailable("no text model")
        if len(request.prompt) > MAX_PROMPT_CHARS:
            raise InvalidRequest(f"prompt longer than {MAX_PROMPT_CHARS} characters")
        await asyncio.sleep(self.delay_s)
        return TextResult(
            text=request.prompt + " and then <more> & more",
            model_version=self.serving[request.model],
            seed=7,
            model=request.model,
        )

    async def models(self) -> list[ModelInfo]:
        if not self._available:
            return [ModelInfo(kind=kind, version=None) for kind in self.serving]
        return [
            ModelInfo(kind="gan", version=self.serving["gan"], metrics={"fid": 12.5}),
            ModelInfo(kind="lstm", version=self.serving["lstm"], metrics={"perplexity": 3.2}),
            ModelInfo(kind="vae", version=self.serving["vae"], metrics={"fd_ratio": 1.7}),
            ModelInfo(kind="word", version=self.serving["word"], metrics={"bpc": 2.3}),
        ]

    async def reload(self) -> list[ModelInfo]:
        self.reloads += 1
        for kind, version in self.promoted_on_reload.items():
            self.history[kind].append(self.serving[kind])
            self.serving[kind] = version
        self.promoted_on_reload.clear()
        return await self.models()

    async def versions(self, kind: str) -> list[FakeVersion]:
        champion = FakeVersion(kind, self.serving[kind], "champion", "2026-11-26T10:00:00Z", {"score": 2.0})
        previous = [
            FakeVersion(kind, version, "previous", "2026-11-25T10:00:00Z", {"score": 1.0})
            for version in reversed(self.history[kind])
        ]
        return [champion, *previous]

    async def rollback(self, kind: str, version: str | None = None) -> FakeVersion:
        history = self.history[kind]
        target = version or (history[-1] if history else None)
        if target is None or target not in history:
            raise InvalidRequest(
                f"no {kind} version {target!r}" if target else f"no previous {kind} champion"
            )
        history.remove(target)
        self.serving[kind] = target
        return FakeVersion(kind, target, "champion", "2026-11-25T10:00:00Z", {"score": 1.0})

    async def shutdown(self) -> None:
        self.shut_down += 1
