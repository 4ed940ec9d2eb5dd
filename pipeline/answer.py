"""Answer a citizen's question from the indexed documents, with sources, or abstain.

Two strategies (``Settings.answer_strategy``): ``"extractive"`` returns the sentence(s) of the retrieved chunks
that best cover the question's words (no LLM, always faithful); ``"generative"`` asks the local LLM to answer
from the top chunks only. Either way the answer abstains (``abstained=True``, empty text: the bot shows its own
"not found" message) when retrieval found nothing close enough, either by embedding score or because none of
the question's meaningful words occurs in the retrieved passages.

Example::

    >>> from pipeline.settings import Settings
    >>> from pipeline.answer import Answerer
    >>> answerer = Answerer(Settings(DATA_DIR="data"))        # the index must exist: see pipeline.index
    >>> answer = answerer.answer("O que é a UFMS?")             # doctest: +SKIP
    >>> answer.sources[0].document                              # doctest: +SKIP
    'UFMS'
"""

from __future__ import annotations

import math
import re
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from pipeline.chunking import split_sentences
from pipeline.index import current_version
from pipeline.retrieve import Hit, Retriever
from pipeline.settings import Settings

# Below this cosine similarity a passage does not count as found (all-MiniLM-L6-v2: unrelated English ~0.1-0.2,
# unrelated Portuguese ~0.45-0.6, FaQuAD questions median ~0.7: the score alone cannot tell Portuguese
# off-topic questions apart, hence MIN_TERM_COVERAGE below).
MIN_SCORE = 0.35
# Share (IDF-weighted) of the question's meaningful words that must occur in the retrieved passages.
MIN_TERM_COVERAGE = 0.3
# Share of a generated answer's meaningful words that must occur in its context; below it (or when the model
# only repeats the question) the extractive answer is given instead: a small model must not make things up.
MIN_GROUNDING = 0.5
MAX_QUOTE_CHARS = 300
NOT_FOUND_MARKER = "NAO_ENCONTRADO"

# Portuguese stop words and question words: they say nothing about which passage answers.
_STOPWORDS = frozenset("""
a ao aos as até com como da das de dela dele deles do dos e ela elas ele eles em entre era essa esse esta este
eu foi for foram há isso isto já la lhe lo mais mas me mesmo meu minha muito na nas nem no nos nós o os ou para
pela pelas pelo pelos por qual quais quando que quem se sem ser seu seus sua suas são só também te tem têm ter
um uma umas uns você vocês é está estão sobre onde porque quanto quanta quantos quantas posso pode podem preciso
devo deve fazer faz faço existe existem tenho ser sou é estou the of what how
""".split())

# The generative prompt. Portuguese on purpose: the model must answer the citizen in Brazilian Portuguese.
SYSTEM_PROMPT = (
    "Você é o Oráculo, um assistente que responde dúvidas de cidadãos sobre documentos públicos brasileiros. "
    "Responda em português do Brasil, de forma curta e clara (no máximo três frases), usando somente as "
    "informações do contexto. Não invente nada. Se o contexto não contiver a resposta, responda apenas "
    f"{NOT_FOUND_MARKER}."
)


@dataclass(frozen=True)
class Source:
    document: str
    title: str
    section: str
    chunk_id: str
    quote: str
    score: float


@dataclass
class Answer:
    text: str
    sources: list[Source] = field(default_factory=list)
    strategy: str = "extractive"
    abstained: bool = False
    model_version: str = ""
    index_version: str = ""
    latency_ms: float = 0.0


# --- words ----------------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer  # PyStemmer: Snowball's Portuguese stemmer

    return Stemmer.Stemmer("portuguese")


def _fold(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


_FOLDED_STOPWORDS = frozenset(_fold(w) for w in _STOPWORDS)


def content_terms(text: str) -> list[str]:
    """Accent-folded, stemmed meaningful words of ``text`` (stop words and 1-2 letter words dropped).

    Folding comes first because citizens often type without accents ("inscricao" must meet "inscrição").
    """
    words = [w for w in re.findall(r"\w+", _fold(text.lower()))
             if len(w) > 2 and w not in _FOLDED_STOPWORDS and not w.isdigit()]
    words = [re.sub(r"[oa]es$", "ao", w) for w in words]  # inscricoes/inscricao, paes/pao: one stem
    return _stemmer().stemWords(words)


def is_grounded(text: str, *, question: str, context_terms: set[str]) -> bool:
    """Whether a generated ``text`` says something (not just the question again) that its context supports."""
    terms = set(content_terms(text))
    if not terms or terms <= set(content_terms(question)):
        return False
    return len(terms & context_terms) / len(terms) >= MIN_GROUNDING


def build_messages(question: str, hits: list[Hit]) -> list[dict]:
    """The chat messages of the generative strategy (also what fine-tuning trains on)."""
    blocks = []
    for number, hit in enumerate(hits, start=1):
        heading = f"{hit.chunk.title} — {hit.chunk.section}" if hit.chunk.section else hit.chunk.title
        blocks.append(f"[{number}] {heading}\n{hit.chunk.text}")
    context = "\n\n".join(blocks)
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"Contexto:\n{context}\n\nPergunta: {question}"}]


