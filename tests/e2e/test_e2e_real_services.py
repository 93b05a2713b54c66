"""The real KnowledgeBase and the real in-process GenerationClient (on dry-run-trained checkpoints)
behind the real PTB Application and the fake Bot API server."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from bot_e2e import OTHER_USER, TOKEN, private_chat, run_bot, visible
from fake_telegram import FakeTelegram

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
QUESTION_EN = "What hardware do I need to train a large model?"
QUESTION_ZH = "大模型创业的技术突破是什么？"
OFF_TOPIC = "What is the weather on Mars tomorrow?"


class SharedKnowledge:
    """The session's KnowledgeBase for several Applications: started and stopped once, not per bot."""

    def __init__(self, knowledge, data_dir: Path, corpus_dir: Path) -> None:
        self._knowledge = knowledge
        self.data_dir = data_dir  # DATA_DIR and CORPUS_DIR under which the index is built
        self.corpus_dir = corpus_dir

    def initialize(self) -> None:
        """Already initialized by the fixture."""

    def shutdown(self) -> None:
        """Shut down by the fixture at the end of the session."""

    def ask(self, question: str, k: int = 5):
        return self._knowledge.ask(question, k)

    async def ask_async(self, question: str, k: int = 5):
        return await self._knowledge.ask_async(question, k)

    async def understand_async(self, message: str, k: int = 5):
        return await self._knowledge.understand_async(message, k)

    def rebuild(self):
        return self._knowledge.rebuild()

    def stats(self) -> dict:
        return self._knowledge.stats()


@pytest.fixture(scope="session")
def trainers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[subprocess.Popen]]]:
    """Dry-run training of an image and both text generators into a fresh DATA_DIR, in the background."""
    data_dir = tmp_path_factory.mktemp("generation")
    env = {**os.environ, "DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "generation.train", kind, "--dry-run", "--device", "cpu"],
            env=env,
            cwd=data_dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for kind in ("gan", "lstm", "word")
    ]
    yield data_dir, processes
    for process in processes:
        if process.poll() is None:  # a test failed before waiting for it
            process.kill()
            process.communicate()


@pytest.fixture(scope="session")
def generation_data_dir(
    trainers: tuple[Path, list[subprocess.Popen]], real_knowledge: SharedKnowledge
) -> Path:
    """DATA_DIR with dry-run champions for both generators, once both trainers have finished
    (they run while the knowledge base builds: real_knowledge is requested first for that)."""
    del real_knowledge
    data_dir, processes = trainers
    for process in processes:
        _, errors = process.communicate(timeout=600)
        assert process.returncode == 0, errors[-2000:]
    return data_dir


@pytest.fixture(scope="session")
def real_knowledge(tmp_path_factory: pytest.TempPathFactory, trainers: tuple) -> Iterator[SharedKnowledge]:
    """The real KnowledgeBase over one packaged article (kept small so the session builds it quickly);
    `trainers` is requested so the generators train while the index builds."""
    del trainers
    from knowledge.service import KnowledgeBase
    from knowledge.settings import PACKAGED_CORPUS, KnowledgeSettings

    root = tmp_path_factory.mktemp("knowledge")
    corpus = root / "corpus"
    corpus.mkdir()
    smallest = min(PACKAGED_CORPUS.glob("*.txt"), key=lambda path: path.stat().st_size)
    shutil.copy(smallest, corpus / smallest.name)
    knowledge = KnowledgeBase.from_settings(
        KnowledgeSettings(_env_file=None, data_dir=root, corpus_dir=corpus)
    )
    knowledge.initialize()
    yield SharedKnowledge(knowledge, root, corpus)
    knowledge.shutdown()


def real_generation(data_dir: Path):
    from generation.client import GenerationClient
    from generation.settings import GenerationSettings

    settings = GenerationSettings(
        _env_file=None, data_dir=data_dir, generation_url="", generation_device="cpu"
    )
    return GenerationClient.from_settings(settings)


async def test_real_answers_in_the_question_language_with_sources(
    fake: FakeTelegram, data_dir: Path, real_knowledge: SharedKnowledge
) -> None:
    async with run_bot(fake, data_dir, knowledge=real_knowledge):
        chat = private_chat(fake)
        chat.message(QUESTION_EN)
        [english] = await fake.wait_for_reply(chat.id)
        zh_chat = private_chat(fake, OTHER_USER)
        zh_chat.message(QUESTION_ZH, user=OTHER_USER)
        [chinese] = await fake.wait_for_reply(zh_chat.id)
        chat.message(OFF_TOPIC)
        [_, declined] = await fake.wait_for_reply(chat.id, count=2)
        more = next(button for button in english.buttons if button["text"] == "More sources")
        chat.press(english.response["result"], more["callback_data"])
        [*_, passages] = await fake.wait_for_reply(chat.id, count=3)
    assert "\nSources\n1. " in visible(english)
    assert "\n来源\n1. " in visible(chinese)
    assert "Sources" not in visible(declined) and "don't have an answer" in visible(declined)
    assert (
        visible(passages).startswith("4. ") and passages.reply_to == english.response["result"]["message_id"]
    )


