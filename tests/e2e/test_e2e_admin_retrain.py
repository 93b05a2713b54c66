"""Admin operations on the real services: the real trainer (`python -m generation.train`, dry-run
sized) as the bot's background job, the real in-process GenerationClient hot-swapping and rolling
back, the real KnowledgeBase rebuilt from a corpus folder, all through the fake Bot API server."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from bot_doubles import FakeGenerationClient
from bot_e2e import ADMIN, USER, private_chat, run_bot, visible
from fake_telegram import FakeTelegram

from bot.store import Store
from generation.api import ImageRequest, TextRequest

pytestmark = pytest.mark.slow

RETRAIN_ARGS = "--dry-run --device cpu --threads 1 --progress-every 1"
JOB_ID = re.compile(r"Job (\w+-[0-9a-f]{4}) started")
SEED = 7
LONG_RUN = "epochs=1000 steps=1000000"  # runs until stopped


def train(data_dir: Path, kind: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "DATA_DIR": str(data_dir)}
    command = [
        sys.executable,
        "-m",
        "generation.train",
        kind,
        "--dry-run",
        "--device",
        "cpu",
        "--quiet",
        *args,
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def weak_champions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DATA_DIR whose champions were trained for 1 (gan) and 2 (lstm) steps, so a dry-run candidate
    beats them while a 1-step lstm candidate does not."""
    data_dir = tmp_path_factory.mktemp("champions")
    processes = [train(data_dir, "gan", "--max-steps", "1"), train(data_dir, "lstm", "--max-steps", "2")]
    for process in processes:
        out, errors = process.communicate(timeout=300)
        assert process.returncode == 0, errors[-2000:]
        assert json.loads(out.splitlines()[-1])["promoted"]
    return data_dir


@pytest.fixture
def models_data_dir(weak_champions: Path, data_dir: Path) -> Path:
    """This test's own copy of the champions (jobs change the registry)."""
    shutil.copytree(weak_champions / "models", data_dir / "models")
    return data_dir


def registry_state(data_dir: Path, kind: str) -> dict:
    return json.loads((data_dir / "models" / kind / "state.json").read_text())


def partial_folders(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "models").glob("*/.partial-*"))


@asynccontextmanager
async def real_bot(fake: FakeTelegram, data_dir: Path, **overrides: Any) -> AsyncIterator[Any]:
    from generation.client import GenerationClient
    from generation.settings import GenerationSettings

    settings = GenerationSettings(
        _env_file=None, data_dir=data_dir, generation_url="", generation_device="cpu"
    )
    generation = GenerationClient.from_settings(settings)
    async with run_bot(
        fake,
        data_dir,
        generation=generation,
        retrain_args=RETRAIN_ARGS,
        retrain_progress_interval_s=0.5,
        retrain_cancel_grace_s=5,
        **overrides,
    ) as application:
        yield application, generation


async def image_digest(generation: Any) -> tuple[str, str]:
    result = await generation.image(ImageRequest(digit=3, count=4, seed=SEED))
    return result.model_version, hashlib.sha256(result.png).hexdigest()


