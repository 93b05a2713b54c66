"""Deep links through the fake Bot API server: every answer's Share button opens the share dialog with
the best source's deep link, `/start <payload>` answers with that entry, and a forged payload gets a
friendly line and nothing else."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlparse

from bot_e2e import private_chat, run_bot, visible
from fake_telegram import FakeTelegram


def share_target(call) -> str:
    """The deep link inside an answer's Share button."""
    [share] = [button for button in call.buttons if "url" in button]
    assert share["text"] in ("↗️ Share", "↗️ 分享")
    parsed = urlparse(share["url"])
    assert (parsed.netloc, parsed.path) == ("t.me", "/share/url")
    return parse_qs(parsed.query)["url"][0]


async def test_answers_share_their_deep_link_which_opens_the_entry(
    fake: FakeTelegram, data_dir: Path
) -> None:
    async with run_bot(fake, data_dir):
        chat = private_chat(fake)
        chat.message("pricing?")
        [answer] = await fake.wait_for_reply(chat.id)
        link = share_target(answer)
        chat.message(f"/start {link.split('start=')[1]}")
        [_, entry] = await fake.wait_for_reply(chat.id, count=2)
        helpful = next(
            b["callback_data"] for b in answer.buttons if b.get("callback_data", "").startswith("fb:")
        )
        chat.press(answer.response["result"], helpful)
        await fake.wait_for(lambda call: call.method == "editMessageReplyMarkup")
        after_vote = fake.calls_of("editMessageReplyMarkup")[-1]
        chat.message("something you do not know")
        [*_, declined] = await fake.wait_for_reply(chat.id, count=3)
    assert link == "https://t.me/ThisBot?start=s-doc0"
    assert "Passage 0 about pricing & value." in visible(entry) and "Article 0" in visible(entry)
    assert share_target(entry) == link  # an entry can be passed on again
    assert [b["text"] for b in after_vote.buttons] == [answer.buttons[0]["text"], "↗️ Share"]  # kept
    assert not any("url" in button for button in declined.buttons)  # nothing to share


async def test_the_help_payload_shows_the_help(fake: FakeTelegram, data_dir: Path) -> None:
    async with run_bot(fake, data_dir):
        chat = private_chat(fake)
        chat.message("/start help")  # where inline mode's "too many questions" button leads
        [reply] = await fake.wait_for_reply(chat.id)
    assert visible(reply).startswith("Commands")


async def test_forged_payloads_get_a_friendly_line(fake: FakeTelegram, data_dir: Path) -> None:
    forged = ["s-unknown", "../../etc/passwd", "x" * 65, "s-doc0'; DROP TABLE answers;--", "%00"]
    async with run_bot(fake, data_dir) as application:
        chat = private_chat(fake)
        for payload in forged:
            chat.message(f"/start {payload}")
        replies = await fake.wait_for_reply(chat.id, count=len(forged))
        answers = application.bot_data.services.store.top_unanswered()
    expected = "That link does not lead to anything I know (any more). Ask me instead!"
    assert [visible(call) for call in replies] == [expected] * len(forged)
    assert answers == []  # nothing recorded as a question
