"""Fit the passage ranker and the answer/decline models on the labelled question sets (`knowledge train`).

Every choice is made by cross-validation over questions (folds never split one question's
candidates): the ranker's candidate pool, the answer models' regularisation, and the answer
threshold, which is the highest one whose out-of-fold share of declined answerable questions written
blind (the tuning parts of knowledge.evaluate.BLIND_SETS; all answerable ones when there are none)
stays within ANSWERABLE_DECLINE_BUDGET.
The locked part of the blind set is never read. Deterministic: same data, same weights.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from knowledge.answer import SOURCE_CHARS, localised
from knowledge.evaluate import Question
from knowledge.features import POOL_SIZES, QUESTION_FEATURES, UNIT_FEATURES, Signals, within_pool
from knowledge.learned import LinearModel, Policy
from knowledge.retrieve import QueryAnalysis, Retriever, best_groups, retrieval_features

log = logging.getLogger(__name__)

C_GRID = (0.01, 0.1, 1.0, 10.0)
# The ranker learns from hundreds of thousands of pairs, against which the penalty of any C in the
# grid is negligible (fits warm-started from C=0.01 stop at once for 0.1 to 10): one C, no search.
RANKER_C = 1.0
FOLDS = 5
# Well under the allowed 5% of answerable questions declined: out-of-fold estimates are noisy, and
# writers differ: scored before anything was fitted on them, groups of new writers' questions were
# declined at up to twice the share the threshold was chosen for, and single writers at more.
ANSWERABLE_DECLINE_BUDGET = 0.01
HITS = 5


@dataclass(frozen=True)
class Example:
    """One labelled question's retrieval, ready for fitting."""

    question: Question
    analysis: QueryAnalysis
    signals: Signals
    units: np.ndarray
    rows: np.ndarray  # UNIT_FEATURES of the candidate units
    labels: np.ndarray  # 1 where the unit's shown text holds an expected phrase
    supports: dict[int, float]

    @property
    def answerable(self) -> bool:
        return self.question.answerable

    @cached_property
    def differences(self) -> np.ndarray:
        """Each answering candidate's features minus each other candidate's: the ranker's pairs."""
        positives = self.rows[self.labels == 1]
        negatives = self.rows[self.labels == 0]
        return (positives[:, None, :] - negatives[None, :, :]).reshape(-1, self.rows.shape[1])


def collect(retriever: Retriever, questions: list[Question]) -> list[Example]:
    """Retrieve candidates for every question and label them by their shown text."""
    examples = []
    analyses = [retriever.analyse(" ".join(question.question.split())) for question in questions]
    vectors = retriever.encoder.encode_queries([analysis.corrected for analysis in analyses])
    for question, analysis, vector in zip(questions, analyses, vectors, strict=True):
        signals = retriever.signals(analysis, vector)
        units, rows, supports = retriever.candidate_features(analysis, signals, max(POOL_SIZES))
        wanted = [phrase.lower() for phrase in question.expect_any]
        labels = np.array(
            [_holds(localised(retriever.index, int(u), analysis.lang)[1], wanted) for u in units],
            dtype=np.float32,
        )
        examples.append(Example(question, analysis, signals, units, rows, labels, supports))
    return examples


def train(retriever: Retriever, questions: list[Question], counts: dict[str, int]) -> Policy:
    """Fit all three models on the labelled questions."""
    widest = collect(retriever, questions)
    folds = _folds(len(widest))
    findable = max(1, sum(e.answerable and e.labels.any() for e in widest))
    quality, trials = {}, {}
    for pool in POOL_SIZES:
        pooled = [_restricted(e, pool) for e in widest]
        ranked = [n for n, e in enumerate(pooled) if e.answerable and e.labels.any()]
        scores = _out_of_fold_scores(pooled, ranked, folds)
        hit1, mrr = _ranking_quality(pooled, ranked, scores)
        # Questions whose answer the pool leaves out count as misses.
        share = len(ranked) / findable
        quality[pool] = (hit1 * share, mrr * share)
        trials[pool] = (pooled, ranked, scores)
    pool = max(quality, key=lambda key: quality[key])
    # The answer model learns from rankings its questions did not train (out of fold), as in service.
    examples, ranked, out_of_fold = trials[pool]
    log.info(
        "ranker: %d candidates a signal; out of fold, the first candidate answers %.3f (MRR %.3f)",
        pool,
        *quality[pool],
    )
    groups = retriever.traits.groups
    rows = np.stack(
        [
            retrieval_features(
                e.analysis,
                e.signals,
                best_groups(e.units, scores, e.signals, groups, e.supports, HITS),
                learned=True,
            )
            for e, scores in zip(examples, out_of_fold, strict=True)
        ]
    )
    answerable = np.array([e.answerable for e in examples], dtype=np.float32)
    answerable_c = _best_c(rows, answerable, folds)
    probabilities = _out_of_fold_probabilities(rows, answerable, folds, answerable_c)
    realistic = budgeted(examples)
    answer_at = _answer_threshold(probabilities[realistic])
    declined = float(np.mean(probabilities[answerable == 0] < answer_at))
    log.info(
        "answer model: C=%s, answer at p >= %.3f; out of fold it declines %.3f of the unanswerable, "
        "%.3f of the answerable written blind, %.3f of all answerable",
        answerable_c,
        answer_at,
        declined,
        float(np.mean(probabilities[realistic] < answer_at)),
        float(np.mean(probabilities[answerable == 1] < answer_at)),
    )
    unanswerable = answerable == 0
    in_domain = np.array([e.question.kind == "uncovered" for e in examples], dtype=np.float32)[unanswerable]
    in_domain_model = None
    if min(in_domain.sum(), len(in_domain) - in_domain.sum()) >= FOLDS:
        domain_rows = rows[unanswerable]
        domain_folds = _folds(len(domain_rows))
        in_domain_model = _fit(
            domain_rows, in_domain, _best_c(domain_rows, in_domain, domain_folds), QUESTION_FEATURES
        )
    ranker = _fit_ranker([examples[n] for n in ranked])
    answer_model = _fit(rows, answerable, answerable_c, QUESTION_FEATURES)
    return Policy(ranker, answer_model, answer_at, in_domain_model, dict(counts), pool)