async def test_retrain_promotes_hot_swaps_without_dropping_requests_and_rollback_restores(
    fake: FakeTelegram, models_data_dir: Path
) -> None:
    data_dir = models_data_dir
    first_champion = registry_state(data_dir, "gan")["champion"]
    async with real_bot(fake, data_dir) as (_, generation):
        before = await image_digest(generation)
        admin = private_chat(fake, ADMIN)
        admin.message("/retrain gan seed=0", user=ADMIN)  # the seed the test champions were trained with
        started, _ = await fake.wait_for_reply(admin.id, count=2)
        job_id = JOB_ID.search(visible(started)).group(1)
        user = private_chat(fake)
        sent = 0

        async def keep_asking() -> None:  # users keep drawing while the job runs and the model swaps
            nonlocal sent
            while len(fake.calls_of("sendPhoto", admin.id, ok=True)) < 2:  # the loss curve, the sample
                user.message("/image 5 2")
                sent += 1
                await asyncio.sleep(0.4)

        await asyncio.wait_for(keep_asking(), 120)
        *_, report, curve, sample = await fake.wait_for_reply(admin.id, count=5, timeout=30)
        photos = await fake.wait_for_reply(user.id, count=sent, timeout=60)
        after = await image_digest(generation)
        admin.message("/rollback gan", user=ADMIN)
        [*_, rolled_back] = await fake.wait_for_reply(admin.id, count=6, timeout=60)
        restored = await image_digest(generation)
        admin.message("/models", user=ADMIN)
        [*_, models] = await fake.wait_for_reply(admin.id, count=7)
    new_version = after[0]
    progress = [visible(call) for call in fake.calls_of("editMessageText", admin.id, ok=True)]
    step = re.compile(rf"⏳ Job {job_id} \(gan\): (train|evaluate|done) step \d+/\d+")
    assert any(step.match(text) for text in progress), progress  # train steps: see the cancel test
    assert progress[-1].startswith(f"Job {job_id} (gan): finished after")
    lines = visible(report).splitlines()
    assert lines[0].startswith(f"Job {job_id} (gan) finished in")
    assert lines[1].startswith(f"Candidate {after[0]}: accuracy=") and "fd_ratio=" in lines[1]
    assert lines[2].startswith(f"Champion {first_champion}: accuracy=")
    assert lines[3] == f"✅ Promoted (candidate beats the champion); now serving {after[0]}."
    assert sample.method == "sendPhoto" and sample.files["photo"].startswith(b"\x89PNG")
    assert curve.method == "sendPhoto" and visible(curve) == f"Loss curve of job {job_id}"
    assert visible(sample) == f"Sample from {after[0]} (seed 1234)"
    # Every /image sent while the trainer ran and the model swapped got its photo.
    assert sent >= 2 and all(call.method == "sendPhoto" for call in photos)
    assert before[0] == first_champion and after[0] != first_champion and after[1] != before[1]
    assert visible(rolled_back) == f"Rolled back gan: {first_champion} is the champion again and serving."
    assert restored == before  # the earlier version's outputs again: same seed, same image bytes
    assert f"gan: serving {first_champion}" in visible(models)
    assert f"{new_version} rejected (rolled back to {first_champion})" in visible(models)


async def test_a_worse_candidate_is_not_promoted(fake: FakeTelegram, models_data_dir: Path) -> None:
    data_dir = models_data_dir
    champion = registry_state(data_dir, "lstm")["champion"]
    async with real_bot(fake, data_dir) as (_, generation):
        admin = private_chat(fake, ADMIN)
        admin.message("/retrain lstm steps=1 seed=0", user=ADMIN)
        *_, report, sample = await fake.wait_for_reply(admin.id, count=4, timeout=120)
        served = await generation.text(TextRequest(model="lstm", prompt="The", length=20, seed=SEED))
    lines = visible(report).splitlines()
    candidate = re.match(r"Candidate (\S+): bpc=([\d.]+)", lines[1])
    assert candidate is not None and lines[2].startswith(f"Champion {champion}: bpc=")
    assert float(candidate.group(2)) >= float(re.search(r"bpc=([\d.]+)", lines[2]).group(1))
    assert lines[3] == f"❌ Not promoted (candidate does not beat the champion); {champion} keeps serving."
    assert visible(sample).startswith(f"Sample from {candidate.group(1)} (seed 1234)\nThe startup")
    assert registry_state(data_dir, "lstm")["champion"] == champion and served.model_version == champion