class Answerer:
    """Retrieve, then answer or abstain. Loads the index and (for ``generative``) the LLM on first use."""

    def __init__(self, settings: Settings, *, retriever: Retriever | None = None, llm=None) -> None:
        self.settings = settings
        self._retriever = retriever
        self._llm = llm
        self._lock = threading.Lock()
        self._idf: dict[str, float] | None = None
        self._idf_version: str | None = None

    @property
    def retriever(self) -> Retriever:
        with self._lock:
            if self._retriever is None:
                self._retriever = Retriever.load(self.settings.index_dir,
                                                 embedding_model=self.settings.embedding_model)
            return self._retriever

    @property
    def llm(self):
        with self._lock:
            if self._llm is None:
                from pipeline.llm import LocalLLM

                self._llm = LocalLLM.load(self.settings.llm_model, models_dir=self.settings.models_dir)
            return self._llm

    def warm_up(self) -> None:
        """Load the index, the word statistics and (for ``generative``) the LLM now instead of on first use."""
        self._idf_table()
        content_terms("aquecimento")
        if self.settings.answer_strategy == "generative":
            _ = self.llm

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

    def _best_sentences(self, question_terms: set[str], hit: Hit) -> tuple[float, str]:
        """The best-covering sentence of ``hit`` (with the next one when it is very short) and its coverage."""
        text = hit.chunk.text
        spans = split_sentences(text)
        best, best_score = (0, min(len(text), MAX_QUOTE_CHARS)), -1.0
        for i, (start, end) in enumerate(spans):
            score = self._coverage(question_terms, set(content_terms(text[start:end])))
            if score > best_score:
                if end - start < 60 and i + 1 < len(spans):
                    end = spans[i + 1][1]
                best, best_score = (start, end), score
        return best_score, text[best[0]:best[1]]

    def answer(self, question: str) -> Answer:
        """The answer to ``question`` (``ValueError`` when it is blank)."""
        started = time.perf_counter()
        question = " ".join((question or "").split())
        if not question:
            raise ValueError("empty question")
        retriever = self.retriever
        strategy = self.settings.answer_strategy
        hits = [h for h in retriever.search(question, self.settings.top_k) if h.score >= MIN_SCORE]
        terms = set(content_terms(question))
        found_terms = {t for h in hits for t in content_terms(f"{h.chunk.title} {h.chunk.text}")}
        # No meaningful word at all ("O que é isso?") cannot be matched against any document either.
        if not hits or not terms or self._coverage(terms, found_terms) < MIN_TERM_COVERAGE:
            return self._result("", [], strategy, True, retriever.version, started)

        quotes = [self._best_sentences(terms, hit) for hit in hits]
        # The extractive answer comes from the best sentence; rank by its coverage, then by retrieval order.
        order = sorted(range(len(hits)), key=lambda i: (-quotes[i][0], i))
        sources = [Source(document=h.chunk.document, title=h.chunk.title, section=h.chunk.section,
                          chunk_id=h.chunk.id, quote=q[:MAX_QUOTE_CHARS], score=round(h.score, 4))
                   for h, (_, q) in zip(hits, quotes)]
        if strategy == "generative":
            text = self.llm.generate(build_messages(question, hits),
                                     max_new_tokens=self.settings.max_new_tokens).strip()
            if NOT_FOUND_MARKER in _fold(text).upper().replace(" ", "_"):
                return self._result("", [], strategy, True, retriever.version, started)
            if is_grounded(text, question=question, context_terms=found_terms):
                return self._result(text, sources, strategy, False, retriever.version, started)
        # Extractive, or the fallback of a generative answer that was empty, an echo or ungrounded.
        return self._result(quotes[order[0]][1], [sources[i] for i in order], "extractive", False,
                            retriever.version, started)

    def _result(self, text: str, sources: list[Source], strategy: str, abstained: bool, index_version: str,
                started: float) -> Answer:
        model_version = self.llm.version if strategy == "generative" else "extractive"
        return Answer(text=text, sources=sources, strategy=strategy, abstained=abstained,
                      model_version=model_version, index_version=index_version,
                      latency_ms=round((time.perf_counter() - started) * 1000, 1))
