"""Bot throughput and latency through the fake Bot API server, beside a bare echo bot.

N private chats each ask M questions one after another (a chat sends its next question when the
previous reply arrived), first to a bare PTB echo bot, then to the real bot (handlers, knowledge base,
store, rate limits, chat actions, HTML), both on the same fake server in the same process and run.
Latency is from the update being queued on the server to the reply reaching it. The knowledge base
has no answer or embedding cache: every question (dev-set questions repeat across chats) runs the full
retrieval, its encoder pass micro-batched with the other chats' questions (knowledge.encoder).

Targets: bot throughput >= 50% of the echo bot's, bot p99 <= 3x echo's p99, no lost replies.

    python -m benchmarks.bot_throughput [--chats 20] [--questions 10] [--knowledge real|double]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "e2e"), str(ROOT / "tests" / "bot")]

from bot_doubles import FakeGenerationClient, FakeKnowledgeBase  # noqa: E402
from fake_telegram import Call, FakeTelegram  # noqa: E402
from telegram import Update  # noqa: E402
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters  # noqa: E402

from bot.app import build_application, running  # noqa: E402
from bot.context import Services  # noqa: E402
from bot.heap import settle_heap  # noqa: E402
from bot.settings import BotSettings  # noqa: E402
from bot.store import Store  # noqa: E402

TOKEN = "4242:bench-token-not-secret"
QUESTIONS = [
    "How should I price an AI product?",
    "How do I find my first customers?",
    "大模型创业的技术突破是什么？",
    "What does a good pitch deck contain?",
    "如何控制推理成本？",
]
THROUGHPUT_RATIO_TARGET = 0.5
P99_RATIO_TARGET = 3.0


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Reply with the message's own text."""
    await update.effective_message.reply_text(update.effective_message.text)


def echo_application(fake: FakeTelegram, concurrency: int) -> Application:
    application = (
        ApplicationBuilder().token(TOKEN).base_url(fake.base_url).concurrent_updates(concurrency).build()
    )
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    return application


class Load:
    """Closed-loop load: each chat sends its next question when its previous reply has arrived."""

    def __init__(self, fake: FakeTelegram, chats: int, questions: int, first_chat_id: int) -> None:
        self.fake = fake
        self.chats = [first_chat_id + index for index in range(chats)]
        self.questions = questions
        self.pool = load_questions()
        self.latencies: list[float] = []
        self.lost = 0
        self._waiting: dict[int, asyncio.Future] = {}
        self._message_ids = itertools.count(1)
        fake.listeners.append(self._on_call)

    def _on_call(self, call: Call) -> None:
        if call.method == "sendMessage" and call.ok:
            future = self._waiting.get(call.chat_id)
            if future is not None and not future.done():
                future.set_result(time.perf_counter())

    async def _chat(self, chat_id: int, offset: int) -> None:
        loop = asyncio.get_running_loop()
        for index in range(self.questions):
            question = self.pool[(offset * self.questions + index) % len(self.pool)]
            future = loop.create_future()
            self._waiting[chat_id] = future
            sent = time.perf_counter()
            user = {"id": chat_id, "is_bot": False, "first_name": "Bench"}
            message = {
                "message_id": next(self._message_ids),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "from": user,
                "text": question,
            }
            self.fake.inject("message", message)
            try:
                received = await asyncio.wait_for(future, timeout=60)
            except TimeoutError:
                self.lost += 1
                continue
            self.latencies.append(received - sent)

    async def run(self) -> float:
        started = time.perf_counter()
        await asyncio.gather(*(self._chat(chat_id, index) for index, chat_id in enumerate(self.chats)))
        return time.perf_counter() - started


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


async def measure(
    label: str, fake: FakeTelegram, start: Callable, chats: int, questions: int, first_chat_id: int
) -> dict:
    async with start() as _:
        # Warm up: one question per chat, not measured (connection pools, caches, first queries).
        await Load(fake, chats, 1, first_chat_id).run()
        load = Load(fake, chats, questions, first_chat_id)
        cpu_started = time.process_time()
        seconds = await load.run()
        cpu_seconds = time.process_time() - cpu_started
    fake.listeners.clear()
    total = chats * questions
    result = {
        "label": label,
        "replies": len(load.latencies),
        "lost": load.lost,
        "throughput": len(load.latencies) / seconds,
        "p50_ms": 1000 * statistics.median(load.latencies),
        "p99_ms": 1000 * percentile(load.latencies, 0.99),
        "seconds": seconds,
        "cpu_ms_per_reply": 1000 * cpu_seconds / max(1, len(load.latencies)),
        "cpu_share": cpu_seconds / seconds,
    }
    print(
        f"{label:>5}: {result['replies']}/{total} replies in {seconds:.2f} s = {result['throughput']:.1f} replies/s,"
        f" p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, lost {load.lost};"
        f" CPU {result['cpu_ms_per_reply']:.2f} ms a reply ({100 * result['cpu_share']:.0f}% of a core,"
        " fake server and load included)",
        flush=True,
    )
    return result


