"""Admin jobs through the fake Bot API server with a stand-in trainer (tests/bot/fake_trainer.py):
progress edited in place and throttled, the report, hot swap, refusal of a second job, cancel,
rollback, reindex failures, and admins-only in groups. The real trainer runs in test_e2e_admin_retrain."""

from __future__ import annotations

import itertools
import json
import re
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from bot_doubles import FakeGenerationClient, FakeKnowledgeBase
from bot_e2e import ADMIN, USER, group_chat, private_chat, run_bot, visible
from fake_telegram import Call, FakeTelegram

FAKE_TRAINER = [sys.executable, str(Path(__file__).resolve().parents[1] / "bot" / "fake_trainer.py")]
INTERVAL_S = 0.3
JOB_ID = re.compile(r"Job (\w+-[0-9a-f]{4}) started")


@asynccontextmanager
async def admin_bot(fake: FakeTelegram, data_dir: Path, **kwargs: Any) -> AsyncIterator[Any]:
    async with run_bot(
        fake, data_dir, retrain_progress_interval_s=INTERVAL_S, retrain_cancel_grace_s=2, **kwargs
    ) as application:
        application.bot_data.jobs.use_trainer(FAKE_TRAINER)
        yield application


def audit_of(application: Any) -> list[tuple]:
    entries = application.bot_data.services.store.audit_entries()
    return [(entry["command"], entry["args"], entry["result"]) for entry in reversed(entries)]


async def test_retrain_shows_throttled_progress_then_the_report_and_hot_swaps(
    fake: FakeTelegram, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRAINER_STEPS", "30")
    monkeypatch.setenv("FAKE_TRAINER_STEP_S", "0.05")
    edits: list[tuple[float, Call]] = []
    fake.listeners.append(
        lambda call: call.method == "editMessageText" and edits.append((time.monotonic(), call))
    )
    generation = FakeGenerationClient()
    generation.promoted_on_reload = {"lstm": "lstm-v2"}  # what the trainer's report says it promoted
    async with admin_bot(fake, data_dir, generation=generation) as application:
        admin = private_chat(fake, ADMIN)
        admin.message("/retrain lstm epochs=2", user=ADMIN)
        started, _ = await fake.wait_for_reply(admin.id, count=2)
        user = private_chat(fake)
        user.message("/text meanwhile")  # the bot keeps serving while the trainer runs
        [served] = await fake.wait_for_reply(user.id)
        *_, report, curve, sample = await fake.wait_for_reply(admin.id, count=5, timeout=30)
        audit = audit_of(application)
    job_id = JOB_ID.search(visible(started)).group(1)
    texts = [visible(call) for _, call in edits]
    assert any(f"Job {job_id} (lstm): train step" in text and "loss" in text for text in texts)
    assert texts[-1].startswith(f"Job {job_id} (lstm): finished after")
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(edits)]
    assert len(gaps) >= 2, texts
    # Telegram's edit limits respected (progress lines come every 0.05 s; slack for loaded machines)
    assert all(gap >= INTERVAL_S * 0.6 for gap in gaps), gaps
    assert visible(served).startswith("meanwhile")
    assert visible(report).splitlines() == [
        f"Job {job_id} (lstm) finished in 0.1 s",
        "Candidate lstm-v2: bpc=2.5",
        "Champion lstm-v1: bpc=3",
        "✅ Promoted (candidate beats the champion); now serving lstm-v2.",
    ]
    assert visible(sample).startswith("Sample from lstm-v2 (seed 1234)\nThe startup")
    assert curve.method == "sendPhoto" and visible(curve) == f"Loss curve of job {job_id}"
    assert generation.reloads == 1 and generation.serving["lstm"] == "lstm-v2"
    argv = json.loads((data_dir / "argv-lstm.json").read_text())
    assert argv[:4] == ["--progress-json", "--epochs", "2", "--seed"] and len(argv) == 5
    assert f"retraining lstm (epochs=2 seed={argv[4]})" in visible(started)  # a fresh seed, shown
    assert audit == [
        ("retrain", "lstm epochs=2", f"started {job_id}"),
        ("retrain", job_id, "succeeded: lstm-v2 promoted (candidate beats the champion)"),
    ]


async def test_retrain_intent_hot_swaps_the_classifier_and_shows_how_it_reads_messages(
    fake: FakeTelegram, data_dir: Path
) -> None:
    knowledge = FakeKnowledgeBase()
    knowledge.intent_on_disk = "intent-v2"  # what the trainer's report says it promoted
    generation = FakeGenerationClient()
    async with admin_bot(fake, data_dir, knowledge=knowledge, generation=generation) as application:
        admin = private_chat(fake, ADMIN)
        admin.message("/retrain intent", user=ADMIN)
        started, _, report, curve, routing = await fake.wait_for_reply(admin.id, count=5, timeout=30)
        audit = audit_of(application)
    job_id = JOB_ID.search(visible(started)).group(1)
    assert visible(report).splitlines() == [
        f"Job {job_id} (intent) finished in 0.1 s",
        "Candidate intent-v2: bpc=2.5",
        "Champion intent-v1: bpc=3",
        "✅ Promoted (candidate beats the champion); now serving intent-v2.",
    ]
    assert curve.method == "sendPhoto" and visible(curve) == f"Loss curve of job {job_id}"
    lines = visible(routing).splitlines()
    assert lines[0] == "How intent-v2 now reads a few messages:"
    assert len(lines) == 6 and "• write a tagline for an AI legal assistant → text (0.90)" in lines
    assert knowledge.intent_version == "intent-v2" and generation.reloads == 0
    assert audit[-1] == ("retrain", job_id, "succeeded: intent-v2 promoted (candidate beats the champion)")


