"""`oraculo eval retrieval` on a small SQuAD file built from the sample corpus."""

from __future__ import annotations

import json

from pipeline.evaluation.retrieval import evaluate_retrieval, retrieval_metrics
from pipeline.settings import Settings

KEYS = {"ndcg@10", "recall@1", "recall@5", "mrr@10", "p50_ms", "p95_ms", "build_s", "n_docs", "n_queries"}


def _squad(tmp_path, sample_documents):
    docs = {d.name: d for d in sample_documents}
    paragraphs = [
        ("UFMS", "Onde é sediada a UFMS?"),
        ("POSCOMP", "O que é o POSCOMP?"),
        ("FAPDF", "Qual a finalidade da FAPDF?"),
        ("MEC", "Em qual decreto foi fundado o ministério da educação?"),
    ]
    data = [{"title": name, "paragraphs": [{"context": docs[name].text[:1500],
                                            "qas": [{"id": name, "question": q, "answers": [{"text": "x"}]}]}]}
            for name, q in paragraphs]
    path = tmp_path / "squad.json"
    path.write_text(json.dumps({"version": "1.1", "data": data}, ensure_ascii=False), encoding="utf-8")
    return path


def test_metrics_of_known_ranks():
    metrics = retrieval_metrics([1, 2, 10**9, 5])
    assert metrics["recall@1"] == 0.25 and metrics["recall@5"] == 0.75
    assert abs(metrics["mrr@10"] - (1 + 0.5 + 0.2) / 4) < 1e-9
    assert abs(metrics["ndcg@10"] - (1 + 1 / 1.5849625 + 1 / 2.5849625) / 4) < 1e-6


def test_evaluate_retrieval_builds_a_fresh_index_and_reports_every_key(tmp_path, sample_documents):
    settings = Settings(DATA_DIR=tmp_path / "data")
    report = evaluate_retrieval(settings, squad=_squad(tmp_path, sample_documents))
    assert set(report) == KEYS
    assert report["n_docs"] == 4 and report["n_queries"] == 4
    assert report["recall@5"] == 1.0 and report["ndcg@10"] >= 0.75  # four distinct topics: easy
    assert 0 <= report["p50_ms"] <= report["p95_ms"] and report["build_s"] > 0
    assert not (tmp_path / "data" / "index").exists()  # the temporary index is not the product's


def test_cli_prints_json_last(tmp_path, sample_documents, monkeypatch, capsys):
    from bot.cli import main
    from pipeline.settings import get_settings

    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    try:
        assert main(["eval", "retrieval", "--squad", str(_squad(tmp_path, sample_documents)), "--json"]) == 0
    finally:
        get_settings.cache_clear()
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert set(json.loads(last)) == KEYS


def test_long_documents_join_articles_and_keep_answer_offsets(tmp_path):
    from pathlib import Path

    from pipeline.evaluation.retrieval import document_chunks, long_documents

    first = "A matrícula é feita na secretaria. " * 20 + "O prazo termina em 10 de março."
    second = "A biblioteca abre às 8h. " * 30 + "O empréstimo dura 7 dias."
    data = [{"title": "Guia", "paragraphs": [
        {"context": first, "qas": [{"id": "1", "question": "ate quando?",
                                    "answers": [{"text": "10 de março", "answer_start": first.index("10 de")}]}]},
        {"context": second, "qas": [{"id": "2", "question": "quantos dias?",
                                     "answers": [{"text": "7 dias", "answer_start": second.index("7 dias")}]}]}]}]
    path = tmp_path / "long.json"
    path.write_text(json.dumps({"data": data}, ensure_ascii=False), encoding="utf-8")
    documents, questions = long_documents(Path(path))
    ((name, title, text),) = documents
    assert [text[q.span[0]:q.span[1]] for q in questions] == ["10 de março", "7 dias"]
    assert all(q.document == name for q in questions) and title == "Guia"
    chunks = document_chunks(documents, max_chars=300)
    assert len(chunks) > 2 and all(text[c.start:c.end] == c.text for c in chunks)
    holding = [c for c in chunks if c.start <= questions[1].span[0] < c.end]
    assert len(holding) == 1 and "7 dias" in holding[0].text
    per_paragraph, _ = long_documents(Path(path), join_articles=False)
    assert [t for _, _, t in per_paragraph] == [first, second]


def test_rank_passages_finds_the_chunk_holding_the_answer(tmp_path):
    from pathlib import Path

    from pipeline.evaluation.retrieval import MISS, document_chunks, long_documents, rank_passages
    from pipeline.search.index import build_index
    from pipeline.search.retrieve import Retriever

    text = ("Art. 1º A biblioteca abre de segunda a sexta, das 8h às 18h.\n\n"
            "Art. 2º O empréstimo de livros dura 7 dias e pode ser renovado duas vezes.\n\n"
            "Art. 3º A multa por atraso é de R$ 1,00 por dia e por livro.")
    data = [{"title": "Regulamento", "paragraphs": [{"context": text, "qas": [
        {"id": "1", "question": "qual a multa por atraso na devolucao?",
         "answers": [{"text": "R$ 1,00 por dia", "answer_start": text.index("R$ 1,00")}]}]}]}]
    path = tmp_path / "doc.json"
    path.write_text(json.dumps({"data": data}, ensure_ascii=False), encoding="utf-8")
    documents, questions = long_documents(Path(path))
    chunks = document_chunks(documents, max_chars=80)
    assert len(chunks) == 3
    build_index(chunks, qa_records=[], embedding_model="embedded", index_root=tmp_path / "index")
    retriever = Retriever.load(tmp_path / "index", embedding_model="embedded")
    passage, document, within = rank_passages(retriever, questions, budget=1000)
    assert passage == [1] and document == [1] and within == [True]
    assert rank_passages(retriever, questions, budget=10)[2] == [False]  # the chunk alone is longer than that
    assert MISS > 10
