"""Retrieval on the indexed sample corpus with the real embedder."""

from __future__ import annotations

import pytest

from pipeline.chunking import chunk_document
from pipeline.documents import load_documents
from pipeline.index import build_index
from pipeline.retrieve import Retriever

# Questions from FaQuAD (CC BY 4.0, the source of the sample corpus) and the document that answers them.
QUESTIONS = [
    ("Onde é sediada a UFMS?", "UFMS"),
    ("Desde quando o POSCOMP passou a ser realizado no Peru?", "POSCOMP"),
    ("Qual a finalidade da FAPDF?", "FAPDF"),
    ("Em qual decreto foi fundado o ministério da educação?", "MEC"),
    ("Gestantes poderão ser ajudadas pelo regime de exercícios a partir de qual mês de gestação?",
     "EXERCICIOS_DOMICILIARES"),
    ("Quando foi implantado o curso de Ciência da Computação na UFMS?", "HISTORIA_DA_FACOM"),
    ("A quem é destinado a pós-graduação?", "POS_GRADUACAO"),
    ("O que deve conter no certificado de participação em eventos científicos?",
     "RES_ATIVIDADES_COMPLEMENTARES_CC"),
]


def test_search_returns_distinct_chunks_best_first(retriever, sample_index):
    assert retriever.version == sample_index.version
    hits = retriever.search("Qual é o prazo para renovar a matrícula?", k=5)
    assert len(hits) == 5
    assert len({h.chunk.id for h in hits}) == 5
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(h.via in {"chunk", "question"} and -1.0 <= h.score <= 1.0 for h in hits)


def test_known_questions_find_their_document(retriever):
    found = [expected in [h.chunk.document for h in retriever.search(question, k=5)]
             for question, expected in QUESTIONS]
    assert sum(found) >= 7, list(zip(QUESTIONS, found))


def test_a_generated_question_leads_to_its_chunk(retriever, sample_qa_records):
    record = next(r for r in sample_qa_records if r["question"] == "O que é monografia?")
    (hit,) = retriever.search(record["question"], k=1)
    assert hit.chunk.id == record["chunk_id"] and hit.via == "question"


def test_k_larger_than_the_index_returns_every_chunk(tmp_path):
    doc = next(d for d in load_documents(None) if d.name == "MEC")
    chunks = chunk_document(doc)
    build_index(chunks, qa_records=[], embedding_model="embedded", index_root=tmp_path)
    retriever = Retriever.load(tmp_path, embedding_model="embedded")
    assert {h.chunk.id for h in retriever.search("ministério", k=50)} == {c.id for c in chunks}
    assert retriever.search("ministério", k=0) == []
    with pytest.raises(ValueError):
        retriever.search("   ", k=3)


def test_load_refuses_a_missing_index_or_another_embedding_model(tmp_path, session_settings, sample_index):
    with pytest.raises(FileNotFoundError):
        Retriever.load(tmp_path, embedding_model="embedded")
    with pytest.raises(ValueError, match="rebuild"):
        Retriever.load(session_settings.index_dir, embedding_model="intfloat/multilingual-e5-small")
