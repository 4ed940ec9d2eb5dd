"""Answer a citizen's question from the indexed documents, with sources, or abstain.

Three strategies (``Settings.answer_strategy``):

- ``"reader"`` (default): the span reader of :mod:`pipeline.answering.reader` (multilingual-e5-small with the LoRA
  adapter the nightly job trains) reads the top ``READER_PASSAGES`` passages and points at the answer; it
  abstains when its learned "no answer" margin is below ``READER_THRESHOLD``. The reply carries the span, the
  supporting sentence (or table header + row) quoted with the label of its own place
  (:mod:`pipeline.answering.citation`) and only the source the answer comes from.
- ``"extractive"``: the short span of the retrieved passages that answers the question, chosen by the
  learned span scorer of :mod:`pipeline.answering.extract` (onde → place, quando → date, quanto → value…); no LLM,
  always faithful, tens of milliseconds.
- ``"generative"``: the LLM (``Settings.llm_backend``: transformers or llama.cpp) answers from the top passages
  only; its answer is *grounding-checked* — most of its words, and every number or date in it, must occur in
  the passages — and replaced by the extractive answer when it fails. ``on_partial`` receives the growing text
  while it is generated (the bot streams it into the Telegram message). When the model cannot answer at all
  (``LLM_BACKEND=openai`` and the engine down or cut mid-answer: :class:`pipeline.llm.local.LLMUnavailable`), the
  reader's answer (``LLM_FALLBACK``, or the extractive one) is given with ``notice=NOTICE_LLM_UNAVAILABLE``.

Either way the answer abstains (``abstained=True``, empty text: the bot shows its own "not found" message)
when retrieval found nothing, when the question has no meaningful word, or when too little of the question's
words (IDF-weighted) occurs in the sentence the answer comes from (threshold calibrated on FaQuAD's train
articles and a fixed list of off-topic questions: ``scripts/bench_answers.py``).

Example::

    >>> from pipeline.settings import Settings
    >>> from pipeline.answering.answer import Answerer
    >>> answerer = Answerer(Settings(DATA_DIR="data"))        # the index must exist: see pipeline.search.index
    >>> answer = answerer.answer("Onde é sediada a UFMS?")      # doctest: +SKIP
    >>> answer.text, answer.sources[0].document, answer.sources[0].quote[:40]   # doctest: +SKIP
    ('Campo Grande', 'UFMS', 'Universidade Federal de Mato Grosso do Su')
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from pipeline.answering.answerability import Support, features_of
from pipeline.answering.citation import heading_lines, supporting_quote, table_header_lines
from pipeline.answering.extract import Extraction, SpanExtractor, best_excluding
from pipeline.answering.reader import load_serving_reader
from pipeline.answering.result import NOTICE_LLM_UNAVAILABLE, Answer, Source, is_grounded
from pipeline.core.query import Query
from pipeline.core.text import content_terms, fold, only_function_words, same_answer
from pipeline.llm.adapters import load_serving_llm
from pipeline.llm.local import LLMUnavailable, take_last_call
from pipeline.llm.prompt import NOT_FOUND_MARKER, build_messages
from pipeline.search.store import current_version
from pipeline.search.retrieve import Hit, Retriever
from pipeline.serving.versions import serving_stamp
from pipeline.settings import Settings

# Passages whose sentences give candidate answers (the span scorer was trained with 3).
ANSWER_PASSAGES = 3
# Share (IDF-weighted) of the question's meaningful words that must occur in the retrieved passages…
MIN_TERM_COVERAGE = 0.3
# …and in the sentence the answer comes from. Calibrated by scripts/bench_answers.py --calibrate on FaQuAD's
# train articles and the even-numbered off-topic questions.
MIN_SENTENCE_COVERAGE = 0.4
MAX_QUOTE_CHARS = 300
log = logging.getLogger(__name__)


@dataclass
class Evidence:
    hits: list[Hit]
    found_terms: set[str]   # meaningful words of the retrieved passages (and their titles)
    term_coverage: float    # IDF-weighted share of the question's words found in them
    extraction: Extraction | None


class Answerer:
    """Retrieve, then answer or abstain. Loads the index and (for ``generative``) the LLM on first use."""

    def __init__(self, settings: Settings, *, retriever: Retriever | None = None, llm=None,
                 extractor: SpanExtractor | None = None, reader=None) -> None:
        self.settings = settings
        self._retriever = retriever
        self._llm = llm
        self._reader = reader
        self.extractor = extractor or SpanExtractor.default()
        self._lock = threading.Lock()
        self._idf: dict[str, float] | None = None
        self._idf_version: str | None = None

    @property
    def retriever(self) -> Retriever:
        with self._lock:
            if self._retriever is None:
                self._retriever = Retriever.from_settings(self.settings)
            return self._retriever

    @property
    def llm(self):
        with self._lock:
            if self._llm is None:
                self._llm = load_serving_llm(self.settings)  # the base model with the promoted adapter, if any
            return self._llm

    @property
    def reader(self):
        with self._lock:
            if self._reader is None:
                self._reader = load_serving_reader(self.settings)  # the promoted adapter, else the configured one
            return self._reader

    def warm_up(self) -> None:
        """Load the index, the word statistics and (for ``generative``) the LLM now instead of on first use."""
        self._idf_table()
        content_terms("aquecimento")
        if self.settings.answer_strategy == "generative":
            _ = self.llm
        if self.settings.answer_strategy == "reader":
            self.reader.read("aquecimento?", ["Texto de aquecimento."])

    @property
    def index_version(self) -> str:
        """The version of the index it answers from."""
        return self.retriever.version

    def has_chunk(self, chunk_id: str | None) -> bool:
        """Whether the serving index still holds this passage (a fast-path answer from it is not stale)."""
        retriever = self.retriever
        if getattr(self, "_chunk_ids_version", None) != retriever.version:
            self._chunk_ids = {c.id for c in retriever.chunks}
            self._chunk_ids_version = retriever.version
        return chunk_id in self._chunk_ids

    def maybe_refresh(self) -> bool:
        """Hot reload, cheap enough for every question: when the serving pointers (index ``CURRENT``, adapter
        ``SERVING_ADAPTER``) changed on disk — a promotion by the nightly job in any process — switch to them."""
        stamp = serving_stamp(self.settings)
        if stamp == getattr(self, "_serving_stamp", None):
            return False
        self._serving_stamp = stamp
        with self._lock:
            self._llm = None if self._llm is not None and getattr(self._llm, "serving", False) else self._llm
            self._reader = (None if self._reader is not None and getattr(self._reader, "serving", False)
                            else self._reader)
        return self.refresh()

    def refresh(self) -> bool:
        """Switch to the current index version if a newer one was built; ``True`` when it switched."""
        latest = current_version(self.settings.index_dir)
        with self._lock:
            if latest is None or (self._retriever is not None and self._retriever.version == latest):
                return False
            self._retriever = None
        return self.retriever.version == latest

    def _idf_table(self) -> dict[str, float]:
        retriever = self.retriever
        if self._idf is None or self._idf_version != retriever.version:
            frequency: dict[str, int] = {}
            chunks = retriever.chunks
            for chunk in chunks:
                for term in set(content_terms(chunk.text)):
                    frequency[term] = frequency.get(term, 0) + 1
            self._idf = {t: math.log(1 + len(chunks) / f) for t, f in frequency.items()}
            self._idf_version = retriever.version
        return self._idf

    def _coverage(self, terms: set[str], text_terms: set[str]) -> float:
        idf = self._idf_table()
        unseen = math.log(1 + len(self.retriever.chunks))  # a word absent from every chunk is maximally rare
        total = sum(idf.get(t, unseen) for t in terms)
        return sum(idf.get(t, unseen) for t in terms & text_terms) / total if total else 0.0

    def _quote(self, query: Query, hit: Hit) -> str:
        sentences, _ = self.extractor.sentences(query, [hit.chunk.text], self._idf_table(), top=1)
        if not sentences:
            return hit.chunk.text[:MAX_QUOTE_CHARS]
        tokens = sentences[0].tokens
        return hit.chunk.text[tokens[0][0]:tokens[-1][1]][:MAX_QUOTE_CHARS]

    def evidence(self, question: Query | str, rejected: list | None = None) -> "Evidence":
        """What the abstention decision looks at: the hits, the question's coverage, the best span
        (not one of the ``rejected`` answers: see :mod:`pipeline.feedback.memory`)."""
        query = Query.of(question)
        hits = self.retriever.search(query, self.settings.top_k)
        terms = set(query.terms)
        found_terms = {t for h in hits for t in content_terms(f"{h.chunk.title} {h.chunk.text}")}
        # No meaningful word at all ("O que é isso?") cannot be matched against any document either.
        if not hits or not terms:
            return Evidence(hits, found_terms, 0.0, None)
        top = hits[:ANSWER_PASSAGES]
        extraction = best_excluding(self.extractor, query, [h.chunk.text for h in top], self._idf_table(),
                                    rejected or [], [h.chunk.id for h in top])
        return Evidence(hits, found_terms, self._coverage(terms, found_terms), extraction)

    def answer(self, question: Query | str, *, on_partial: Callable[[str], None] | None = None,
               rejected: list | None = None, confirmed: list[str] | None = None) -> Answer:
        """The answer to ``question`` (``ValueError`` when it is blank): made into a :class:`Query` here, if the
        caller (the service) did not, and handed down as such.

        ``on_partial(text_so_far)`` is called while a generative answer is being written (not for extractive).
        ``rejected``: answers citizens disliked for this question (``pipeline.feedback.memory.Rejected``); the
        next-best candidate elsewhere is given instead. ``confirmed``: chunk ids of passages citizens said answer
        this question (👍 on the closest passage); the reader answers from one of them rather than abstain.
        """
        started = time.perf_counter()
        query = Query.of(question)
        retriever = self.retriever
        strategy = self.settings.answer_strategy
        if strategy == "reader":
            return self._answer_reader(query, rejected or [], started, confirmed or [])
        evidence = self.evidence(query, rejected)
        hits, extraction = evidence.hits, evidence.extraction
        if (extraction is None or evidence.term_coverage < MIN_TERM_COVERAGE
                or extraction.coverage < MIN_SENTENCE_COVERAGE):
            return self._result("", [], strategy, True, retriever.version, started)
        found_terms = evidence.found_terms

        # The passage the answer comes from is cited first, quoted by the sentence that holds the answer.
        order = [extraction.passage] + [i for i in range(len(hits)) if i != extraction.passage]
        sources = [Source(document=hits[i].chunk.document, title=hits[i].chunk.title,
                          section=hits[i].chunk.section, chunk_id=hits[i].chunk.id, page=hits[i].chunk.page,
                          quote=(extraction.sentence if i == extraction.passage
                                 else self._quote(query, hits[i]))[:MAX_QUOTE_CHARS],
                          score=round(float(hits[i].score), 4)) for i in order]
        if strategy == "generative":
            try:
                text = self._generate(query, hits, on_partial)
            except LLMUnavailable as exc:
                log.warning("LLM unavailable (%s): giving the %s answer", exc, self.settings.llm_fallback)
                return self._llm_fallback(query, rejected or [], started, self._result(
                    extraction.text, sources, "extractive", False, retriever.version, started))
            call = take_last_call()
            usage = None if call is None else {k: v for k, v in vars(call).items() if k != "model"}
            if NOT_FOUND_MARKER in fold(text).upper().replace(" ", "_"):
                return replace(self._result("", [], strategy, True, retriever.version, started), llm_usage=usage)
            context = "\n".join(h.chunk.text for h in hits)
            if is_grounded(text, question=query, context_terms=found_terms, context_text=context):
                return replace(self._result(text, sources, strategy, False, retriever.version, started),
                               llm_usage=usage)
        # Extractive, or the fallback of a generative answer that was empty, an echo or ungrounded.
        return self._result(extraction.text, sources, "extractive", False, retriever.version, started)

    def read(self, question: Query | str, rejected: list | None = None, *, query_vector=None):
        """``(hits, spans)``: the retrieved passages and the reader's candidate spans over the first
        ``READER_PASSAGES`` of them, best first, none of them a span citizens rejected for this question, a
        heading line, a table's header row or only closed-class words ("desde"). ``query_vector``: the question's
        embedding, when already made."""
        query = Query.of(question)
        hits = self.retriever.search(query, self.settings.top_k, query_vector=query_vector)
        passages = hits[:self.settings.reader_passages]
        if not passages:
            return hits, []
        exclude = []
        for p, hit in enumerate(passages):
            exclude += [(p, s, e) for s, e in heading_lines(hit.chunk) + table_header_lines(hit.chunk)]
            for r in rejected or []:
                if r.chunk_id is None or r.chunk_id != hit.chunk.id:
                    continue
                if not r.text:  # a closest passage citizens said does not answer: the sentence they read
                    chunk = hit.chunk
                    if r.span and chunk.start <= r.span[0] < r.span[1] <= chunk.start + len(chunk.text):
                        quote = supporting_quote(chunk, r.span[0] - chunk.start, r.span[1] - chunk.start)
                        exclude.append((p, quote.start, quote.end))
                    continue
                at = hit.chunk.text.find(r.text)
                while at >= 0:
                    exclude.append((p, at, at + len(r.text)))
                    at = hit.chunk.text.find(r.text, at + 1)
        spans = self.reader.read(query.text, [h.chunk.text for h in passages], top=8, exclude=exclude)
        spans = [sp for sp in spans if not any(r.text and same_answer(sp.text, r.text) for r in rejected or [])
                 and not only_function_words(sp.text)]
        return hits, spans

    def support(self, question: Query | str, hits: list[Hit], spans: list, *, query_vector=None) -> dict:
        """The :class:`pipeline.answering.answerability.Support` of the best span of each passage the spans come from:
        how well the sentence quoted for it (:func:`pipeline.answering.citation.supporting_quote`) and its passage match
        the question. One embedding call for all those sentences (and one for the question, unless ``query_vector``
        is the one retrieval made)."""
        best: dict[int, object] = {}
        for span in spans:
            best.setdefault(span.passage, span)
        if not best:
            return {}
        passages = list(best)
        quotes = [supporting_quote(hits[p].chunk, best[p].start, best[p].end).text for p in passages]
        query = Query.of(question)
        terms = set(query.terms)
        retriever = self.retriever
        if query_vector is None:
            query_vector = retriever.embed_query(query.text)
        vectors = retriever.embed_passages(quotes) @ np.asarray(query_vector, dtype=np.float32).reshape(-1)
        return {p: Support(sentence_dense=round(float(v), 6),
                           sentence_cover=round(self._coverage(terms, set(content_terms(q))), 6),
                           passage_cover=round(self._coverage(terms, set(content_terms(hits[p].chunk.text))), 6))
                for p, q, v in zip(passages, quotes, vectors)}

    def signals(self, question: Query | str, hits: list[Hit], spans: list, *, with_support: bool = True,
                query_vector=None) -> dict[str, float]:
        """What the learned abstention reads (:func:`pipeline.answering.answerability.features_of`)."""
        support = (self.support(question, hits, spans, query_vector=query_vector) if with_support and spans
                   else None)
        return features_of(hits, spans, support)

    def answerable(self, question: Query | str, hits: list[Hit], spans: list, *,
                   query_vector=None) -> tuple[bool, bool, bool]:
        """``(answer, confident, near)`` for the reader's best span: the learned abstention model kept beside the
        reader adapter decides (``READER_ABSTENTION=learned``, :mod:`pipeline.answering.answerability`), else the
        margin thresholds ``READER_THRESHOLD`` / ``READER_CONFIDENT``. ``near``: not an answer, but close enough
        to show its passage as the closest one found (learned model only)."""
        if not spans:
            return False, False, False
        model = self.reader.abstention if self.settings.reader_abstention == "learned" else None
        if model is None:
            margin = spans[0].margin
            return margin >= self.settings.reader_threshold, margin >= self.settings.reader_confident, False
        decision = model.decision(self.signals(question, hits, spans, with_support=model.needs_support,
                                               query_vector=query_vector))
        return decision >= model.threshold, decision >= model.confident, decision >= model.near

    def _answer_reader(self, query: Query, rejected: list, started: float, confirmed: list[str] = ()) -> Answer:
        retriever = self.retriever
        version = retriever.version
        # the question is embedded once, for retrieval and for the abstention's sentence signals
        vector = retriever.embed_query(query.text) if retriever.options.dense_weight > 0 else None
        hits, spans = self.read(query, rejected, query_vector=vector)
        reader_version = getattr(self.reader, "version", "reader")
        confirmed = set(confirmed)
        vouched = [sp for sp in spans if hits[sp.passage].chunk.id in confirmed]
        if vouched:  # citizens said this passage answers the question: its best span, not another abstention
            spans, (answers, confident, near) = vouched, (True, False, True)
        else:
            answers, confident, near = self.answerable(query, hits, spans, query_vector=vector)
        latency = lambda: round((time.perf_counter() - started) * 1000, 1)  # noqa: E731
        if not answers and not near:
            return Answer(text="", strategy="reader", abstained=True, model_version=reader_version,
                          index_version=version, latency_ms=latency())
        best = spans[0]
        hit = hits[best.passage]
        quote = supporting_quote(hit.chunk, best.start, best.end)
        source = Source(document=hit.chunk.document, title=hit.chunk.title, section=quote.section,
                        chunk_id=hit.chunk.id, quote=quote.text, score=round(float(hit.score), 4), page=hit.chunk.page,
                        span=(hit.chunk.start + best.start, hit.chunk.start + best.end))
        if not answers:
            return Answer(text="", strategy="reader", abstained=True, model_version=reader_version,
                          index_version=version, latency_ms=latency(), closest=source)
        return Answer(text=best.text, sources=[source], strategy="reader", abstained=False,
                      model_version=reader_version, index_version=version, latency_ms=latency(),
                      confident=confident)

    def _llm_fallback(self, query: Query, rejected: list, started: float, extractive: Answer) -> Answer:
        """The reader's answer (or ``extractive``) marked with the notice that the LLM could not answer."""
        answer = extractive
        if self.settings.llm_fallback == "reader":
            try:
                answer = self._answer_reader(query, rejected, started)
            except Exception:  # noqa: BLE001 (a citizen still gets the extractive answer)
                log.exception("reader fallback failed: giving the extractive answer")
        return replace(answer, notice=NOTICE_LLM_UNAVAILABLE)

    def _generate(self, query: Query, hits: list[Hit], on_partial: Callable[[str], None] | None) -> str:
        messages = build_messages(query.text, hits)
        max_new_tokens = self.settings.max_new_tokens
        if on_partial is None or not hasattr(self.llm, "stream"):
            return self.llm.generate(messages, max_new_tokens=max_new_tokens).strip()
        text = ""
        for piece in self.llm.stream(messages, max_new_tokens=max_new_tokens):
            text += piece
            shown = fold(text).upper().strip().replace(" ", "_")
            if NOT_FOUND_MARKER not in shown and not NOT_FOUND_MARKER.startswith(shown):  # never show the marker
                on_partial(text.strip())
        return text.strip()

    def _result(self, text: str, sources: list[Source], strategy: str, abstained: bool, index_version: str,
                started: float) -> Answer:
        model_version = self.llm.version if strategy == "generative" else "extractive"
        return Answer(text=text, sources=sources, strategy=strategy, abstained=abstained,
                      model_version=model_version, index_version=index_version,
                      latency_ms=round((time.perf_counter() - started) * 1000, 1))
