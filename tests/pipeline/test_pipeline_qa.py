"""Offline QA generation, the jsonl files it writes, and reading QA records back."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.chunking import chunk_document
from pipeline.documents import Document, load_documents
from pipeline.qa import generate_offline, generate_qa, load_qa_records
from pipeline.qa_templates import questions_for_sentence

RECORD_KEYS = {"id", "question", "answer", "document", "chunk_id", "span", "tags", "generator", "created_at"}


@pytest.mark.parametrize("sentence, expected", [
    ("A UFMS é uma instituição de ensino superior pública federal.", ("definition", "O que é a UFMS?")),
    ("Bacharelado: modalidade de Curso de Graduação de formação profissional.",
     ("glossary", "O que é Bacharelado?")),
    ("A FACOM foi criada em 2009 pelo Conselho Universitário.",
     ("when", "Quando a FACOM foi criada pelo Conselho Universitário?")),
    ("O aluno deve cumprir 200 horas de atividades complementares.",
     ("quantity", "Quantas horas de atividades complementares o aluno deve cumprir?")),
    ("O acadêmico terá o prazo de 5 dias úteis para recorrer da decisão.",
     ("deadline", "Qual é o prazo para recorrer da decisão?")),
    ("A taxa de inscrição é de R$ 100,00.", ("value", "Qual é o valor da taxa de inscrição?")),
    ("A frequência mínima exigida é de 75% das aulas.",
     ("percent", "Qual é o percentual da frequência mínima exigida?")),
    ("O Colegiado de Curso é responsável pela aprovação do plano de estudos.",
     ("who", "Quem é responsável pela aprovação do plano de estudos?")),
    ("Compete ao Colegiado de Curso aprovar o plano de reposição.",
     ("who", "A quem compete aprovar o plano de reposição?")),
    ("A UFMS está sediada em Campo Grande, no estado do Mato Grosso do Sul.", ("where", "Onde fica a UFMS?")),
])
def test_templates(sentence, expected):
    assert expected in questions_for_sentence(sentence)


@pytest.mark.parametrize("sentence", [
    "Ele é um dos mais importantes do país.",  # anaphora: "O que é ele?" is no question
    "A mais famosa é a computação gráfica.",
    "Isto?",
])
def test_templates_refuse_unanswerable_questions(sentence):
    assert questions_for_sentence(sentence) == []


def test_offline_pairs_on_the_sample_corpus_have_exact_spans(sample_documents):
    total = shorter = 0
    for doc in sample_documents:
        chunks = {c.id: c for c in chunk_document(doc)}
        pairs = generate_offline(doc, list(chunks.values()))
        for pair in pairs:
            start, end = pair.span
            assert doc.text[start:end] == pair.answer
            chunk = chunks[pair.chunk_id]
            assert chunk.start <= start < end <= chunk.end
            shorter += len(pair.answer) < len(chunk.text)  # a sentence, not the whole chunk
            assert pair.question.endswith("?") and pair.question[0].isupper()
            assert pair.generator == "offline" and pair.tags
        assert len({p.id for p in pairs}) == len(pairs)
        total += len(pairs)
    assert total >= 50 and shorter >= 0.9 * total


def _doc(folder: Path, name: str, text: str) -> Document:
    (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    return next(d for d in load_documents(folder) if d.name == name)


def test_generate_qa_writes_records_and_skips_unchanged_documents(tmp_path):
    docs_dir, out = tmp_path / "docs", tmp_path / "qa"
    docs_dir.mkdir()
    a = _doc(docs_dir, "EDITAL", "A taxa de inscrição é de R$ 100,00.\n\nA UFMS é uma universidade federal.")
    b = _doc(docs_dir, "BOLSAS", "O bolsista deve cumprir 20 horas de atividades semanais.")

    first = generate_qa([a, b], out_dir=out, generator="offline")
    assert sorted(first.generated) == ["BOLSAS", "EDITAL"] and first.skipped == [] and first.n_pairs == 3
    records = [json.loads(line) for line in (out / "EDITAL.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {r["question"] for r in records} == {"Qual é o valor da taxa de inscrição?", "O que é a UFMS?"}
    assert all(set(r) == RECORD_KEYS and isinstance(r["span"], list) for r in records)
    assert all(r["created_at"].endswith("+00:00") for r in records)

    second = generate_qa([a, b], out_dir=out, generator="offline")
    assert sorted(second.skipped) == ["BOLSAS", "EDITAL"] and second.generated == []

    changed = replace(a, text=a.text + "\n\nCompete ao Colegiado aprovar o plano.", sha256="changed")
    third = generate_qa([changed], out_dir=out, generator="offline")  # BOLSAS is gone
    assert third.generated == ["EDITAL"] and third.removed == ["BOLSAS"]
    assert not (out / "BOLSAS.jsonl").exists()
    assert len(load_qa_records(out)) == 3
    assert sorted(p.name for p in out.iterdir()) == ["EDITAL.jsonl", "manifest.json"]  # no temp files left


def test_unknown_generator_is_refused(tmp_path):
    with pytest.raises(ValueError):
        generate_qa([], out_dir=tmp_path, generator="nonsense")


def test_load_qa_records_skips_malformed_lines_with_file_and_line(tmp_path, caplog):
    good = {"id": "h1", "question": "Qual é o prazo?", "answer": "Dez dias.", "document": "EDITAL",
            "chunk_id": "EDITAL:0-10", "span": [0, 10], "tags": [], "generator": "human",
            "created_at": "2024-01-01T00:00:00+00:00"}
    lines = [json.dumps(good), "{not json", json.dumps({**good, "question": ""}), "", json.dumps([1, 2]),
             json.dumps({**good, "span": "0-10"}), json.dumps({**good, "id": "h2"})]
    (tmp_path / "human.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "manifest.json").write_text("{}", encoding="utf-8")  # not a jsonl: ignored
    with caplog.at_level(logging.WARNING, logger="pipeline.qa"):
        records = load_qa_records(tmp_path)
    assert [r["id"] for r in records] == ["h1", "h2"]
    for lineno in (2, 3, 5, 6):
        assert f"human.jsonl:{lineno}:" in caplog.text
    assert load_qa_records(tmp_path / "missing") == []
    assert [r["id"] for r in load_qa_records(tmp_path / "human.jsonl")] == ["h1", "h2"]  # one file works too