async def test_a_worse_candidate_is_reported_and_not_swapped_in(
    fake: FakeTelegram, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRAINER_PROMOTE", "0")
    generation = FakeGenerationClient()
    async with admin_bot(fake, data_dir, generation=generation):
        admin = private_chat(fake, ADMIN)
        admin.message("/retrain gan", user=ADMIN)
        *_, report = await fake.wait_for_reply(admin.id, count=3, timeout=30)
    assert visible(report).endswith(
        "❌ Not promoted (candidate does not beat the champion); gan-v1 keeps serving."
    )
    assert generation.reloads == 0 and generation.serving["gan"] == "gan-test-1"


async def test_a_second_retrain_is_refused_and_cancel_stops_jobs(
    fake: FakeTelegram, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRAINER_MODE", "slow")
    async with admin_bot(fake, data_dir) as application:
        admin = private_chat(fake, ADMIN)
        admin.message("/retrain gan", user=ADMIN)
        started, _ = await fake.wait_for_reply(admin.id, count=2)
        gan_job = JOB_ID.search(visible(started)).group(1)
        admin.message("/retrain gan steps=5", user=ADMIN)
        [*_, refused] = await fake.wait_for_reply(admin.id, count=3)
        admin.message("/retrain all", user=ADMIN)
        replies = await fake.wait_for_reply(admin.id, count=12)
        [*_, refused_again, lstm_started, _, vae_started, _, word_started, _, intent_started, _] = replies
        lstm_job = JOB_ID.search(visible(lstm_started)).group(1)
        vae_job = JOB_ID.search(visible(vae_started)).group(1)
        word_job = JOB_ID.search(visible(word_started)).group(1)
        intent_job = JOB_ID.search(visible(intent_started)).group(1)
        admin.message(f"/retrain cancel {gan_job}", user=ADMIN)
        [*_, cancelled] = await fake.wait_for_reply(admin.id, count=13, timeout=20)
        admin.message("/retrain cancel gan-ffff", user=ADMIN)
        [*_, unknown] = await fake.wait_for_reply(admin.id, count=14)
        for count, job in enumerate((lstm_job, vae_job, word_job, intent_job), start=15):
            admin.message(f"/retrain cancel {job}", user=ADMIN)
            await fake.wait_for_reply(admin.id, count=count, timeout=20)
        # Each job's outcome is recorded before its progress message is edited to say so.
        await fake.wait_for(
            lambda call: call.method == "editMessageText" and "cancelled after" in call.text, count=5
        )
        records = {record.id: record.status for record in application.bot_data.services.store.jobs()}
    expected_refusal = f"gan is already being retrained by job {gan_job} (/retrain cancel {gan_job})."
    assert visible(refused) == visible(refused_again) == expected_refusal
    assert visible(cancelled) == f"Job {gan_job} (gan) cancelled. The champion is unchanged."
    running = f"{lstm_job} (lstm), {vae_job} (vae), {word_job} (word), {intent_job} (intent)"
    assert visible(unknown) == f"No running job gan-ffff. Running: {running}"
    assert records == dict.fromkeys((gan_job, lstm_job, vae_job, word_job, intent_job), "cancelled")
    # The refused one never ran (the first may be cancelled before its trainer wrote its arguments).
    argv_file = data_dir / "argv-gan.json"
    assert not argv_file.exists() or "--max-steps" not in argv_file.read_text()


async def test_admin_commands_in_groups_answer_admins_only(fake: FakeTelegram, data_dir: Path) -> None:
    generation = FakeGenerationClient()
    async with admin_bot(fake, data_dir, generation=generation) as application:
        group = group_chat(fake)
        for index, command in enumerate(("/retrain gan", "/rollback@ThisBot gan", "/retrain cancel gan-1")):
            group.message(command, user=USER)
            await fake.wait_for_reply(group.id, count=index + 1)
        group.message("/rollback gan", user=ADMIN)
        group.message("/rollback gan no-such-version", user=ADMIN)
        *refusals, rolled_back, refused = await fake.wait_for_reply(group.id, count=5)
        jobs = application.bot_data.services.store.jobs()
    assert [visible(call) for call in refusals] == ["Sorry, admins only."] * 3
    assert jobs == [] and not (data_dir / "argv-gan.json").exists()
    assert visible(rolled_back) == "Rolled back gan: gan-v1 is the champion again and serving."
    assert visible(refused) == "Rollback refused: no gan version 'no-such-version'. Nothing changed."
    assert generation.serving["gan"] == "gan-v1"
    assert rolled_back.reply_to is not None  # in groups the reply quotes the admin's command


class BrokenRebuild(FakeKnowledgeBase):
    def rebuild(self) -> dict:
        raise OSError("corpus folder /srv/corpus is not readable")


async def test_a_failing_reindex_says_why_and_the_old_index_keeps_serving(
    fake: FakeTelegram, data_dir: Path
) -> None:
    async with admin_bot(fake, data_dir, knowledge=BrokenRebuild()) as application:
        admin = private_chat(fake, ADMIN)
        admin.message("/reindex", user=ADMIN)
        admin.message("pricing?", user=ADMIN)
        failed, answer = await fake.wait_for_reply(admin.id, count=2)
        audit = audit_of(application)
    assert visible(failed) == (
        "Rebuilding the index failed: OSError: corpus folder /srv/corpus is not readable. "
        "The previous index keeps serving."
    )
    assert visible(answer).startswith("Price on value")
    assert audit == [("reindex", "", "failed: OSError: corpus folder /srv/corpus is not readable")]
