"""The word-level text model: its subword vocabulary, the n-gram and cache it mixes in, scoring that
uses the same mixture, checkpoints through the shared loader, and generation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from generation.api import TextRequest
from generation.models.checkpoint import Checkpoint, load_checkpoint, read_metadata
from generation.models.ngram import TokenNgram
from generation.models.subword import EOS_ID, UNK_ID, UNK_TOKEN, SubwordVocab, pieces
from generation.models.word_lm import WordLM, WordLmConfig
from generation.registry import ModelRegistry
from generation.service.word_generator import WordTextGenerator
from generation.service.word_guards import COPY_CHARS, CopyGuard, VocabularyGuard
from generation.train.word import learn_vocab
from generation.train.word_eval import word_bits_per_char
from tests.generation.conftest import CHINESE, ENGLISH

TEXTS = [(ENGLISH + "\n" + CHINESE + "\n") * 6]


@pytest.fixture(scope="module")
def vocab() -> SubwordVocab:
    return learn_vocab(TEXTS, 200, min_char_count=2)


@pytest.fixture(scope="module")
def words(trained_models: Path) -> WordTextGenerator:
    champion = ModelRegistry(trained_models).champion("word")
    assert champion is not None
    return WordTextGenerator.load(champion.path, "cpu")


def test_pieces_keep_every_character_and_never_mix_scripts() -> None:
    text = "Our startup's 2 models: 大模型创业，  costs\n\nfall 3.5%! y_i = __init__(x²)"
    parts = pieces(text)
    assert "".join(parts) == text
    for part in parts:
        cjk = [0x4E00 <= ord(char) < 0xA000 for char in part]
        assert all(cjk) or not any(cjk), part


def test_tokenizer_round_trip_and_merges(vocab: SubwordVocab) -> None:
    text = ENGLISH + CHINESE
    ids = vocab.encode(text)
    assert vocab.decode(ids) == text
    assert len(ids) < len(text) / 2  # frequent words and word pairs are single tokens
    assert " startup" in vocab.tokenize(" startup")
    copy = SubwordVocab.from_json(vocab.to_json())
    assert copy.tokens == vocab.tokens and copy.encode(text) == ids


def test_unknown_characters_are_unk_and_spans_name_them(vocab: SubwordVocab) -> None:
    text = "Founders ☃ test 鬱"
    assert vocab.tokenize(text).count(UNK_TOKEN) == 2
    spans = vocab.spans(text)
    assert "".join(characters for _, characters in spans) == text
    assert [characters for token, characters in spans if token == UNK_ID] == ["☃", "鬱"]
    assert "☃" not in vocab and "F" in vocab


def test_vocabulary_refuses_a_merge_without_its_token() -> None:
    with pytest.raises(ValueError, match="makes no token"):
        SubwordVocab(["<unk>", "<eos>", "a", "b"], [("a", "b")])


def test_ngram_gives_distributions_that_favour_what_followed() -> None:
    stream = [2, 3, 4, 2, 3, 4, 2, 3, 5]
    ngram = TokenNgram(stream, vocab_size=6, order=3)
    probs = ngram.distributions([[2, 3], [], [9, 9]])
    assert torch.allclose(probs.sum(dim=1), torch.ones(3), atol=1e-5)
    assert probs[0].argmax() == 4 and probs[0, 4] > probs[0, 5] > probs[0, 0] > 0


def _kneser_ney(
    stream: list[int], vocab_size: int, order: int, history: tuple[int, ...], token: int
) -> float:
    """Interpolated Kneser-Ney written out recursively, one probability at a time."""
    discount = 0.75

    def continuations(context: tuple[int, ...], raw: bool) -> dict[int, int]:
        counts: dict[int, int] = {}
        grams = {tuple(stream[i : i + len(context) + 2]) for i in range(len(stream))}
        for end in range(len(stream)):
            if tuple(stream[end - len(context) : end]) != context or end < len(context):
                continue
            if raw:
                counts[stream[end]] = counts.get(stream[end], 0) + 1
        if not raw:
            for gram in grams:
                if len(gram) == len(context) + 2 and gram[1:-1] == context:
                    counts[gram[-1]] = counts.get(gram[-1], 0) + 1
        return counts

    def probability(context: tuple[int, ...], raw: bool) -> float:
        counts = continuations(context, raw)
        lower = probability(context[1:], False) if context else 1.0 / vocab_size
        if not counts:
            return lower
        total = sum(counts.values())
        return max(counts.get(token, 0) - discount, 0.0) / total + discount * len(counts) / total * lower

    return probability(history[len(history) - min(len(history), order - 1) :], True)


def test_ngram_matches_kneser_ney_written_out_and_adds_into_a_mixture() -> None:
    stream = [2, 3, 4, 2, 3, 4, 2, 3, 5, 6, 2, 4, 4, 3]
    ngram = TokenNgram(stream, vocab_size=8, order=3)
    histories = [[2, 3], [], [9, 9], [4], [3, 4, 2, 4]]
    probs = ngram.distributions(histories)
    for row, history in enumerate(histories):
        expected = [_kneser_ney(stream, 8, 3, tuple(history), token) for token in range(8)]
        assert probs[row].tolist() == pytest.approx(expected, abs=1e-6)
    unigram = TokenNgram(stream, vocab_size=8, order=1).distributions(histories)
    expected = [_kneser_ney(stream, 8, 1, (), token) for token in range(8)]
    assert all(row == pytest.approx(expected, abs=1e-6) for row in unigram.tolist())
    base = torch.rand(len(histories), 8)
    mixed = ngram.add_to(base.clone() * 0.6, histories, 0.4)
    assert torch.allclose(mixed, base * 0.6 + probs * 0.4, atol=1e-6)


def test_cache_votes_for_what_followed_similar_states() -> None:
    model = WordLM(WordLmConfig(vocab_size=5, embed_dim=4, hidden_size=3, layers=1, cache_theta=5.0))
    keys = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    targets = torch.tensor([3, 4])
    valid = torch.tensor([[True, True], [False, False]])
    cache = model.cache_distribution(torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]), keys, targets, valid)
    assert cache[0].argmax() == 3 and cache[0].sum() == pytest.approx(1.0)
    assert cache[1].sum() == 0  # nothing cached: the mixture leaves the row to the network


def test_score_without_the_mixture_is_the_networks_cross_entropy(
    words: WordTextGenerator, corpus_dir: Path
) -> None:
    texts = [CHINESE + " " + ENGLISH]
    trained = word_bits_per_char(words.model, words.vocab, [ENGLISH * 3], texts)
    assert math.isfinite(trained["bpc"]) and trained["heldout_chars"] == len(texts[0])
    assert 0 < trained["cjk_share"] < 1
    config = WordLmConfig(**{**words.model.config.to_dict(), "cache_weight": 0.0, "ngram_weight": 0.0})
    network_alone = WordLM(config, words.model.network, words.model.memory)
    ids = torch.tensor([EOS_ID, *words.vocab.encode(ENGLISH * 3)][-300:] + words.vocab.encode(texts[0]))
    logits, _ = words.model.network(ids[None, :-1])
    start = len(ids) - len(words.vocab.encode(texts[0])) - 1
    nll = torch.nn.functional.cross_entropy(logits[0, start:].detach(), ids[start + 1 :], reduction="sum")
    alone = word_bits_per_char(network_alone, words.vocab, [ENGLISH * 3], texts)
    assert alone["bpc"] == pytest.approx(float(nll) / math.log(2) / len(texts[0]), rel=1e-4)


def test_dry_run_checkpoint_loads_through_the_shared_loader(trained_models: Path) -> None:
    champion = ModelRegistry(trained_models).champion("word")
    checkpoint = load_checkpoint(champion.path, "word")
    meta = read_metadata(champion.path)
    assert isinstance(checkpoint.model, WordLM) and isinstance(checkpoint.vocab, SubwordVocab)
    assert meta["vocab"]["tokens"][:2] == ["<unk>", "<eos>"] and meta["data"]["heldout_split"]
    assert checkpoint.model.memory.numel() == meta["config"]["memory_tokens"] > 0
    assert "bpc" in checkpoint.metrics
    assert not list(champion.path.glob("*.pkl")) and not list(champion.path.glob("*.bin"))


def test_generation_keeps_the_prompt_and_never_writes_a_placeholder(words: WordTextGenerator) -> None:
    prompt = "Founders ☃ 鬱 test"
    results = words.generate_batch(
        [
            TextRequest(model="word", prompt=prompt, length=120, seed=seed, temperature=2.0)
            for seed in range(6)
        ]
    )
    for result in results:
        added = result.text[len(prompt) :]
        assert result.text.startswith(prompt) and result.model == "word"
        assert len(added) >= 120 and "\ufffd" not in added and "<unk>" not in added and "<eos>" not in added


def scripted_generator(stream: list[int]) -> WordTextGenerator:
    """A word model whose n-gram, repeating `stream` over tokens <unk> <eos> a " b" ".", all but
    decides what comes next."""
    vocab = SubwordVocab(["<unk>", "<eos>", "a", " b", "."], [])
    memory = torch.tensor(stream * 20)
    config = WordLmConfig(
        vocab_size=5,
        embed_dim=4,
        hidden_size=4,
        layers=1,
        memory_tokens=len(memory),
        ngram_order=3,
        ngram_weight=0.99,
        cache_weight=0.0,
    )
    model = WordLM(config, memory=memory).eval()
    return WordTextGenerator(
        Checkpoint("word", model, {"version": "scripted"}, vocab=vocab), torch.device("cpu")
    )


def test_generation_stops_at_the_first_sentence_end_past_the_length() -> None:
    generator = scripted_generator([2, 3, 3, 4])  # "a b b."
    for length in (3, 6, 9):
        [result] = generator.generate_batch(
            [TextRequest(model="word", length=length, seed=1, temperature=0.1)]
        )
        assert result.text.endswith(".") and length <= len(result.text) < length + len("a b b.")
        ends = [index + 1 for index, char in enumerate(result.text) if char == "."]
        assert all(end < length for end in ends[:-1])  # no stop at a sentence end before the length


def test_generation_stops_at_eos_only_once_the_length_is_reached() -> None:
    generator = scripted_generator([3, 1])  # " b", then the document ends
    for length in (1, 5, 12):
        [result] = generator.generate_batch(
            [TextRequest(model="word", length=length, seed=2, temperature=0.1)]
        )
        assert result.text == " b" * -(-length // 2)


def test_guards_keep_words_to_the_training_vocabulary_and_refuse_long_copies() -> None:
    words = VocabularyGuard(
        "Large models help founders. 大模型", ["<unk>", "<eos>", "mod", "els", "xy", " mod", "."]
    )
    assert words.allowed("")[5] and words.allowed("")[2] and not words.allowed("")[3]  # no word begins "els"
    assert words.allowed("mod")[3] and not words.allowed("mod")[4] and not words.allowed("mod")[6]
    assert words.allowed("models")[6]  # a whole word may end
    assert VocabularyGuard.follow("mod", "els") == "models" and VocabularyGuard.follow("models", ".") == ""
    copies = CopyGuard("x" * 10 + "a" * COPY_CHARS)
    assert copies.copies("b" + "a" * COPY_CHARS, 1) and not copies.copies("a" * (COPY_CHARS - 1) + "b", 1)


def test_seeded_text_is_identical_alone_or_in_a_batch(words: WordTextGenerator) -> None:
    request = TextRequest(model="word", prompt="A startup", length=60, seed=3, top_k=20, temperature=0.9)
    alone = words.generate_batch([request])[0]
    mates = [
        TextRequest(model="word", prompt=p, length=n, seed=s) for p, n, s in (("", 10, 1), ("创业", 90, 2))
    ]
    crowd = words.generate_batch([*mates, request])
    assert crowd[-1].text == alone.text and crowd[-1].seed == 3


def test_top_k_one_is_greedy(words: WordTextGenerator) -> None:
    texts = {
        words.generate_batch([TextRequest(model="word", prompt="A startup", length=30, seed=s, top_k=1)])[
            0
        ].text
        for s in range(3)
    }
    assert len(texts) == 1
