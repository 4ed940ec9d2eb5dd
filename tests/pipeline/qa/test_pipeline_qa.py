"""Offline QA generation: templates, structure (articles, tables), validation, files, resuming, hand-written jsonl."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import pytest

from pipeline.documents.chunking import chunk_document
from pipeline.documents.load import load_documents, read_document
from pipeline.qa.generate import OfflineQAGenerator, generate_offline, generate_qa
from pipeline.qa.records import load_qa_records, read_qa_records
from pipeline.qa.templates import questions_for_sentence
from pipeline.qa.validate import document_type

RECORD_KEYS = {"id", "question", "answer", "document", "chunk_id", "span", "tags", "generator", "created_at"}

EDITAL = """EDITAL Nº 12/2025 — PROCESSO SELETIVO SIMPLIFICADO

CAPÍTULO I
Das Disposições Preliminares

Art. 1º Este edital estabelece as normas do processo seletivo para contratação de professores substitutos.
Parágrafo único. O processo seletivo será executado pela Pró-Reitoria de Gestão de Pessoas.

Art. 2º Para fins deste edital, considera-se candidato com deficiência aquele que se enquadra na Lei nº 13.146.

CAPÍTULO II
Das Inscrições

Art. 3º As inscrições vão de 1º a 15 de março de 2025, somente pelo sistema eletrônico da universidade.
§ 1º A taxa de inscrição deverá ser paga até 16 de março de 2025.
§ 2º O prazo para interposição de recursos termina em 20 de abril de 2025.

Tabela 1 — Cargos, vagas e taxas de inscrição
Cargo | Vagas | Taxa de inscrição | Local de prova
Professor Adjunto | 3 | R$ 150,00 | Campo Grande
Professor Assistente | 5 | R$ 120,00 | Três Lagoas
Técnico de Laboratório | 2 | R$ 80,00 | Corumbá

