"""What an answer is (:class:`Answer`, its :class:`Source`), and whether a generated one is grounded in its context.

Example::

    >>> from pipeline.answering.result import is_grounded, numbers_in
    >>> sorted(numbers_in("Custa R$ 1.500,00 desde 2006."))
    ['1.500,00', '2006']
    >>> is_grounded("O prazo é de 30 dias.", question="Qual o prazo?", context_terms={"praz", "30", "dias"},
    ...             context_text="O prazo é de 30 dias.")
    True
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipeline.core.query import Query
from pipeline.core.text import content_terms

NOTICE_LLM_UNAVAILABLE = "llm_unavailable"  # Answer.notice: the generative model could not answer (bot/texts.py)
# Share of a generated answer's meaningful words that must occur in its context; below it (or when the model
# only repeats the question, or cites a number absent from the context) the extractive answer is given instead.
MIN_GROUNDING = 0.5
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


@dataclass(frozen=True)
class Source:
    document: str
    title: str
    section: str
    chunk_id: str
    quote: str
    score: float
    span: tuple[int, int] | None = None  # the answer's offsets in the document (reader answers)
    page: int = 0  # page of the passage in a PDF (Chunk.page), shown as "p. 4"; 0: no pages


@dataclass
class Answer:
    text: str
    sources: list[Source] = field(default_factory=list)
    strategy: str = "extractive"
    abstained: bool = False
    model_version: str = ""
    index_version: str = ""
    latency_ms: float = 0.0
    confident: bool = False  # the reader's margin is high: the short answer is shown in bold
    notice: str = ""  # NOTICE_LLM_UNAVAILABLE: a fallback answer, given because the LLM could not answer
    llm_usage: dict | None = None  # latency, first piece, tokens of the generation (LLM_BACKEND=openai)
    # an abstention whose best passage came close (AnswerabilityModel.near): shown as "the closest passage", quoted
    closest: Source | None = None


# --- grounding ----------------------------------------------------------------------------------------------

def numbers_in(text: str) -> set[str]:
    """The numbers written in ``text`` ("R$ 1.500,00" -> {"1.500,00"}; "2006" -> {"2006"})."""
    return {m.group().rstrip(".,") for m in _NUMBER.finditer(text)}


def is_grounded(text: str, *, question: Query | str, context_terms: set[str], context_text: str = "") -> bool:
    """Whether a generated ``text`` says something (not just the question again) that its context supports.

    Supported: at least ``MIN_GROUNDING`` of its meaningful words occur in the context and, when
    ``context_text`` is given, every number or date it writes occurs there too (a model that makes up a
    deadline is worse than no answer).
    """
    query = Query.of(question)
    terms = set(content_terms(text))
    if not terms or terms <= query.terms:
        return False
    if context_text and not numbers_in(text) <= numbers_in(context_text) | numbers_in(query.text):
        return False
    return len(terms & context_terms) / len(terms) >= MIN_GROUNDING