def make_knowledge(kind: str):
    """The real KnowledgeBase (its index under DATA_DIR, built there if missing), or the test double."""
    if kind == "double":
        return FakeKnowledgeBase()
    from knowledge.service import KnowledgeBase
    from knowledge.settings import KnowledgeSettings

    return KnowledgeBase.from_settings(KnowledgeSettings.load())


async def knowledge_alone(knowledge, chats: int, questions: int) -> float:
    """Answers per second from the knowledge base called the way the bot calls it (`ask_async`), with
    the same number of concurrent askers: the ceiling for the bot's throughput."""
    pool = load_questions()

    async def asker(offset: int) -> None:
        for index in range(questions):
            await knowledge.ask_async(pool[(offset * questions + index) % len(pool)])

    started = time.perf_counter()
    await asyncio.gather(*(asker(offset) for offset in range(chats)))
    return chats * questions / (time.perf_counter() - started)


def load_questions() -> list[str]:
    """The knowledge base's dev questions (varied, both languages), else a few fixed ones."""
    path = ROOT / "knowledge" / "eval" / "dev.jsonl"
    if not path.exists():
        return QUESTIONS
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()] or QUESTIONS


async def main_async(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING)
    fake = FakeTelegram(token=TOKEN)
    await fake.start()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        settings = BotSettings(
            _env_file=None,
            telegram_bot_token=TOKEN,
            telegram_api_base_url=fake.base_url,
            data_dir=data_dir,
            telegram_flood_rate=0,  # the fake server has no flood limits; the echo bot has no limiter either
            question_rate=10_000,
            chat_rate=10_000,
            max_concurrent_updates=args.concurrency,
        )
        knowledge = make_knowledge(args.knowledge)
        if args.knowledge == "real":
            started = time.perf_counter()
            await asyncio.to_thread(knowledge.initialize)
            print(f"knowledge base ready in {time.perf_counter() - started:.1f} s", flush=True)
            knowledge.initialize = lambda: None  # already done: keep post_init's call out of the timing
            settle_heap()  # as the bot does once started, so the echo bot does not pay for the loaded heap
        kb_rate = await knowledge_alone(knowledge, args.chats, args.questions)
        print(
            f"knowledge base alone ({args.chats} concurrent askers, no Telegram): {kb_rate:.1f} answers/s",
            flush=True,
        )
        services = Services(knowledge, FakeGenerationClient(), Store(data_dir / "bot.sqlite3"))
        print(
            f"{args.chats} chats x {args.questions} questions, concurrency {args.concurrency}, "
            f"knowledge={args.knowledge}",
            flush=True,
        )
        echo_app = echo_application(fake, args.concurrency)
        echo_result = await measure(
            "echo", fake, lambda: running_echo(echo_app), args.chats, args.questions, 10_000
        )
        bot_app = build_application(settings, services)
        bot_result = await measure(
            "bot", fake, lambda: running(bot_app, poll_timeout=1.0), args.chats, args.questions, 20_000
        )
    await fake.stop()
    ratio = bot_result["throughput"] / echo_result["throughput"]
    p99_ratio = bot_result["p99_ms"] / echo_result["p99_ms"]
    lost = echo_result["lost"] + bot_result["lost"]
    print(f"throughput ratio {ratio:.2f} (target >= {THROUGHPUT_RATIO_TARGET})")
    print(f"p99 ratio {p99_ratio:.2f} (target <= {P99_RATIO_TARGET})")
    print(f"lost replies {lost} (target 0)")
    passed = ratio >= THROUGHPUT_RATIO_TARGET and p99_ratio <= P99_RATIO_TARGET and lost == 0
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


def running_echo(application: Application):
    """Start/stop the echo bot the same way the real bot is started (initialize, polling, start)."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def context():
        async with application:
            await application.updater.start_polling(poll_interval=0, timeout=1)
            await application.start()
            try:
                yield application
            finally:
                await application.updater.stop()
                await application.stop()

    return context()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chats", type=int, default=20)
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent updates, both bots")
    parser.add_argument("--knowledge", choices=["real", "double"], default=None)
    args = parser.parse_args()
    if args.knowledge is None:
        try:
            import knowledge.service  # noqa: F401

            args.knowledge = "real"
        except ImportError:
            args.knowledge = "double"
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