Art. 4º Compete à Comissão Organizadora homologar as inscrições.
O resultado final será divulgado em 30 de junho de 2025.
"""


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
    ("A taxa de inscrição, no valor de R$ 120,00, deverá ser paga no banco.", ("value", "Qual é o valor da taxa de inscrição?")),
    ("A frequência mínima exigida é de 75% das aulas.",
     ("percent", "Qual é o percentual da frequência mínima exigida?")),
    ("O Colegiado de Curso é responsável pela aprovação do plano de estudos.",
     ("who", "Quem é responsável pela aprovação do plano de estudos?")),
    ("Compete ao Colegiado de Curso aprovar o plano de reposição.",
     ("who", "A quem compete aprovar o plano de reposição?")),
    ("A UFMS está sediada em Campo Grande, no estado do Mato Grosso do Sul.", ("where", "Onde fica a UFMS?")),
    ("As inscrições vão de 1º a 15 de março de 2025, somente pela internet.", ("when", "Quando são as inscrições?")),
    ("O prazo para interposição de recursos termina em 20 de abril de 2025.",
     ("deadline", "Qual é o prazo para interposição de recursos?")),
    ("Para fins deste edital, considera-se bolsista o estudante que recebe auxílio mensal.",
     ("definition", "O que se considera bolsista?")),
    ("O contrato de estágio tem por objetivo a regulamentação de um vínculo entre as partes.",
     ("purpose", "Qual é a finalidade do contrato de estágio?")),
    ("A renovação de matrícula é composta por três fases consecutivas.",
     ("composition", "Como é composta a renovação de matrícula?")),
    ("A Universidade Federal de Mato Grosso do Sul (UFMS) é uma instituição pública.",
     ("acronym", "O que significa a sigla UFMS?")),
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


def test_offline_pairs_on_the_sample_corpus_are_sentences_with_exact_spans(sample_documents, tmp_path):
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
            assert pair.generator == "offline" and any(t.startswith("kind:") for t in pair.tags)
        total += len(pairs)
    assert total >= 50 and shorter >= 0.9 * total
    summary = generate_qa(sample_documents, out_dir=tmp_path / "qa")
    assert summary.n_valid >= 0.9 * summary.n_pairs and summary.n_valid == len(load_qa_records(tmp_path / "qa"))


def test_edital_with_a_fee_table(tmp_path):
    (tmp_path / "EDITAL_12_2025.txt").write_text(EDITAL, encoding="utf-8")
    doc = read_document(tmp_path / "EDITAL_12_2025.txt")
    summary = generate_qa([doc], out_dir=tmp_path / "qa")
    records = {r["question"]: r for r in load_qa_records(tmp_path / "qa")}
    assert summary.n_invalid == 0 and summary.n_valid == len(records) >= 15

    fee = records["Qual é o valor da taxa de inscrição para Professor Assistente?"]
    assert fee["answer"] == "Professor Assistente | 5 | R$ 120,00 | Três Lagoas"  # the row, not the table
    assert {"doc:edital", "money", "table", "kind:table", "section:CAPÍTULO II — Das Inscrições"} <= set(fee["tags"])
    assert records["Quantas vagas há para Técnico de Laboratório?"]["answer"].startswith("Técnico de Laboratório |")
    assert records["Qual é o local de prova para Professor Adjunto?"]["answer"].endswith("Campo Grande")

    article = records["O que estabelece o Art. 3º do edital?"]
    assert article["answer"].startswith("Art. 3º As inscrições") and "date" in article["tags"]
    assert records["O que diz o § 2º do Art. 3º do edital?"]["answer"].startswith("§ 2º O prazo")
    assert "O que diz o parágrafo único do Art. 1º do edital?" in records
    assert records["Quando são as inscrições?"]["answer"] == (
        "Art. 3º As inscrições vão de 1º a 15 de março de 2025, somente pelo sistema eletrônico da universidade.")
    assert records["Até quando a taxa de inscrição deverá ser paga?"]["answer"].endswith("16 de março de 2025.")
    assert "Qual é o prazo para interposição de recursos?" in records
    assert "O que se considera candidato com deficiência?" in records
    assert records["A quem compete homologar as inscrições?"]["tags"][:2] == ["kind:who", "doc:edital"]
    assert "Quando o resultado final será divulgado?" in records
    for record in records.values():
        start, end = record["span"]
        assert EDITAL[start:end] == record["answer"] and len(record["answer"]) < 200


@pytest.mark.parametrize("name, text, expected", [
    ("EDITAL_01_2024", "", "edital"), ("PORTARIA_123", "", "portaria"), ("TABELA_DE_TAXAS", "", "tabela"),
    ("REGULAMENTO_GERAL", "", "regulamento"), ("RES_APROVEITAMENTO_DE_ESTUDOS", "", "regulamento"), ("doc", "PORTARIA Nº 5, DE 2 DE MAIO DE 2024", "portaria"),
    ("UFMS", "A UFMS é uma universidade.", None),
])
def test_document_type(name, text, expected):
    assert document_type(name, text) == expected


def test_generate_qa_writes_records_and_skips_unchanged_documents(tmp_path):
    docs_dir, out = tmp_path / "docs", tmp_path / "qa"
    docs_dir.mkdir()
    (docs_dir / "EDITAL.txt").write_text("A taxa de inscrição é de R$ 100,00.\n\nA UFMS é uma universidade federal.\n\n"
                                         "A UFMS é uma universidade pública.", encoding="utf-8")
    (docs_dir / "BOLSAS.txt").write_text("O bolsista deve cumprir 20 horas de atividades semanais.", encoding="utf-8")
    a, b = (next(d for d in load_documents(docs_dir) if d.name == n) for n in ("EDITAL", "BOLSAS"))

    first = generate_qa([a, b], out_dir=out, generator="offline")
    assert sorted(first.generated) == ["BOLSAS", "EDITAL"] and first.skipped == []
    assert (first.n_pairs, first.n_valid, first.n_invalid) == (4, 3, 1)
    records = [json.loads(line) for line in (out / "EDITAL.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["question"] for r in records] == ["Qual é o valor da taxa de inscrição?", "O que é a UFMS?"]
    assert all(set(r) == RECORD_KEYS and isinstance(r["span"], list) for r in records)
    assert all(r["created_at"].endswith("+00:00") for r in records)
    (rejected,) = [json.loads(line) for line in (out / "EDITAL.invalid.jsonl").read_text().splitlines()]
    assert rejected["question"] == "O que é a UFMS?" and rejected["reasons"] == ["near-duplicate question"]
    assert "documents" in first.format() and "75.0%" in first.format()

    second = generate_qa([a, b], out_dir=out, generator="offline")
    assert sorted(second.skipped) == ["BOLSAS", "EDITAL"] and second.generated == []

    changed = replace(a, text="A taxa de inscrição é de R$ 100,00.\n\nCompete ao Colegiado aprovar o plano.",
                      sha256="changed")
    third = generate_qa([changed], out_dir=out, generator="offline")  # BOLSAS is gone
    assert third.generated == ["EDITAL"] and third.removed == ["BOLSAS"]
    assert len(load_qa_records(out)) == 2
    assert sorted(p.name for p in out.iterdir()) == ["EDITAL.jsonl", "manifest.json"]  # no temp, no stale invalid


class Interrupting(OfflineQAGenerator):
    """The offline generator, with Ctrl-C arriving while it works on chunk number ``at``."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.calls = at, 0

    def generate_chunk(self, doc, chunk):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return super().generate_chunk(doc, chunk)


