"""Private chats end to end: questions, formatting, buttons, generators, commands."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from bot_doubles import FakeGenerationClient, FakeKnowledgeBase
from bot_e2e import ADMIN, OTHER_USER, private_chat, run_bot
from fake_telegram import FakeTelegram, parse_telegram_html

from bot import delivery
from bot.store import Store


def visible(call) -> str:
    problem, text = parse_telegram_html(call.text)
    assert problem is None
    return text


async def test_question_gets_cited_answer_with_buttons_and_typing(
    fake: FakeTelegram, data_dir: Path, monkeypatch
) -> None:
    monkeypatch.setattr(delivery, "CHAT_ACTION_INTERVAL_S", 0.2)
    async with run_bot(fake, data_dir, knowledge=FakeKnowledgeBase(delay_s=1.0)):
        chat = private_chat(fake)
        chat.message("How should I think about pricing?")
        [reply] = await fake.wait_for_reply(chat.id)
    text = visible(reply)
    assert text.startswith("Price on value")
    assert "Sources" in text and "Article 0 <&>" in text
    assert reply.reply_to is None  # private chats are not quoted
    labels = [button["text"] for button in reply.buttons]
    assert labels == ["More sources", "↗️ Share", "👍 Helpful", "👎 Not helpful"]
    # Slow work shows "typing", renewed until the reply, and not after it.
    actions = fake.calls_of("sendChatAction", chat.id)
    assert len(actions) >= 3 and {action.params["action"] for action in actions} == {"typing"}
    assert fake.calls.index(actions[0]) < fake.calls.index(reply)
    assert all(fake.calls.index(action) < fake.calls.index(reply) + 2 for action in actions)


async def test_quick_answer_sends_no_chat_action(fake: FakeTelegram, data_dir: Path) -> None:
    async with run_bot(fake, data_dir):
        chat = private_chat(fake)
        chat.message("pricing?")
        await fake.wait_for_reply(chat.id)
    assert fake.calls_of("sendChatAction", chat.id) == []


async def test_html_in_question_is_escaped(fake: FakeTelegram, data_dir: Path) -> None:
    async with run_bot(fake, data_dir):
        chat = private_chat(fake)
        chat.message("pricing for <b>AT&T</b> & <script>")
        [reply] = await fake.wait_for_reply(chat.id)
    assert "You asked: pricing for <b>AT&T</b> & <script>" in visible(reply)


async def test_code_an_answer_quotes_arrives_preformatted(fake: FakeTelegram, data_dir: Path) -> None:
    async with run_bot(fake, data_dir):
        chat = private_chat(fake)
        chat.message("What learning rate does the example use?")
        [reply] = await fake.wait_for_reply(chat.id)
    assert "<pre>if loss &lt; best:\n    optimizer = Adam(lr=1e-5)</pre>" in reply.text
    assert visible(reply).startswith(
        "The example trains with Adam.\n\nFrom the article's code:\nif loss < best:\n    optimizer = Adam(lr=1e-5)\n\n"
    )


async def test_long_answer_is_split_on_paragraphs_with_buttons_on_last(
    fake: FakeTelegram, data_dir: Path
) -> None:
    async with run_bot(fake, data_dir):
        chat = private_chat(fake)
        chat.message("Give me the long version")
        await fake.wait_for(lambda call: call.method == "sendMessage" and "Sources" in call.text)
    parts = fake.calls_of("sendMessage", chat.id, ok=True)
    assert len(parts) >= 3
    texts = [visible(part) for part in parts]
    assert all(len(text) <= 4096 for text in texts)
    assert all(text.startswith("Paragraph") for text in texts[:-1])  # cut between paragraphs
    assert [bool(part.buttons) for part in parts] == [False] * (len(parts) - 1) + [True]
    assert not fake.calls_of("sendMessage", chat.id, ok=False)


async def test_chinese_question_gets_chinese_reply(fake: FakeTelegram, data_dir: Path) -> None:
    async with run_bot(fake, data_dir):
        chat = private_chat(fake, OTHER_USER)
        chat.message("AI 产品应该如何定价？", user=OTHER_USER)
        [reply] = await fake.wait_for_reply(chat.id)
    assert "来源" in visible(reply)
    assert next(button["text"] for button in reply.buttons) == "更多来源"


async def test_declined_question_offers_suggestions(fake: FakeTelegram, data_dir: Path) -> None:
    async with run_bot(fake, data_dir):
        chat = private_chat(fake)
        chat.message("What is the weather on Mars?")
        [reply] = await fake.wait_for_reply(chat.id)
    text = visible(reply)
    assert "don't know" in text and "How should I price an AI product?" in text
    assert "More sources" not in [button["text"] for button in reply.buttons]


async def test_more_sources_and_feedback_buttons(fake: FakeTelegram, data_dir: Path) -> None:
    async with run_bot(fake, data_dir) as application:
        chat = private_chat(fake)
        chat.message("pricing?")
        [answer] = await fake.wait_for_reply(chat.id)
        message = answer.response["result"]
        more, helpful, _ = (button["callback_data"] for button in answer.buttons if "callback_data" in button)
        chat.press(message, more)
        [_, passages] = await fake.wait_for_reply(chat.id, count=2)
        chat.press(message, helpful)
        await fake.wait_for(lambda call: call.method == "editMessageReplyMarkup")
        store = application.bot_data.services.store
        assert store.feedback_counts() == (1, 0)
    text = visible(passages)
    assert text.startswith("4. Article 3") and "5. Article 4" in text
    assert "Passage 3 about pricing & value." in text
    assert passages.reply_to == message["message_id"]
    assert len(fake.calls_of("answerCallbackQuery")) == 2
    [edit] = fake.calls_of("editMessageReplyMarkup")
    assert [button["text"] for row in edit.params["reply_markup"]["inline_keyboard"] for button in row] == [
        "More sources",
        "↗️ Share",
    ]
    # The vote survives a restart of the bot.
    reopened = Store(data_dir / "bot.sqlite3")
    reopened.open()
    assert reopened.feedback_counts() == (1, 0)
    reopened.close()


async def test_image_is_sent_as_photo_with_caption(fake: FakeTelegram, data_dir: Path) -> None:
    generation = FakeGenerationClient(delay_s=0.5)
    async with run_bot(fake, data_dir, generation=generation):
        chat = private_chat(fake)
        chat.message("/image 7 4")
        [photo] = await fake.wait_for_reply(chat.id)
    assert photo.method == "sendPhoto"
    assert photo.files["photo"].startswith(b"\x89PNG")
    assert "4 × digit 7 · GAN model gan-test-1 · seed 42" in photo.text
    assert generation.requests[0].digit == 7 and generation.requests[0].count == 4
    assert generation.requests[0].model == "gan"
    assert fake.calls_of("sendChatAction", chat.id)[0].params["action"] == "upload_photo"


async def test_image_names_its_model_before_or_after_the_digits(fake: FakeTelegram, data_dir: Path) -> None:
    generation = FakeGenerationClient()
    async with run_bot(fake, data_dir, generation=generation):
        chat = private_chat(fake)
        for count, command in enumerate(("/image 7 vae", "/image VAE 7 4", "/image 3 2 gan"), start=1):
            chat.message(command)
            await fake.wait_for_reply(chat.id, count=count)
    captions = [call.text for call in fake.calls_of("sendPhoto", chat.id, ok=True)]
    assert "8 × digit 7 · VAE model vae-test-1 · seed 42" in captions[0]
    assert "4 × digit 7 · VAE model vae-test-1 · seed 42" in captions[1]
    assert "2 × digit 3 · GAN model gan-test-1 · seed 42" in captions[2]
    assert [(r.model, r.digit, r.count) for r in generation.requests] == [
        ("vae", 7, 8),
        ("vae", 7, 4),
        ("gan", 3, 2),
    ]


async def test_image_model_setting_picks_the_default_for_commands_and_plain_requests(
    fake: FakeTelegram, data_dir: Path
) -> None:
    generation = FakeGenerationClient()
    async with run_bot(fake, data_dir, generation=generation, image_model="vae"):
        chat = private_chat(fake)
        chat.message("/image 5 2")
        await fake.wait_for_reply(chat.id)
        chat.message("draw 3 1")
        await fake.wait_for_reply(chat.id, count=2)
        chat.message("/image 5 1 gan")
        await fake.wait_for_reply(chat.id, count=3)
    captions = [call.text for call in fake.calls_of("sendPhoto", chat.id, ok=True)]
    assert ["VAE model vae-test-1" in caption for caption in captions] == [True, True, False]
    assert "GAN model gan-test-1" in captions[2]
    assert [r.model for r in generation.requests] == ["vae", "vae", "gan"]


async def test_an_image_model_that_is_not_loaded_is_reported(fake: FakeTelegram, data_dir: Path) -> None:
    generation = FakeGenerationClient()
    del generation.serving["vae"]
    async with run_bot(fake, data_dir, generation=generation):
        chat = private_chat(fake)
        chat.message("/image 7 vae")
        [reply] = await fake.wait_for_reply(chat.id)
    assert reply.method == "sendMessage" and "not available" in visible(reply)
    assert generation.requests == [] and not fake.calls_of("sendPhoto", chat.id)


async def test_bad_generation_arguments_get_a_usage_line(fake: FakeTelegram, data_dir: Path) -> None:
    generation = FakeGenerationClient()
    async with run_bot(fake, data_dir, generation=generation):
        chat = private_chat(fake)
        commands = (
            "/image 12",
            "/image abc",
            "/image 3 99",
            "/image 7 vea",
            "/image vae",
            "/image gan vae 7",
        )
        for command in (*commands, "/text " + "x" * 600):
            chat.message(command)
        replies = await fake.wait_for_reply(chat.id, count=7)
    texts = [visible(reply) for reply in replies]
    assert sum(text.startswith("Usage: /image") and "[gan|vae]" in text for text in texts) == 6
    assert not fake.calls_of("sendPhoto", chat.id)
    assert sum(text.startswith("Usage: /text") for text in texts) == 1
    assert all("\n" not in text for text in texts)
    assert generation.requests == []


async def test_text_command_escapes_generated_text(fake: FakeTelegram, data_dir: Path) -> None:
    async with run_bot(fake, data_dir):
        chat = private_chat(fake)
        chat.message("/text Our startup")
        [reply] = await fake.wait_for_reply(chat.id)
    text = visible(reply)
    assert text.startswith("Our startup and then <more> & more")
    assert "word LSTM model word-test-1 · seed 7" in text


async def test_text_model_setting_picks_the_text_generator(fake: FakeTelegram, data_dir: Path) -> None:
    generation = FakeGenerationClient()
    async with run_bot(fake, data_dir, generation=generation, text_model="char"):
        chat = private_chat(fake)
        chat.message("/text Our startup")
        [reply] = await fake.wait_for_reply(chat.id)
    assert "char LSTM model lstm-test-1 · seed 7" in visible(reply)
    assert [request.model for request in generation.requests] == ["lstm"]


async def test_generators_unavailable_are_reported_at_once(fake: FakeTelegram, data_dir: Path) -> None:
    async with run_bot(fake, data_dir, generation=FakeGenerationClient(available=False)):
        chat = private_chat(fake)
        chat.message("/image")
        [reply] = await fake.wait_for_reply(chat.id)
    assert "not available" in visible(reply)
    assert not fake.calls_of("sendChatAction", chat.id)


async def test_start_help_about(fake: FakeTelegram, data_dir: Path) -> None:
    async with run_bot(fake, data_dir):
        chat = private_chat(fake)
        for command in ("/start", "/help", "/about", "/frobnicate"):
            chat.message(command)
            await fake.wait_for_reply(chat.id, count=len(fake.calls_of("sendMessage", chat.id, ok=True)) + 1)
    start, help_, about, unknown = (visible(call) for call in fake.calls_of("sendMessage", chat.id, ok=True))
    assert unknown == "I don't know that command. /help lists what I can do."
    assert start.startswith("Hi Ada!")
    assert "/image [digit] [count]" in help_ and "/ask How do I price" in help_
    assert (
        "5 articles" in about and "corpus abc" in about and "gan-test-1" in about and "lstm-test-1" in about
    )
    assert "GAN gan-test-1, VAE vae-test-1" in about


async def test_commands_registered_in_both_languages_and_admin_scope(
    fake: FakeTelegram, data_dir: Path
) -> None:
    async with run_bot(fake, data_dir):
        pass
    default = json.dumps({"type": "default"}, sort_keys=True)
    admin_scope = json.dumps({"chat_id": ADMIN["id"], "type": "chat"}, sort_keys=True)
    english = {command["command"] for command in fake.commands[default, ""]}
    chinese = fake.commands[default, "zh"]
    assert {"ask", "image", "text", "about", "help"} <= english
    assert not english & {"retrain", "stats", "reindex"}
    assert any(command["description"] == "提问" for command in chinese)
    admin = {command["command"] for command in fake.commands[admin_scope, ""]}
    assert {"retrain", "reindex", "models", "rollback", "stats", "ask"} <= admin
    assert (admin_scope, "zh") in fake.commands


async def test_per_user_limits_for_questions_and_generation(fake: FakeTelegram, data_dir: Path) -> None:
    generation = FakeGenerationClient()
    async with run_bot(fake, data_dir, generation=generation, question_rate=1, generation_rate=1):
        chat = private_chat(fake)
        for index, command in enumerate(("pricing?", "pricing again?", "/image 1 1", "/image 2 1")):
            chat.message(command)
            await fake.wait_for_reply(chat.id, count=index + 1)
    replies = [call.text for call in fake.calls_of({"sendMessage", "sendPhoto"}, chat.id, ok=True)]
    assert "Price on value" in replies[0] and "try again in" in replies[1]
    assert "digit 1" in replies[2] and "try again in" in replies[3]
    assert len(generation.requests) == 1


async def test_free_text_is_routed_by_what_it_asks_for(fake: FakeTelegram, data_dir: Path) -> None:
    """Plain messages reach the generators, a chat reply or the decline, as the classifier reads them
    (the fake knowledge base routes by the first word); slash commands are not routed."""
    generation = FakeGenerationClient()
    async with run_bot(fake, data_dir, generation=generation):
        chat = private_chat(fake)
        chat.message("draw 3 2")
        [photo] = await fake.wait_for_reply(chat.id)
        chat.message("draw something nice")
        [_, which] = await fake.wait_for_reply(chat.id, count=2)
        chat.message("write fundraising for founders")
        [*_, written] = await fake.wait_for_reply(chat.id, count=3)
        chat.message("thanks!")
        [*_, hello] = await fake.wait_for_reply(chat.id, count=4)
        chat.message("recipe for pancakes")
        [*_, declined] = await fake.wait_for_reply(chat.id, count=5)
    assert photo.method == "sendPhoto" and "2 × digit 3" in photo.text
    assert [(r.digit, r.count) for r in generation.requests[:1]] == [(3, 2)]
    assert "Which digit" in visible(which) and len(generation.requests) == 2
    assert generation.requests[1].prompt == "fundraising for founders" and written.method == "sendMessage"
    assert "/help" in visible(hello)
    assert "don't have an answer" in visible(declined) and "/image" in visible(declined)
    assert "Sources" not in visible(declined)


async def test_a_term_read_as_small_talk_is_offered_as_a_question(fake: FakeTelegram, data_dir: Path) -> None:
    """A bare term the classifier reads as small talk gets the small-talk line and the /ask command
    that would answer it, escaped; a greeting gets the line alone."""
    async with run_bot(fake, data_dir):
        chat = private_chat(fake)
        chat.message("tanh <vs> relu")
        [offer] = await fake.wait_for_reply(chat.id)
        chat.message("hello")
        [_, hello] = await fake.wait_for_reply(chat.id, count=2)
    assert "/help" in visible(offer)
    assert visible(offer).endswith("If that was a question for my sources, send /ask tanh <vs> relu")
    assert "&lt;vs&gt;" in offer.text  # escaped, so the reply parses
    assert "/help" in visible(hello) and "/ask" not in visible(hello)


async def test_an_unsure_request_answered_as_a_question_offers_the_command(
    fake: FakeTelegram, data_dir: Path
) -> None:
    """A message the classifier only leaned to read as a picture or text request is answered as a
    question, and the command that would draw or write it follows, under a decline or an answer.
    Nothing is generated unasked."""
    generation = FakeGenerationClient()
    async with run_bot(fake, data_dir, generation=generation):
        chat = private_chat(fake)
        chat.message("maybe write a toast for <our> launch")
        [declined, offer] = await fake.wait_for_reply(chat.id, count=2)
        chat.message("maybe draw 7 3")
        [*_, picture_offer] = await fake.wait_for_reply(chat.id, count=4)
        chat.message("maybe draw something")
        [*_, vague_offer] = await fake.wait_for_reply(chat.id, count=6)
        chat.message("maybe write about pricing")
        [*_, answered, answered_offer] = await fake.wait_for_reply(chat.id, count=8)
        await asyncio.sleep(0.3)
    assert "don't know" in visible(declined)
    assert visible(offer) == "Did you want me to write it? Send /text a toast for <our> launch"
    assert visible(picture_offer) == "Did you want a picture? Send /image 7 3"
    assert "/image [digit 0-9]" in visible(vague_offer)
    assert "Price on value" in visible(answered)
    assert visible(answered_offer) == "Did you want me to write it? Send /text about pricing"
    assert len(fake.calls_of({"sendMessage", "sendPhoto"}, chat.id, ok=True)) == 8
    assert generation.requests == []


async def test_the_interface_follows_the_client_language_until_the_user_writes(
    fake: FakeTelegram, data_dir: Path
) -> None:
    async with run_bot(fake, data_dir):
        lin = private_chat(fake, OTHER_USER)  # a Chinese Telegram client
        lin.message("/help", user=OTHER_USER)
        [help_before] = await fake.wait_for_reply(lin.id)
        lin.message("how should I think about pricing?", user=OTHER_USER)  # but writes English
        *_, answer = await fake.wait_for_reply(lin.id, count=2)
        lin.message("/help", user=OTHER_USER)
        *_, help_after = await fake.wait_for_reply(lin.id, count=3)
        lin.message("/image x", user=OTHER_USER)  # the usage line, in the language Lin writes
        *_, usage = await fake.wait_for_reply(lin.id, count=4)
    assert parse_telegram_html(help_before.text)[1].startswith("命令")
    assert "Price on value" in answer.text and answer.buttons[-1]["text"] == "👎 Not helpful"
    assert parse_telegram_html(help_after.text)[1].startswith("Commands")
    assert parse_telegram_html(usage.text)[1].startswith("Usage: /image")
