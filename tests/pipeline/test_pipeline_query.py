"""One Query per question: built by the service, handed down unchanged to the memory and the answerer; the
stages that also take a plain string (benchmarks, tools) give the same result for it."""

from __future__ import annotations

import pytest

from pipeline.answering.extract import SpanExtractor
from pipeline.core.query import Query
from pipeline.service import Oraculo
from tests.fakes.oraculo import CannedAnswerer


class RecordingAnswerer(CannedAnswerer):
    def __init__(self):
        super().__init__()
        self.seen: list = []

    def answer(self, question, **kwargs):
        self.seen.append(question)
        return super().answer(question, **kwargs)


def test_the_service_builds_one_query_and_hands_it_down(settings, monkeypatch):
    answerer = RecordingAnswerer()
    service = Oraculo(settings, answerer=answerer)
    service.database.upgrade()
    recalled = []
    real_recall = service.memory.recall
    monkeypatch.setattr(service.memory, "recall", lambda q, **kw: recalled.append(q) or real_recall(q, **kw))

    result = service.ask("  Onde   fica a sede\nda UFMS? ", user_ref=7, channel="cli")

    [query] = answerer.seen
    assert isinstance(query, Query) and recalled == [query] and recalled[0] is query
    assert query.text == "Onde fica a sede da UFMS?" and query.kind == "onde"
    assert {"sed", "ufms"} <= query.terms
    assert "Onde fica a sede da UFMS?"[:20] in result.answer.text
    with pytest.raises(ValueError, match="empty question"):
        service.ask(" \n ", user_ref=7, channel="cli")
    assert len(answerer.seen) == 1  # a blank question never reaches the answerer


def test_a_query_and_its_text_retrieve_and_extract_the_same(retriever):
    question = "Desde quando o POSCOMP passou a ser realizado no Peru?"
    query = Query.of(question)
    by_query, by_text = retriever.search(query, k=5), retriever.search(question, k=5)
    assert [(h.chunk.id, h.score) for h in by_query] == [(h.chunk.id, h.score) for h in by_text]
    passages = [h.chunk.text for h in by_query[:3]]
    extractor = SpanExtractor.default()
    assert extractor.best(query, passages) == extractor.best(question, passages)
    with pytest.raises(ValueError, match="empty query"):
        retriever.search("   ", k=5)