async def test_cancel_and_a_killed_trainer_leave_the_champion_serving(
    fake: FakeTelegram, models_data_dir: Path
) -> None:
    data_dir = models_data_dir
    state = registry_state(data_dir, "lstm")
    async with real_bot(fake, data_dir, text_model="char") as (application, _):
        store = application.bot_data.services.store
        admin = private_chat(fake, ADMIN)

        async def start_and_wait_for_training(count: int) -> str:
            admin.message(f"/retrain lstm {LONG_RUN}", user=ADMIN)
            *_, started, _ = await fake.wait_for_reply(admin.id, count=count)
            job_id = JOB_ID.search(visible(started)).group(1)
            await fake.wait_for(
                lambda call: (
                    call.method == "editMessageText" and f"Job {job_id} (lstm): train step" in visible(call)
                ),
                timeout=60,
            )
            return job_id

        cancelled_id = await start_and_wait_for_training(2)
        admin.message(f"/retrain cancel {cancelled_id}", user=ADMIN)
        [*_, cancelled] = await fake.wait_for_reply(admin.id, count=3, timeout=60)
        killed_id = await start_and_wait_for_training(5)
        os.kill(store.job(killed_id).detail["pid"], signal.SIGKILL)
        [*_, failed] = await fake.wait_for_reply(admin.id, count=6, timeout=60)
        user = private_chat(fake)
        user.message("/text The")
        [served] = await fake.wait_for_reply(user.id, timeout=60)
        records = {job_id: store.job(job_id).status for job_id in (cancelled_id, killed_id)}
    assert visible(cancelled) == f"Job {cancelled_id} (lstm) cancelled. The champion is unchanged."
    assert visible(failed) == (
        f"Job {killed_id} (lstm) failed: the trainer was stopped by SIGKILL. The champion is unchanged."
    )
    assert records == {cancelled_id: "cancelled", killed_id: "failed"}
    assert registry_state(data_dir, "lstm") == state and partial_folders(data_dir) == []
    assert state["champion"] in visible(served)


async def test_restart_fails_the_interrupted_job_and_removes_its_partial_files(
    fake: FakeTelegram, models_data_dir: Path
) -> None:
    data_dir = models_data_dir
    state = registry_state(data_dir, "gan")
    partial = data_dir / "models" / "gan" / ".partial-20261126T000000.000Z-dead"
    partial.mkdir()
    (partial / ".owner").write_text("999999999")  # the trainer died with the bot
    (partial / "model.safetensors").write_bytes(b"half written")
    store = Store(data_dir / "bot.sqlite3")
    store.open()
    store.create_job("gan-dead", "retrain-gan", ADMIN["id"], ADMIN["id"], {"kind": "gan", "pid": 999999999})
    store.close()
    async with run_bot(fake, data_dir, generation=FakeGenerationClient()) as application:
        record = application.bot_data.services.store.job("gan-dead")
    assert record.status == "failed" and record.detail["error"] == "interrupted by a restart"
    assert partial_folders(data_dir) == [] and registry_state(data_dir, "gan") == state


PRICING = """# Pricing an AI product

## Value-based pricing

Price an AI product on the value it creates for the customer, not on your inference cost. Start with a
pilot, measure the hours saved, and charge a share of that value.
"""

PLANTS = """# Office plants for AI startups

## Choosing an office plant

The best office plant for an AI startup is the snake plant. It survives weeks without water while the
team ships a launch, tolerates the dim light of server rooms, and costs less than ten dollars.
"""


@pytest.fixture
def small_knowledge(tmp_path: Path) -> Iterator[Any]:
    from knowledge.service import KnowledgeBase
    from knowledge.settings import KnowledgeSettings

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "pricing.md").write_text(PRICING, encoding="utf-8")
    knowledge = KnowledgeBase.from_settings(
        KnowledgeSettings(_env_file=None, data_dir=tmp_path / "kb", corpus_dir=corpus)
    )
    yield knowledge
    knowledge.shutdown()


