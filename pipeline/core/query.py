"""One citizen question, prepared once and handed down the whole way (the service, the feedback memory, the
retriever, the span scorers, the reader and the abstention): its text with the whitespace normalised, its
folded content terms and its question type. Nothing after :meth:`Query.of` validates or tokenises the question
again for these; the retriever tokenises it once more for BM25 (its own analyser: :mod:`pipeline.search.lexical`)
and the reader and the embedder read ``text`` with their own tokenizers.

Example::

    >>> from pipeline.core.query import Query
    >>> query = Query.of("  Quando abrem as   inscrições do Edital nº 5? ")
    >>> query.text, query.kind, sorted(query.terms)
    ('Quando abrem as inscrições do Edital nº 5?', 'quando', ['abrem', 'edital', 'inscrica'])
    >>> Query.of(query) is query
    True
    >>> Query.of("   ")
    Traceback (most recent call last):
    ...
    ValueError: empty question
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.text import content_terms, question_type


@dataclass(frozen=True)
class Query:
    text: str                 # the question, whitespace normalised ("a  b\n" -> "a b")
    terms: frozenset[str]     # its accent-folded, stemmed content words (pipeline.core.text.content_terms)
    kind: str                 # its question type (pipeline.core.text.question_type): onde, quando, quanto…

    @classmethod
    def of(cls, question: "str | Query") -> "Query":
        """The query of ``question`` (itself when it already is one); ``ValueError`` when it is blank."""
        if isinstance(question, Query):
            return question
        text = " ".join((question or "").split())
        if not text:
            raise ValueError("empty question")
        return cls(text=text, terms=frozenset(content_terms(text)), kind=question_type(text))

    @property
    def key(self) -> tuple[str, frozenset[str]]:
        """What near-identity of two questions compares (:mod:`pipeline.feedback.memory`)."""
        return self.kind, self.terms