def budgeted(examples: list[Example]) -> np.ndarray:
    """Which questions the decline budget is counted on: the answerable ones written blind, as users
    write (the tuning parts of knowledge.evaluate.BLIND_SETS), else every answerable one. The team's
    own dev and probe questions are easier: counted in, they let the threshold decline more of the
    real ones."""
    answerable = np.array([e.answerable for e in examples], dtype=bool)
    blind = answerable & np.array([e.question.split == "tune" for e in examples], dtype=bool)
    return blind if blind.any() else answerable


def _restricted(example: Example, pool: int) -> Example:
    """An example with only the candidates a pool of `pool` units a signal would hold."""
    keep = within_pool(example.rows, pool)
    return replace(example, units=example.units[keep], rows=example.rows[keep], labels=example.labels[keep])


def _holds(text: str, wanted: list[str]) -> bool:
    lowered = text[:SOURCE_CHARS].lower()
    return any(phrase in lowered for phrase in wanted)


def _folds(size: int) -> np.ndarray:
    """A fold number per item, shuffled with a fixed seed."""
    return np.random.default_rng(0).permutation(size) % FOLDS


def _ranking_quality(examples: list[Example], ranked: list[int], scores: list) -> tuple:
    """(hit@1, MRR) of the ranked questions under the given candidate scores."""
    firsts, reciprocal = [], []
    for n in ranked:
        order = np.argsort(-scores[n], kind="stable")
        positions = np.flatnonzero(examples[n].labels[order])
        firsts.append(float(positions[0] == 0))
        reciprocal.append(1.0 / (1 + positions[0]))
    return float(np.mean(firsts)), float(np.mean(reciprocal))


def _out_of_fold_scores(examples: list[Example], ranked: list[int], folds: np.ndarray) -> list:
    """Every question's candidate scores from a ranker fitted without its fold."""
    scores: list = [None] * len(examples)
    for fold in range(FOLDS):
        model = _fit_ranker([examples[n] for n in ranked if folds[n] != fold])
        for n, example in enumerate(examples):
            if folds[n] == fold:
                scores[n] = model.probability(example.rows)
    return scores


def _fit_ranker(examples: list[Example]) -> LinearModel:
    """Pairwise logistic ranker: within each question, an answering unit against each other one.

    Pairs compare candidates of one question only, so how well a question matches the corpus as a
    whole (which moves all its scores together) does not leak into the ranking.
    """
    from sklearn.linear_model import LogisticRegression

    rows = np.concatenate([e.rows for e in examples])
    mean = rows.mean(axis=0)
    scale = rows.std(axis=0)
    scale[scale == 0] = 1.0
    # Standardising moves both units of a pair alike: a pair's difference needs only the scale.
    pairs = np.concatenate([e.differences for e in examples]) / scale
    features = np.concatenate([pairs, -pairs])
    labels = np.concatenate([np.ones(len(pairs)), np.zeros(len(pairs))])
    model = LogisticRegression(C=RANKER_C, fit_intercept=False, max_iter=2000)
    model.fit(features, labels)
    weights = tuple(float(x) for x in model.coef_[0])
    return LinearModel(
        UNIT_FEATURES, tuple(float(x) for x in mean), tuple(float(x) for x in scale), weights, 0.0
    )


def _best_c(rows: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> float:
    """The regularisation with the lowest out-of-fold log-loss."""

    def loss(c: float) -> float:
        p = np.clip(_out_of_fold_probabilities(rows, labels, folds, c), 1e-6, 1 - 1e-6)
        return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))

    return min(C_GRID, key=loss)


def _out_of_fold_probabilities(
    rows: np.ndarray, labels: np.ndarray, folds: np.ndarray, c: float
) -> np.ndarray:
    out = np.zeros(len(rows))
    for fold in range(FOLDS):
        held = folds == fold
        if held.any() and len(np.unique(labels[~held])) == 2:
            out[held] = _fit(rows[~held], labels[~held], c, QUESTION_FEATURES).probability(rows[held])
        elif held.any():
            out[held] = float(labels[~held].mean())
    return out


def _answer_threshold(answerable_probabilities: np.ndarray) -> float:
    """The highest threshold declining at most ANSWERABLE_DECLINE_BUDGET of the answerable questions."""
    ordered = np.sort(answerable_probabilities)
    allowed = int(np.floor(ANSWERABLE_DECLINE_BUDGET * len(ordered)))
    if allowed >= len(ordered):
        return 0.0
    low = ordered[allowed - 1] if allowed else 0.0
    return float((low + ordered[allowed]) / 2)


def _fit(
    rows: np.ndarray, labels: np.ndarray, c: float, names: tuple[str, ...], balanced: bool = True
) -> LinearModel:
    """Logistic regression on standardised rows, as a LinearModel."""
    from sklearn.linear_model import LogisticRegression

    mean = rows.mean(axis=0)
    scale = rows.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=c, class_weight="balanced" if balanced else None, max_iter=2000)
    model.fit((rows - mean) / scale, labels)
    return LinearModel(
        names,
        tuple(float(x) for x in mean),
        tuple(float(x) for x in scale),
        tuple(float(x) for x in model.coef_[0]),
        float(model.intercept_[0]),
    )
