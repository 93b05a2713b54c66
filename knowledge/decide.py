"""Answer, point to the closest passages, or decline: read off the learned models' probabilities."""

from __future__ import annotations

from enum import StrEnum

from knowledge.learned import Policy
from knowledge.retrieve import Retrieval

# The answer models are fitted with balanced classes, so an even chance is their natural cut.
EVEN_CHANCE = 0.5


class Verdict(StrEnum):
    """What the knowledge base does with a question."""

    ANSWER = "answer"  # the corpus answers it: quote the best passage
    TENTATIVE = "tentative"  # it may: quote the best passage, saying it may not answer the question
    CLOSEST = "closest"  # about its topics but not answered there: show the closest passages, said so
    DECLINE = "decline"  # off its topics: decline and list what it can help with


def decide(retrieval: Retrieval, policy: Policy | None) -> tuple[Verdict, float]:
    """The verdict and the probability that the corpus answers the question (the confidence)."""
    if not retrieval.hits:
        return Verdict.DECLINE, 0.0
    if policy is None:  # nothing learned yet (training itself): answer everything
        return Verdict.ANSWER, 1.0
    confidence = float(policy.answerable.probability(retrieval.features))
    if confidence >= max(policy.answer_at, EVEN_CHANCE):
        return Verdict.ANSWER, confidence
    # The threshold sits below even chance so that few answerable questions are declined; a question
    # between the two is likelier unanswered than answered, so its quote comes with that said.
    if confidence >= policy.answer_at:
        return Verdict.TENTATIVE, confidence
    if (
        policy.in_domain is not None
        and float(policy.in_domain.probability(retrieval.features)) >= EVEN_CHANCE
    ):
        return Verdict.CLOSEST, confidence
    return Verdict.DECLINE, confidence
