"""/privacy and /forget through the fake Bot API server, in English and Chinese: what is stored, the
confirm button only its sender may press, cancel, the deletion with counts, a second /forget, and the
daily retention job."""

from __future__ import annotations

from pathlib import Path

from bot_e2e import OTHER_USER, group_chat, private_chat, run_bot, visible
from fake_telegram import FakeTelegram


async def test_privacy_says_what_is_stored_in_the_users_language(fake: FakeTelegram, data_dir: Path) -> None:
    async with run_bot(fake, data_dir, retention_days=30) as application:
        english, chinese = private_chat(fake), private_chat(fake, OTHER_USER)
        english.message("/privacy")
        chinese.message("/privacy", user=OTHER_USER)
        [said] = await fake.wait_for_reply(english.id)
        [shuo] = await fake.wait_for_reply(chinese.id)
        jobs = application.job_queue.get_jobs_by_name("retention")
    assert visible(said).startswith("What I store, and why") and "older than 30 days" in visible(said)
    assert visible(shuo).startswith("我保存什么、为什么") and "超过 30 天" in visible(shuo)
    assert len(jobs) == 1  # the daily prune is scheduled


async def test_forget_asks_first_only_its_sender_confirms_and_a_second_forget_finds_nothing(
    fake: FakeTelegram, data_dir: Path
) -> None:
    async with run_bot(fake, data_dir) as application:
        store = application.bot_data.services.store
        group = group_chat(fake)
        group.message("/ask pricing?")  # Ada asks in a group, then in private
        me = private_chat(fake)
        me.message("pricing? my secret plan")
        await fake.wait_for_reply(group.id)
        await fake.wait_for_reply(me.id)
        group.message("/forget")
        [*_, confirm] = await fake.wait_for_reply(group.id, count=2)
        delete, cancel = (button["callback_data"] for button in confirm.buttons)
        group.press(confirm.response["result"], delete, user=OTHER_USER)  # not Lin's to press
        await fake.wait_for(lambda call: call.method == "answerCallbackQuery")
        stranger_press = fake.calls_of("answerCallbackQuery")[-1]
        questions_kept = [store.answer(n).question for n in (1, 2)]
        group.press(confirm.response["result"], cancel)
        await fake.wait_for(lambda call: call.method == "editMessageText")
        cancelled = fake.calls_of("editMessageText")[-1]
        group.message("/forget")
        [*_, confirm] = await fake.wait_for_reply(group.id, count=3)
        group.press(confirm.response["result"], confirm.buttons[0]["callback_data"])
        await fake.wait_for(lambda call: call.method == "editMessageText", count=2)
        done = fake.calls_of("editMessageText")[-1]
        usage = sum(store.usage_counts().values())
        questions_after = [store.answer(n).question for n in (1, 2)]
        me.message("/forget")
        [*_, confirm] = await fake.wait_for_reply(me.id, count=2)
        me.press(confirm.response["result"], confirm.buttons[0]["callback_data"])
        await fake.wait_for(lambda call: call.method == "editMessageText", count=3)
        nothing = fake.calls_of("editMessageText")[-1]
    assert visible(confirm).startswith("Delete everything I stored about you")
    assert stranger_press.params.get("show_alert") in (True, "true")
    assert stranger_press.params["text"] == "只有发送 /forget 的人可以点击。"  # in Lin's language
    assert questions_kept == ["pricing?", "pricing? my secret plan"]
    assert visible(cancelled) == "Cancelled: nothing was deleted."
    assert visible(done).startswith(
        "Done. Deleted 2 question(s), made 0 vote(s) and 2 usage row(s) anonymous"
    )
    assert questions_after == ["", ""] and usage == 2  # the counts stay, anonymous
    assert visible(nothing) == "I have nothing stored about you."