async def test_real_generators_draw_and_write(
    fake: FakeTelegram, data_dir: Path, real_knowledge: SharedKnowledge, generation_data_dir: Path
) -> None:
    generation = real_generation(generation_data_dir)
    async with run_bot(fake, data_dir, knowledge=real_knowledge, generation=generation):
        models = {model.kind: model.version for model in await generation.models()}
        chat = private_chat(fake)
        chat.message("/image 3 2")
        [photo] = await fake.wait_for_reply(chat.id, timeout=60)
        chat.message("/text The startup")
        [_, text] = await fake.wait_for_reply(chat.id, count=2, timeout=60)
        chat.message("/about")
        [*_, about] = await fake.wait_for_reply(chat.id, count=3)
    assert photo.method == "sendPhoto" and photo.files["photo"].startswith(b"\x89PNG")
    assert f"2 × digit 3 · GAN model {models['gan']} · seed " in photo.text
    assert visible(text).startswith("The startup") and models["word"] in visible(text)
    assert f"word LSTM model {models['word']} · seed " in visible(text)
    stats = real_knowledge.stats()
    assert f"{stats['sections']} sections" in visible(about) and models["gan"] in visible(about)


async def test_real_image_and_question_are_served_side_by_side(
    fake: FakeTelegram, data_dir: Path, real_knowledge: SharedKnowledge, generation_data_dir: Path
) -> None:
    async with run_bot(
        fake, data_dir, knowledge=real_knowledge, generation=real_generation(generation_data_dir)
    ):
        chat = private_chat(fake)
        other = private_chat(fake, OTHER_USER)
        chat.message("/image")
        other.message(QUESTION_ZH, user=OTHER_USER)
        replies = await asyncio.gather(
            fake.wait_for_reply(chat.id, timeout=60), fake.wait_for_reply(other.id, timeout=60)
        )
    assert replies[0][0].method == "sendPhoto" and "来源" in visible(replies[1][0])


async def test_python_m_bot_run_on_a_fresh_data_dir_answers_draws_writes_and_never_logs_the_token(
    fake: FakeTelegram, real_knowledge: SharedKnowledge, tmp_path: Path
) -> None:
    """`make run` on a fresh clone, in its own process: settings from the environment, polling the fake
    server, no model trained yet and first-start training on (the defaults). The question is answered,
    and the shipped champions draw and write straight away: nothing is trained."""
    from generation.registry import ModelRegistry
    from generation.settings import PACKAGE_SHIPPED_DIR

    shipped = ModelRegistry(tmp_path, PACKAGE_SHIPPED_DIR)
    data_dir = tmp_path / "fresh"
    shutil.copytree(real_knowledge.data_dir, data_dir, ignore=shutil.ignore_patterns("corpus"))
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("SHIPPED_MODELS_DIR", "TRAIN_MISSING_MODELS")
    }
    env.update(
        PYTHONPATH=str(ROOT),
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_BASE_URL=fake.base_url,
        DATA_DIR=str(data_dir),  # the session's index: loaded, not rebuilt
        CORPUS_DIR=str(real_knowledge.corpus_dir),
        LOG_LEVEL="DEBUG",
        HF_HUB_OFFLINE="1",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", env=env, cwd=data_dir, stderr=asyncio.subprocess.PIPE
    )
    try:
        chat = private_chat(fake)
        chat.message(QUESTION_EN)
        [reply] = await fake.wait_for_reply(chat.id, timeout=120)
        chat.message("/image 7")
        [_, photo] = await fake.wait_for_reply(chat.id, count=2, timeout=60)
        chat.message("/text Large models")
        [*_, text] = await fake.wait_for_reply(chat.id, count=3, timeout=60)
    finally:
        process.send_signal(signal.SIGINT)
        _, errors = await asyncio.wait_for(process.communicate(), timeout=60)
    log = errors.decode()
    assert process.returncode == 0, log[-2000:]
    assert "\nSources\n" in visible(reply)
    assert photo.method == "sendPhoto" and "digit 7" in photo.text
    assert shipped.shipped_version("gan") in photo.text
    assert visible(text).startswith("Large models") and shipped.shipped_version("word") in visible(text)
    assert "training the default recipe" not in log
    assert not (data_dir / "models" / "gan" / "versions").exists()
    assert TOKEN not in log and TOKEN.split(":")[1] not in log
    assert "[REDACTED]" in log  # httpx's request lines were logged, with the token replaced
