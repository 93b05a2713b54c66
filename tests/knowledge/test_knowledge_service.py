"""KnowledgeBase with the real default encoder: answers, languages, cross-lingual, declines, CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from knowledge import service
from knowledge.__main__ import main as cli_main
from knowledge.answer import CODE_LEAD, DECLINE_TEXT
from knowledge.api import Answer
from knowledge.decide import Verdict
from knowledge.intent import IntentClassifier, Prediction
from knowledge.overview import OVERVIEW_LEAD
from knowledge.text import simplified, traditional

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_english_question_gets_an_english_answer_with_sources(real_kb):
    answer = real_kb.ask("How long does it take to train a large AI model?")
    assert answer.answered and answer.lang == "en"
    assert "months" in answer.text
    assert answer.sources[0].lang == "en"
    assert "9.3" in answer.sources[0].section
    assert real_kb.retriever().policy.answer_at <= answer.confidence <= 1.0
    assert len(answer.text) < 600  # trimmed, not the whole section


def test_chinese_question_gets_the_chinese_version_of_a_paired_section(real_kb):
    answer = real_kb.ask("ReLU激活函数是什么")
    assert answer.answered and answer.lang == "zh"
    assert answer.sources[0].lang == "zh"
    assert "ReLU" in answer.sources[0].section + answer.sources[0].text


def test_english_question_finds_an_answer_only_in_a_chinese_article(real_kb):
    answer = real_kb.ask("How should I choose the right large model algorithm for my business?")
    assert answer.answered
    top = [s for s in answer.sources[:3] if s.doc.startswith("004")]
    assert top, [s.section for s in answer.sources]


def test_typo_and_one_word_questions(real_kb):
    typo = real_kb.ask("how long does trainning a larg modle take")
    assert typo.answered and "9.3" in typo.sources[0].section
    one_word = real_kb.ask("VAE")
    assert one_word.answered
    assert any("VAE" in s.text or "变分自编码器" in s.text for s in one_word.sources[:2])


@pytest.mark.parametrize(
    ("question", "corrected"),
    [
        ("how long does trainning a larg modle take", "how long does training a large model take"),
        ("what is the weather in Paris?", "what is the weather in Paris?"),
        (
            "Should angel investors care about our valuation?",
            "Should angel investors care about our valuation?",
        ),
        ("give me a short intro to patent strategy", "give me a short intro to patent strategy"),
        ("what vesting schedule should cofounders use", "what vesting schedule should cofounders use"),
        ("大模型在智能刻服方面能做什么", "大模型在智能客服方面能做什么"),
        ("有哪些学习大模型的书推荐", "有哪些学习大模型的书推荐"),
    ],
)
def test_spelling_repair_leaves_real_words_alone(real_kb, question, corrected):
    assert real_kb.retriever().analyse(question).corrected == corrected


def test_a_chinese_question_with_a_pinyin_typo_is_answered_as_the_one_without(real_kb):
    typo, clean = real_kb.ask("交叉商损失函数是干嘛用的？"), real_kb.ask("交叉熵损失函数是干嘛用的？")
    assert typo.answered and typo.question == "交叉商损失函数是干嘛用的？"
    assert (typo.text, typo.sources) == (clean.text, clean.sources)


def test_script_conversion_between_traditional_and_simplified_chinese():
    assert simplified("大模型創業有哪些挑戰？") == "大模型创业有哪些挑战？"
    assert traditional("大模型创业有哪些挑战？") == "大模型創業有哪些挑戰？"
    assert simplified("How do I deploy a GAN?") == "How do I deploy a GAN?"


async def test_a_question_in_traditional_chinese_is_answered_as_in_simplified_in_its_own_script(real_kb):
    asked = "大模型創業有哪些挑戰？"
    plain = real_kb.ask(simplified(asked))
    for answer in (
        real_kb.ask(asked),
        await real_kb.ask_async(asked),
        (await real_kb.understand_async(asked)).answer,
    ):
        assert answer.question == asked and answer.answered == plain.answered
        assert answer.text == traditional(plain.text) != plain.text
        assert [s.section for s in answer.sources] == [traditional(s.section) for s in plain.sources]
    declined = real_kb.ask("今天天氣怎麼樣")
    assert not declined.answered and declined.text == traditional(DECLINE_TEXT["zh"])


@pytest.mark.parametrize(
    "question",
    [
        "What's the weather like in Paris tomorrow?",
        "what is the weather in Paris?",
        "红烧肉怎么做",
        "How do I cook a perfect steak?",
    ],
)
def test_off_topic_questions_are_declined_politely_with_suggestions(real_kb, question):
    answer = real_kb.ask(question)
    assert not answer.answered
    assert answer.suggestions and len(answer.suggestions) <= 3
    assert ("Sorry" in answer.text) if answer.lang == "en" else ("抱歉" in answer.text)
    # The topics travel as suggestions (the bot lists them); the text does not repeat them.
    assert answer.text == DECLINE_TEXT[answer.lang] and answer.suggestions[0] not in answer.text


@pytest.mark.parametrize("asker", ["ask", "ask_async"])
@pytest.mark.parametrize(("confidence", "declined"), [(0.3, True), (0.9, False)])
async def test_ask_declines_what_the_intent_classifier_reads_as_off_topic_unless_surely_answered(
    real_kb, monkeypatch, asker, confidence, declined
):
    question = "What are large AI models?"

    async def asked() -> Answer:
        answer = getattr(real_kb, asker)(question)
        return await answer if asker == "ask_async" else answer

    assert (await asked()).answered
    monkeypatch.setattr(service, "decide", lambda retrieval, policy: (Verdict.ANSWER, confidence))
    assert (await asked()).answered
    monkeypatch.setattr(IntentClassifier, "_prediction", lambda self, row: Prediction("offtopic", 0.9, {}))
    read_off_topic = await asked()
    if declined:
        assert not read_off_topic.answered and read_off_topic.text == DECLINE_TEXT["en"]
        assert read_off_topic.suggestions and read_off_topic.sources  # the closest topics are still offered
    else:
        assert read_off_topic.answered and read_off_topic.confidence == confidence


def test_to_json_matches_the_cli_schema(real_kb):
    data = real_kb.ask("What are large AI models?", k=3).to_json()
    assert set(data) == {"question", "lang", "answered", "answer", "confidence", "sources", "suggestions"}
    assert len(data["sources"]) == 3
    assert set(data["sources"][0]) == {"doc", "title", "section", "lang", "text", "score"}
    scores = [s["score"] for s in data["sources"]]
    assert scores == sorted(scores, reverse=True)
    json.dumps(data)


def test_concurrent_asks_from_threads(real_kb):
    questions = [
        "What are large AI models?",
        "如何选择合适的大模型算法？",
        "VAE",
        "What is gradient descent?",
    ] * 3
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(real_kb.ask, questions))
    assert all(isinstance(a, Answer) for a in answers)
    assert [a.sources[0].section for a in answers[:4]] == [a.sources[0].section for a in answers[4:8]]


def test_bad_input_is_refused_clearly(real_kb):
    with pytest.raises(ValueError, match="empty"):
        real_kb.ask("   ")


def test_stats(real_kb):
    stats = real_kb.stats()
    assert stats["documents"] == 2
    assert stats["faq_entries"] >= 12
    assert stats["encoder"] == "packaged:all-MiniLM-L6-v2"
    assert len(stats["fingerprint"]) == 24


def _env(real_kb) -> dict[str, str]:
    return {
        **os.environ,
        "DATA_DIR": str(real_kb.data_dir),
        "CORPUS_DIR": str(real_kb.corpus_dir),
        "HF_HUB_OFFLINE": "1",
    }


def _ask_cli(real_kb, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """`python -m knowledge ask ARGS` on the session's knowledge base."""
    return subprocess.run(
        [sys.executable, "-m", "knowledge", "ask", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=_env(real_kb),
        cwd=ROOT,
        timeout=180,
        check=True,
    )


def test_cli_ask_json_reads_questions_from_stdin(real_kb):
    result = _ask_cli(
        real_kb, "--json", "-", "-k", "2", stdin="What are large AI models?\n\n今天天气怎么样\n"
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["question"] for line in lines] == ["What are large AI models?", "今天天气怎么样"]
    assert lines[0]["answered"] and len(lines[0]["sources"]) == 2
    assert not lines[1]["answered"] and lines[1]["lang"] == "zh"
    assert "building the index" not in result.stderr  # the cached index was used


def test_cli_ask_lists_the_topics_it_can_help_with_when_it_declines(real_kb):
    result = _ask_cli(real_kb, "How do I cook a perfect steak?")
    lines = result.stdout.splitlines()
    assert lines[:2] == [DECLINE_TEXT["en"], "It can help with topics like:"]
    assert 1 <= sum(line.startswith("  - ") for line in lines) <= 3


def test_cli_eval_prints_figures_per_kind(real_kb, tmp_path, monkeypatch, capsys):
    questions = tmp_path / "set.jsonl"
    rows = [
        {"id": "1", "question": "What are large AI models?", "expect_any": ["parameters"], "kind": "en"},
        {"id": "2", "question": "如何选择合适的大模型算法？", "expect_any": ["业务需求"], "kind": "zh"},
        {"id": "3", "question": "Who won the 2018 world cup?", "expect_any": [], "kind": "offtopic"},
    ]
    questions.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    for name, value in _env(real_kb).items():
        if name in ("DATA_DIR", "CORPUS_DIR"):
            monkeypatch.setenv(name, value)
    assert cli_main(["eval", str(questions)]) == 0
    out = capsys.readouterr().out
    assert "kind:en" in out and "kind:zh" in out and "hit@5" in out
    assert "off-topic declined: 1.000" in out
    assert cli_main(["eval", str(tmp_path / "missing.jsonl")]) == 2


@pytest.mark.parametrize(
    ("message", "intent", "digit", "count", "prompt"),
    [
        ("draw me three 7s", "image", 7, 3, ""),
        ("画一个数字3", "image", 3, 1, ""),
        ("write a paragraph about fundraising", "text", None, 0, "fundraising"),
        ("写一段关于融资的话", "text", None, 0, "融资"),
        ("thanks!", "smalltalk", None, 0, ""),
        ("what's the weather in Paris tomorrow?", "offtopic", None, 0, ""),
        # Spelling repair would make this "what is the whether in parts?": the classifier reads it as written.
        ("What is the weather in Paris?", "offtopic", None, 0, ""),
    ],
)
async def test_the_shipped_classifier_routes_plain_requests(
    real_kb, message, intent, digit, count, prompt
) -> None:
    understood = await real_kb.understand_async(message)
    assert (understood.intent, understood.digit, understood.count, understood.prompt) == (
        intent,
        digit,
        count,
        prompt,
    )
    assert understood.answer is None


async def test_a_routed_question_is_answered_from_the_shared_pass_as_ask_answers_it(real_kb) -> None:
    repaired = "How much GPU do I need to train a large modle?"  # retrieval reads "model": a second pass
    assert real_kb.retriever().analyse(repaired).corrected != repaired
    for question in ("How much GPU do I need to train a large model?", "大模型创业有哪些挑战？", repaired):
        understood = await real_kb.understand_async(question)
        assert understood.intent == "question"
        assert understood.answer == real_kb.ask(question)


@pytest.mark.parametrize(("confidence", "intent"), [(0.3, "offtopic"), (0.9, "question")])
async def test_a_message_read_as_off_topic_is_answered_when_the_answer_model_is_sure(
    real_kb, monkeypatch, confidence, intent
) -> None:
    monkeypatch.setattr(IntentClassifier, "_prediction", lambda self, row: Prediction("offtopic", 0.95, {}))
    monkeypatch.setattr(service, "decide", lambda retrieval, policy: (Verdict.ANSWER, confidence))
    understood = await real_kb.understand_async("Which Python version should I install for the project?")
    assert understood.intent == intent
    if intent == "question":
        assert understood.answer is not None and understood.answer.answered
    else:
        assert understood.answer is None


@pytest.mark.parametrize(
    ("top", "message", "leaning", "digit", "count", "prompt"),
    [
        ("text", "能不能写几句关于融资的话", "text", None, 0, "融资"),
        ("image", "could you maybe draw three 7s", "image", 7, 3, ""),
        ("question", "大模型创业有哪些挑战？", None, None, 0, ""),
    ],
)
async def test_a_message_answered_only_for_want_of_confidence_says_what_it_leaned_to(
    real_kb, monkeypatch, top, message, leaning, digit, count, prompt
) -> None:
    """A message the routing holds back is answered as a question; when the classifier's best guess was
    a picture or a text, the Understanding says so, with the digit and count or the topic read."""
    probabilities = {"question": 0.2, "image": 0.1, "text": 0.1, "smalltalk": 0.05, "offtopic": 0.05}
    probabilities[top] = 0.5
    monkeypatch.setattr(
        IntentClassifier, "_prediction", lambda self, row: Prediction("question", 0.5, probabilities)
    )
    understood = await real_kb.understand_async(message)
    assert understood.intent == "question" and understood.answer is not None
    assert (understood.leaning, understood.digit, understood.count, understood.prompt) == (
        leaning,
        digit,
        count,
        prompt,
    )


@pytest.mark.parametrize(
    ("message", "leaning"), [("tanh", "question"), ("thanks a lot, have a nice day!", None)]
)
async def test_small_talk_the_articles_would_answer_leans_to_a_question(
    real_kb, monkeypatch, message, leaning
):
    """A bare term read as small talk is not answered outright (the answer model is as sure of "test"),
    but leans to a question when the answer model is sure the articles answer it; a thank-you does not."""
    probabilities = {"question": 0.01, "image": 0.0, "text": 0.0, "smalltalk": 0.98, "offtopic": 0.01}
    monkeypatch.setattr(
        IntentClassifier, "_prediction", lambda self, row: Prediction("smalltalk", 0.98, probabilities)
    )
    understood = await real_kb.understand_async(message)
    assert (understood.intent, understood.answer, understood.leaning) == ("smalltalk", None, leaning)


def test_reload_intent_serves_a_new_champion_and_keeps_it_over_a_broken_one(
    real_kb, tmp_path, monkeypatch
) -> None:
    from knowledge.intent import META_FILE, WEIGHTS_FILE, IntentModelError
    from knowledge.intent_store import SHIPPED_INTENT, champion_dir

    shipped_version = real_kb.intent_version
    champion = champion_dir(tmp_path)
    shutil.copytree(SHIPPED_INTENT, champion)
    meta = json.loads((champion / META_FILE).read_text(encoding="utf-8"))
    (champion / META_FILE).write_text(json.dumps({**meta, "version": "intent-new"}), encoding="utf-8")
    monkeypatch.setattr(real_kb, "data_dir", tmp_path)
    try:
        assert real_kb.reload_intent() == "intent-new" == real_kb.intent_version
        (champion / WEIGHTS_FILE).write_bytes(b"not safetensors")
        with pytest.raises(IntentModelError):
            real_kb.reload_intent()
        assert real_kb.intent_version == "intent-new"
    finally:
        monkeypatch.undo()
        assert real_kb.reload_intent() == shipped_version


def test_every_section_has_a_stable_valid_deep_link_that_opens_it(real_kb) -> None:
    from knowledge.ingest import ingest_folder
    from knowledge.links import PAYLOAD, entry_payloads

    index = real_kb.retriever().index
    assert len(set(index.links)) == len(index.sections)
    assert all(PAYLOAD.match(link) for link in index.links)
    again = entry_payloads(ingest_folder(real_kb.corpus_dir).sections)  # a rebuild of the same corpus
    assert again == index.links
    answer = real_kb.ask("How do I price an AI product?")
    for source in answer.sources:
        entry = real_kb.entry(source.link)
        assert entry is not None and entry.answered
        assert (entry.sources[0].section, entry.sources[0].link) == (source.section, source.link)
    for payload in ("", "s-000000000000", "../etc/passwd", "x" * 65, None):
        assert real_kb.entry(payload) is None
    faq = real_kb.faq("zh", 3)
    assert len(faq) == 3 and all(
        entry.lang == "zh" and entry.sources[0].link.startswith("f-") for entry in faq
    )


def test_the_knowledge_base_answers_an_overview_question_with_the_overview(real_kb):
    answer = real_kb.ask("What is this article about?", 5)
    assert answer.text.startswith(OVERVIEW_LEAD["en"].format(count=2))
    assert sorted(s.doc[:3] for s in answer.sources) == ["001", "004"]
    assert not real_kb.ask("What does the article say about data privacy?", 5).text.startswith(
        "My sources are"
    )


def test_a_question_about_the_example_code_gets_the_code_it_asks_about(real_kb):
    answer = real_kb.ask("What hidden_size and vocab_size does the LSTM language model code use?")
    assert answer.answered
    prose, lead, code = answer.text.partition(f"\n\n{CODE_LEAD['en']}\n```\n")
    assert lead and "hidden_size" in code and "vocab_size" in code
    assert "```" not in prose  # the prose quote holds no code of its own
