"""Admin commands: gated to ADMIN_IDS, audited."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot_doubles import FakeKnowledgeBase
from bot_e2e import ADMIN, USER, group_chat, private_chat, run_bot, visible
from fake_telegram import FakeTelegram

from bot.store import Store


def reopened_audit(data_dir: Path) -> list[dict]:
    """The audit log as a fresh process would read it (the bot has stopped)."""
    store = Store(data_dir / "bot.sqlite3")
    store.open()
    try:
        return store.audit_entries()
    finally:
        store.close()


async def test_non_admin_is_refused_and_nothing_happens(fake: FakeTelegram, data_dir: Path) -> None:
    knowledge = FakeKnowledgeBase()
    async with run_bot(fake, data_dir, knowledge=knowledge):
        chat = private_chat(fake)
        chat.message("/reindex")
        [reply] = await fake.wait_for_reply(chat.id)
        group = group_chat(fake)
        group.message("/stats@ThisBot", user=USER)
        [group_reply] = await fake.wait_for_reply(group.id)
    audit = reopened_audit(data_dir)
    assert visible(reply) == visible(group_reply) == "Sorry, admins only."
    assert knowledge.rebuilt == 0
    assert [(entry["command"], entry["user_id"], entry["result"]) for entry in audit] == [
        ("stats", USER["id"], "refused: not an admin"),
        ("reindex", USER["id"], "refused: not an admin"),
    ]


async def test_admin_stats_reindex_and_models(fake: FakeTelegram, data_dir: Path) -> None:
    knowledge = FakeKnowledgeBase()
    async with run_bot(fake, data_dir, knowledge=knowledge):
        user_chat = private_chat(fake)
        user_chat.message("pricing?")
        user_chat.message("Is the moon made of cheese?")
        await fake.wait_for_reply(user_chat.id, count=2)
        admin_chat = private_chat(fake, ADMIN)
        for count, command in zip((2, 3, 4, 5), ("/stats", "/reindex", "/models", "/retrain"), strict=True):
            admin_chat.message(command, user=ADMIN)  # /stats: its figures, then their chart
            await fake.wait_for_reply(admin_chat.id, count=count)
    audit = reopened_audit(data_dir)
    stats, reindex, models, retrain = (
        visible(call) for call in fake.calls_of("sendMessage", ADMIN["id"], ok=True)
    )
    [chart] = fake.calls_of("sendPhoto", ADMIN["id"], ok=True)
    assert chart.files["photo"].startswith(b"\x89PNG") and visible(chart).startswith("Requests per day")
    today = datetime.now(UTC).strftime("%m-%d")
    assert "Questions answered: 1" in stats and "Questions declined: 1" in stats
    assert f"\n{today}: 1/1 · 0/0 · 0/0" in stats  # per day: answered/declined · images/texts · votes
    assert "1× is the moon made of cheese?" in stats
    assert reindex.startswith("Index rebuilt in") and "40 sections, 12 FAQ entries" in reindex
    assert knowledge.rebuilt == 1
    assert "gan: serving gan-test-1 · fid=12.5" in models
    assert "intent (message routing): serving intent-v1" in models
    assert "• gan-v1 previous · 2026-11-25T10:00:00Z · score=1" in models
    assert retrain.startswith("Usage: /retrain gan|vae|lstm|word|intent|all") and retrain.endswith(
        "Running: none"
    )
    assert [(entry["command"], entry["args"]) for entry in audit] == [
        ("retrain", ""),
        ("models", ""),
        ("reindex", ""),
        ("stats", ""),
    ]
    assert all(entry["user_id"] == ADMIN["id"] for entry in audit)


async def test_job_left_running_by_a_dead_bot_is_failed_on_start(fake: FakeTelegram, data_dir: Path) -> None:
    store = Store(data_dir / "bot.sqlite3")
    store.open()
    store.create_job("retrain-1", "retrain-gan", ADMIN["id"], ADMIN["id"])
    store.close()  # the bot "dies" with the job running
    async with run_bot(fake, data_dir) as application:
        [job] = application.bot_data.services.store.jobs()
    assert job.id == "retrain-1" and job.status == "failed"