async def test_reindex_picks_up_an_added_corpus_file(
    fake: FakeTelegram, data_dir: Path, small_knowledge: Any
) -> None:
    question = "What is the best office plant for an AI startup?"
    async with run_bot(fake, data_dir, knowledge=small_knowledge) as application:
        user = private_chat(fake)
        user.message(question)
        [declined] = await fake.wait_for_reply(user.id, timeout=60)
        (small_knowledge.corpus_dir / "plants.md").write_text(PLANTS, encoding="utf-8")
        admin = private_chat(fake, ADMIN)
        admin.message("/reindex", user=ADMIN)
        [rebuilt] = await fake.wait_for_reply(admin.id, timeout=120)
        user.message(question)
        [_, answered] = await fake.wait_for_reply(user.id, count=2, timeout=60)
        audit = application.bot_data.services.store.audit_entries()
    assert "don't have an answer" in visible(declined)
    assert re.fullmatch(
        r"Index rebuilt in \d+\.\d s: 2 articles, \d+ sections, \d+ FAQ entries\.", visible(rebuilt)
    ), visible(rebuilt)
    assert "snake plant" in visible(answered) and "Office plants for AI startups" in visible(answered)
    assert audit[0]["command"] == "reindex" and audit[0]["result"].startswith("ok in ")
    assert audit[0]["user_id"] == ADMIN["id"]
    assert USER["id"] not in {entry["user_id"] for entry in audit}


async def test_retrain_intent_promotes_over_a_weaker_champion_and_the_bot_routes_with_it(
    fake: FakeTelegram, data_dir: Path, tmp_path: Path
) -> None:
    from knowledge.service import KnowledgeBase
    from knowledge.settings import KnowledgeSettings

    champion = data_dir / "intent" / "champion"
    weak = subprocess.run(  # an untrained head as DATA_DIR's champion: any trained candidate beats it
        [
            sys.executable,
            "-m",
            "knowledge",
            "train-intent",
            "--dry-run",
            "--epochs",
            "0",
            "--out",
            str(champion),
        ],
        env={**os.environ, "DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert weak.returncode == 0, weak.stderr[-2000:]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "pricing.md").write_text(PRICING, encoding="utf-8")
    knowledge = KnowledgeBase.from_settings(
        KnowledgeSettings(_env_file=None, data_dir=data_dir, corpus_dir=corpus)
    )
    knowledge.initialize()
    weak_version = knowledge.intent_version
    try:
        async with run_bot(
            fake,
            data_dir,
            knowledge=knowledge,
            intent_retrain_args="--dry-run",
            retrain_progress_interval_s=0.5,
        ):
            admin = private_chat(fake, ADMIN)
            admin.message("/retrain intent", user=ADMIN)
            started, _, report, curve, routing = await fake.wait_for_reply(admin.id, count=5, timeout=300)
            user = private_chat(fake)
            user.message("How should we price an AI product?")
            [reply] = await fake.wait_for_reply(user.id, timeout=60)
    finally:
        knowledge.shutdown()
    job_id = JOB_ID.search(visible(started)).group(1)
    new_version = knowledge.intent_version
    lines = visible(report).splitlines()
    assert lines[0].startswith(f"Job {job_id} (intent) finished in")
    assert lines[1].startswith(f"Candidate {new_version}: accuracy=") and "macro_f1=" in lines[1]
    assert lines[2].startswith(f"Champion {weak_version}: accuracy=")
    promoted = r"✅ Promoted \(gate macro-F1 0\.\d{3} beats the champion's 0\.\d{3}\); now serving "
    assert re.fullmatch(promoted + re.escape(f"{new_version}."), lines[3]), lines[3]
    assert new_version != weak_version and new_version.startswith("intent-")
    assert curve.method == "sendPhoto" and curve.files["photo"].startswith(b"\x89PNG")
    routed = visible(routing).splitlines()
    assert routed[0] == f"How {new_version} now reads a few messages:" and len(routed) == 6
    assert all(
        re.fullmatch(r"• .+ → (question|image|text|smalltalk|offtopic) \(\d\.\d\d\)", line)
        for line in routed[1:]
    )
    assert visible(reply)  # the bot goes on answering with the new classifier