def test_an_interrupted_run_continues_where_it_stopped(sample_documents, tmp_path):
    out, docs = tmp_path / "qa", sample_documents[:4]
    n_chunks = sum(len(chunk_document(d)) for d in docs)
    complete = generate_qa(docs, out_dir=tmp_path / "reference")
    with pytest.raises(KeyboardInterrupt):
        generate_qa(docs, out_dir=out, generator=Interrupting(at=n_chunks // 2))
    manifest = json.loads((out / "manifest.json").read_text())
    assert 0 < len(manifest) < len(docs) + 1 and not list(out.glob(".*.tmp"))
    assert any(entry["failed_chunks"] for entry in manifest.values())  # the document it was in, partly done
    for path in out.glob("*.jsonl"):  # every file there is whole
        assert all(json.loads(line) for line in path.read_text().splitlines())

    done = {e["sha256"]: len(chunk_document(d)) - len(e["failed_chunks"]) for d in docs
            for name, e in manifest.items() if name == d.name}
    resumed = Interrupting(at=0)
    summary = generate_qa(docs, out_dir=out, generator=resumed)
    assert 0 < resumed.calls == n_chunks - sum(done.values()) < n_chunks  # only what was not done before
    assert summary.skipped and not summary.errors
    assert sorted(r["id"] for r in load_qa_records(out)) == sorted(r["id"] for r in load_qa_records(tmp_path / "reference"))
    assert complete.n_valid == len(load_qa_records(out))


def test_job_reads_utf8_and_latin1_and_reports_empty_and_binary_files(tmp_path):
    from pipeline.loop.jobs import generate_qa_job
    from pipeline.settings import Settings

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "UTF8.txt").write_text("A taxa de inscrição é de R$ 100,00.", encoding="utf-8")
    (docs / "LATIN1.txt").write_bytes("A contribuição anual é de R$ 50,00.".encode("latin-1"))
    (docs / "CP1252.txt").write_bytes("A “bolsa-auxílio” é de R$ 400,00 — paga mensalmente.".encode("cp1252"))
    (docs / "EMPTY.txt").write_bytes(b"  \n")
    (docs / "BINARY.txt").write_bytes(bytes(range(256)) * 4)
    summary = generate_qa_job(Settings(DATA_DIR=tmp_path / "data"), input_dir=docs, output_dir=tmp_path / "qa")
    assert summary.unreadable == ["BINARY.txt (looks binary)", "EMPTY.txt (empty)"]
    assert "unreadable: EMPTY.txt (empty)" in summary.format()
    answers = {r["document"]: r["answer"] for r in load_qa_records(tmp_path / "qa")}
    assert answers["LATIN1"] == "A contribuição anual é de R$ 50,00."
    assert answers["UTF8"] == "A taxa de inscrição é de R$ 100,00."
    assert answers["CP1252"] == "A “bolsa-auxílio” é de R$ 400,00 — paga mensalmente."  # 0x93/0x94/0x97 read right


def test_unknown_generator_is_refused(tmp_path):
    with pytest.raises(ValueError):
        generate_qa([], out_dir=tmp_path, generator="nonsense")


def test_hand_written_jsonl_is_checked_with_the_same_rules(tmp_path, caplog):
    text = "A taxa de inscrição é de R$ 100,00. O prazo de recurso é de dez dias."
    good = {"id": "h1", "question": "Qual é o prazo de recurso?", "answer": "dez dias", "document": "EDITAL",
            "chunk_id": "EDITAL:0-69", "span": [36, 69], "tags": [], "generator": "human",
            "created_at": "2024-01-01T00:00:00+00:00"}
    lines = [json.dumps(good), "{not json", json.dumps({**good, "question": ""}), "", json.dumps([1, 2]),
             json.dumps({**good, "span": "0-10"}), json.dumps({**good, "id": "h2", "question": "Quanto custa a inscrição?",
                                                               "answer": "R$ 100,00", "span": [0, 35]}),
             json.dumps({**good, "id": "h3", "answer": "trinta dias"}),  # not what the text says
             json.dumps({**good, "id": "h4", "question": "Qual é o prazo do recurso?"}),  # near-duplicate of h1
             json.dumps({**good, "id": "h5", "document": "OUTRO"})]
    (tmp_path / "human.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "manifest.json").write_text("{}", encoding="utf-8")  # not a jsonl: ignored
    (tmp_path / "EDITAL.invalid.jsonl").write_text(json.dumps({**good, "id": "bad"}) + "\n")  # never read
    with caplog.at_level(logging.WARNING, logger="pipeline.qa.records"):
        records = load_qa_records(tmp_path, documents={"EDITAL": text})
    assert [r["id"] for r in records] == ["h1", "h2"]
    for lineno, reason in ((2, "invalid JSON"), (3, "question"), (5, "not a JSON object"), (6, "span"),
                           (8, "not supported"), (9, "near-duplicate"), (10, "unknown document")):
        assert f"human.jsonl:{lineno}: " in caplog.text and reason in caplog.text
    _, problems = read_qa_records(tmp_path, documents={"EDITAL": text})
    assert len(problems) == 7 and problems[-1].endswith("human.jsonl:10: unknown document 'OUTRO'")
    assert load_qa_records(tmp_path / "missing") == []
    assert [r["id"] for r in load_qa_records(tmp_path / "human.jsonl")] == ["h1", "h2", "h5"]  # shape only


def test_index_job_reads_hand_written_pairs_against_the_documents(tmp_path, caplog):
    from pipeline.qa.records import qa_records
    from pipeline.settings import Settings

    settings = Settings(DATA_DIR=tmp_path / "data", DOCUMENTS_DIR=tmp_path / "docs")
    settings.documents_dir.mkdir(parents=True)
    (settings.documents_dir / "EDITAL.txt").write_text("A taxa de inscrição é de R$ 100,00.", encoding="utf-8")
    settings.qa_dir.mkdir(parents=True)
    (settings.qa_dir / "meus.jsonl").write_text(
        json.dumps({"question": "Quanto custa a inscrição?", "answer": "R$ 100,00", "document": "EDITAL"}) + "\n"
        + json.dumps({"question": "Quanto custa a matrícula?", "answer": "R$ 9,00", "document": "EDITAL"}) + "\n",
        encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="pipeline.qa.records"):
        records = qa_records(settings)
    assert [r["question"] for r in records] == ["Quanto custa a inscrição?"]
    assert "meus.jsonl:2: answer not found in the document" in caplog.text


def test_hand_written_pairs_without_span_are_placed_and_reach_the_index(tmp_path, caplog):
    from pipeline.documents.chunking import chunk_document
    from pipeline.documents.text import Document
    from pipeline.search.index import _question_entries

    text = "Edital de bolsas.\n\nA taxa de inscrição é de R$ 100,00.\n\nO prazo de recurso é de dez dias úteis."
    doc = Document(name="EDITAL", title="Edital", text=text, path=tmp_path / "EDITAL.txt", sha256="x")
    lines = [{"question": "Quanto custa a inscrição?", "answer": "R$ 100,00", "document": "EDITAL"},
             {"question": "Qual é o prazo de recurso?", "answer": "dez  DIAS úteis", "document": "EDITAL"},
             {"question": "Qual é o prazo da matrícula?", "answer": "dez dias uteis", "document": "EDITAL"}]
    (tmp_path / "meus.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in lines) + "\n",
                                         encoding="utf-8")
    records, problems = read_qa_records(tmp_path, documents={"EDITAL": text})
    assert [text[slice(*r["span"])] for r in records] == ["R$ 100,00", "dez dias úteis"]
    assert problems == [f"{tmp_path / 'meus.jsonl'}:3: no 'span', and the answer does not occur as written in the "
                        "document (copy it from the text, or give \"span\": [start, end])"]
    entries, unplaced = _question_entries(records, chunk_document(doc))
    assert unplaced == 0 and len(entries) == 2  # none silently dropped from the index


def test_a_latin1_jsonl_is_reported_line_by_line_not_read_with_replacement_characters(tmp_path):
    good = json.dumps({"question": "Quanto custa a inscrição?", "answer": "R$ 100,00", "document": "EDITAL"},
                      ensure_ascii=False)
    (tmp_path / "latin1.jsonl").write_bytes(good.replace("Quanto custa", "A inscrição é gratuita? Quanto custa")
                                            .encode("latin-1") + b"\n" + good.encode("ascii", "replace") + b"\n")
    records, problems = read_qa_records(tmp_path)
    assert len(records) == 1 and "\ufffd" not in json.dumps(records, ensure_ascii=False)
    assert len(problems) == 1 and problems[0].startswith(f"{tmp_path / 'latin1.jsonl'}:1: not UTF-8 (byte 0xe7")
    assert "Latin-1" in problems[0]


def test_a_huge_question_is_too_long_not_too_short(tmp_path):
    from pipeline.qa.validate import MAX_QUESTION_CHARS, check_record

    huge = "x" * 3_000_000
    assert check_record({"question": huge, "answer": "R$ 100,00"}, None) == [
        f"question too long (3000000 characters, at most {MAX_QUESTION_CHARS})"]
    assert check_record({"question": "Prazo?", "answer": "dez dias"}, None) == ["question too short (1 words, at least 3)"]
