"""pt-BR texts of documents: the page in a citation, the upload summary and refusals, the admin's listing."""

from __future__ import annotations

from datetime import datetime, timezone

from bot import admin_texts, texts
from pipeline.answering.result import Answer, Source
from pipeline.loop.library import AddReport, DocumentEntry


def source(**fields) -> Source:
    return Source(**{"document": "edital", "title": "Edital nº 12/2025", "section": "Art. 3º", "chunk_id": "e:0-9",
                     "quote": "", "score": 0.9, **fields})


def test_a_citation_names_the_page_and_never_repeats_the_title():
    shown = texts.render_answer_plain(Answer(text="R$ 85,00", sources=[
        source(page=4), source(section="Edital nº 12/2025 > Art. 5º", page=2), source(section="Edital nº 12/2025"),
        source(document="aviso", title="Aviso", section="")]))
    assert shown.splitlines()[2:5] == ["📄 Fonte: Edital nº 12/2025, Art. 3º, p. 4",
                                       "📄 Fonte: Edital nº 12/2025, Art. 5º, p. 2", "📄 Fonte: Edital nº 12/2025"]


def test_the_same_section_on_two_pages_is_two_sources():
    shown = texts.render_answer_plain(Answer(text="x", sources=[source(page=1), source(page=2), source(page=1)]))
    assert [line for line in shown.splitlines() if line.startswith("📄")] == [
        "📄 Fonte: Edital nº 12/2025, Art. 3º, p. 1", "📄 Fonte: Edital nº 12/2025, Art. 3º, p. 2"]


def test_upload_summary_and_refusals_are_escaped_and_clear():
    report = AddReport(name="edital", file="edital.pdf", title="Edital <12>", kind="pdf", pages=3,
                       pages_without_text=[2], tables=1, chunks=8, qa_pairs=16, seconds=9.96)
    shown = admin_texts.document_added(report)
    assert shown.startswith("<b>✅ Documento adicionado:</b> Edital &lt;12&gt;")
    for line in ("• páginas: 3", "• ⚠️ páginas sem texto (precisam de OCR), ignoradas: 2", "• tabelas: 1",
                 "• trechos indexados: 8", "• perguntas geradas: 16", "• tempo: 10.0 s"):
        assert line in shown.splitlines()
    assert admin_texts.document_refused("no_text", file_name="scan.pdf", max_mb=20) == (
        "❌ Não adicionei <b>scan.pdf</b>: sem texto: precisa de OCR. O PDF parece ser uma digitalização (só "
        "imagens). Envie a versão com texto selecionável, ou passe-o antes por um programa de OCR.")
    assert "passa do limite de 2.5 MB" in admin_texts.document_refused("too_large", file_name="a", max_mb=2.5)


def test_admin_listing_shows_name_file_type_pages_and_date():
    when = datetime(2026, 11, 30, tzinfo=timezone.utc)
    shown = admin_texts.document_files([DocumentEntry("edital", "Edital & Anexos", "editais/edital.pdf", "pdf", when, 3),
                                  DocumentEntry("aviso", "Aviso", "aviso.txt", "txt", when, 0)])
    assert "• Edital &amp; Anexos — <code>edital</code> (editais/edital.pdf, PDF, 3 p., 30/11/2026)" in shown
    assert "• Aviso — <code>aviso</code> (aviso.txt, texto, 30/11/2026)" in shown
