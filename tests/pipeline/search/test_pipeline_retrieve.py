"""Retrieval on the indexed sample corpus with the real embedder."""

from __future__ import annotations

import json

import pytest

from pipeline.documents.chunking import chunk_document
from pipeline.documents.load import load_documents
from pipeline.search.index import build_index
from pipeline.search.retrieve import Retriever

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


def test_a_hit_found_through_a_question_still_reports_its_passages_own_similarity(retriever, sample_qa_records):
    record = sample_qa_records[0]
    hit = next(h for h in retriever.search(record["question"], 3) if h.chunk.id == record["chunk_id"])
    assert hit.via == "question"
    query = retriever.embed_query(record["question"])[0]
    own_row = next(i for i, (c, kind) in enumerate(zip(retriever._entry_chunk, retriever._entry_kind))
                   if c == hit.chunk.id and kind == "chunk")
    # the same float32 dot product the retriever computes, on the stored vector of the passage's own entry
    assert hit.passage_dense == pytest.approx(float(retriever._vectors[own_row] @ query), abs=1e-6)
    assert hit.passage_dense < hit.dense  # the generated question itself matched better than its passage


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
    with pytest.raises(ValueError, match="rebuild"):  # the other embedded model: same dimension, other vectors
        Retriever.load(session_settings.index_dir, embedding_model="minilm")


def test_an_index_of_the_old_embedded_minilm_is_refused_not_mixed(tmp_path):
    """Before e5, "embedded" meant MiniLM: an index built then (identity "embedded@onnx-int8") must not load."""
    doc = next(d for d in load_documents(None) if d.name == "MEC")
    info = build_index(chunk_document(doc)[:3], qa_records=[], embedding_model="minilm", index_root=tmp_path)
    meta = json.loads((info.path / "meta.json").read_text())
    meta.update(embedding_model="embedded", embedding_identity="embedded@onnx-int8")
    (info.path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="rebuild"):
        Retriever.load(tmp_path, embedding_model="embedded")


def test_hits_carry_both_scores_and_weights_change_the_fusion(retriever):
    import dataclasses

    question = "Qual é o prazo para renovar a matrícula?"
    hits = retriever.search(question, k=3)
    assert all(0 <= h.lexical <= 1 and -1 <= h.dense <= 1 for h in hits)
    original = retriever.options
    try:
        retriever.options = dataclasses.replace(original, dense_weight=0.0, title_weight=0.0)
        lexical_only = retriever.search(question, k=3)
        assert all(abs(h.score - h.lexical * (original.question_weight if h.via == "question" else 1)) < 1e-5
                   for h in lexical_only)
        retriever.options = dataclasses.replace(original, dense_weight=1.0, title_weight=0.0, dense_floor=0.0)
        dense_only = retriever.search(question, k=3)
        assert all(abs(h.score - h.dense * (original.question_weight if h.via == "question" else 1)) < 1e-5
                   for h in dense_only)
        # Above DENSE_FLOOR the cosine is rescaled to 0-1 (e5's unrelated texts sit near 0.8).
        retriever.options = dataclasses.replace(original, dense_weight=1.0, title_weight=0.0, dense_floor=0.8)
        floored = retriever.search(question, k=3)
        assert floored[0].score > 0
        assert all(abs(h.score - max(0.0, (h.dense - 0.8) / 0.2) * (original.question_weight
                                                                   if h.via == "question" else 1)) < 1e-4
                   for h in floored)
    finally:
        retriever.options = original


def test_accents_and_inflections_do_not_matter(retriever):
    plain = [h.chunk.id for h in retriever.search("Qual e a finalidade da FAPDF", k=3)]
    accented = [h.chunk.id for h in retriever.search("Qual é a finalidade da FAPDF?", k=3)]
    assert plain[0] == accented[0] and retriever.search("FAPDF", k=1)[0].chunk.document == "FAPDF"


def test_off_topic_questions_score_lower_than_answerable_ones(retriever):
    on_topic = [retriever.search(q, k=1)[0].score for q, _ in QUESTIONS]
    off_topic = [retriever.search(q, k=1)[0].score for q in (
        "Qual a receita de bolo de cenoura?", "Quem ganhou a copa do mundo de 1970?",
        "Como trocar o pneu do carro?")]
    assert max(off_topic) < sorted(on_topic)[len(on_topic) // 2]  # below the median answerable question


def test_settings_reach_the_retriever(session_settings, sample_index):
    settings = session_settings.model_copy(update={"dense_weight": 0.3, "question_weight": 0.5})
    retriever = Retriever.from_settings(settings)
    assert retriever.options.dense_weight == 0.3 and retriever.options.question_weight == 0.5
    assert retriever.version == sample_index.version


def test_a_query_naming_a_document_prefers_its_chunks(retriever):
    import dataclasses

    assert retriever.search("Onde é sediada a UFMS?", k=1)[0].chunk.document == "UFMS"
    original = retriever.options
    try:
        retriever.options = dataclasses.replace(original, title_weight=0.0)
        without = retriever.search("Onde é sediada a UFMS?", k=1)[0]
    finally:
        retriever.options = original
    with_title = retriever.search("Onde é sediada a UFMS?", k=3)
    assert without.chunk.id in {h.chunk.id for h in with_title}  # the title only reorders what BM25 found


def test_document_weight_favours_a_passage_whose_document_matches_elsewhere_too(tmp_path):
    """Long documents: with DOCUMENT_WEIGHT a chunk borrows from its document's best candidate."""
    import dataclasses

    from pipeline.documents.chunking import Chunk

    texts = [("EDITAL", "O edital do concurso de professores: inscrições pela internet."),
             ("EDITAL", "Concurso de professores: a prova objetiva tem 40 questões."),
             ("AVISO", "A prova de direção do concurso de motoristas será no sábado.")]
    chunks = [Chunk(id=f"{d}:{i}", document=d, title="Documento", text=t, start=0, end=len(t))
              for i, (d, t) in enumerate(texts)]
    build_index(chunks, qa_records=[], embedding_model="embedded", index_root=tmp_path)
    retriever = Retriever.load(tmp_path, embedding_model="embedded")
    retriever.options = dataclasses.replace(retriever.options, dense_weight=0.0, title_weight=0.0)
    query = "como é a prova do concurso de professores"
    plain = retriever.search(query, k=3)
    retriever.options = dataclasses.replace(retriever.options, document_weight=0.5)
    boosted = retriever.search(query, k=3)
    assert {h.chunk.id for h in boosted} == {h.chunk.id for h in plain}
    before, after = {h.chunk.id: h.score for h in plain}, {h.chunk.id: h.score for h in boosted}
    assert before["EDITAL:0"] <= before["AVISO:2"] + 1e-6  # alone, the edital's other passage is no better
    assert after["EDITAL:0"] > after["AVISO:2"]  # with its document's best match, it is
    assert abs(after["EDITAL:1"] - before["EDITAL:1"]) < 1e-6  # a document's best keeps its own score
    assert max(after.values()) <= 1.0
