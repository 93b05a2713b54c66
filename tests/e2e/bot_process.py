"""`python tests/e2e/bot_process.py`: the bot as `python -m bot run` starts it (settings from the
environment, secret-redacting logs, run_polling with its signal handling), with the knowledge base
and generators replaced by the test doubles, so process-level tests (SIGKILL, SIGTERM) start in a
second instead of loading encoders and models. BOT_TEST_KNOWLEDGE_DELAY_S slows every answer down.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "bot"), str(HERE.parents[1])]

from bot_doubles import FakeGenerationClient, FakeKnowledgeBase  # noqa: E402

from bot.__main__ import exit_process, start  # noqa: E402
from bot.context import STORE_FILE, Services  # noqa: E402
from bot.settings import BotSettings  # noqa: E402
from bot.store import Store  # noqa: E402

if __name__ == "__main__":
    settings = BotSettings.load()
    knowledge = FakeKnowledgeBase(delay_s=float(os.environ.get("BOT_TEST_KNOWLEDGE_DELAY_S", "0")))
    generation = FakeGenerationClient()
    # The doubles record every call for the tests' assertions; nothing reads them here, and in a soak
    # that record would be the process's only growing memory.
    knowledge.questions = deque(maxlen=100)
    generation.requests = deque(maxlen=100)
    services = Services(knowledge, generation, Store(settings.data_dir / STORE_FILE))
    exit_process(start("run", settings, services))
