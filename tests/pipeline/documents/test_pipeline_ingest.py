"""PDF, DOCX and HTML documents made in the test, read into text with tables, pages and titles."""

from __future__ import annotations

import pytest

from pipeline.documents.chunking import chunk_document
from pipeline.documents.load import scan_documents
from pipeline.documents.ingest import extract_document, sniff
from pipeline.documents.ingest.layout import ExtractionError, join_lines, running_lines, table_lines
from tests.pipeline import doc_samples


@pytest.fixture(scope="module")
def edital():
    return extract_document(doc_samples.edital_pdf(), name="edital")


def test_content_decides_the_type_not_the_name():
    assert sniff(doc_samples.edital_pdf()) == "pdf"
    assert sniff(doc_samples.portaria_docx()) == "docx"
    assert sniff(doc_samples.bolsas_html()) == "html"
    assert sniff("Edital nº 1\n\nTexto.".encode("cp1252")) == "txt"
    assert sniff(b"\xd0\xcf\x11\xe0" + bytes(600)) is None  # a legacy .doc
    assert sniff(bytes(range(256)) * 8) is None


def test_pdf_two_columns_are_read_left_then_right_with_the_title_across(edital):
    text = edital.text
    assert edital.title == "Edital nº 12/2025 – Concurso Público"
    assert text.startswith("Edital nº 12/2025 – Concurso Público\n\n")
    # The left column whole before the right one: never a line of one mixed with a line of the other.
    assert text.index("Art. 1º") < text.index("Art. 2º") < text.index("Art. 3º") < text.index("Art. 4º")
    assert "exclusivamente pela internet, no portal da Prefeitura." in text  # "inter-" + "net" joined
    assert "Art. 1º Este edital rege o concurso público para o cargo de agente administrativo da Prefeitura." \
        in text.splitlines()


def test_pdf_running_header_and_page_numbers_are_dropped(edital):
    assert doc_samples.HEADER not in edital.text
    assert "Página" not in edital.text


def test_pdf_table_comes_out_as_rows_with_its_header_and_chunking_keeps_it_whole(edital):
    rows = [" | ".join(row) for row in doc_samples.TABLE]
    assert "\n".join(rows) in edital.text
    [table_chunk] = [c for c in chunk_document(edital) if "Motorista | 4" in c.text]
    assert table_chunk.text.startswith(rows[0]) and rows[-1] in table_chunk.text


def test_pdf_table_without_rules_comes_out_as_rows_too(edital):
    rows = [" | ".join(row) for row in doc_samples.SCHEDULE]
    assert "\n".join(rows) in edital.text
    assert edital.text.index("ANEXO I – CRONOGRAMA") < edital.text.index(rows[0])
    [chunk] = [c for c in chunk_document(edital) if "Prova objetiva | 20 de abril" in c.text]
    assert all(row in chunk.text for row in rows) and chunk.page == 3


def test_pdf_pages_are_kept_for_every_chunk(edital):
    assert len(edital.page_starts) == 3
    pages = {c.text.split()[0] + c.text.split()[1]: c.page for c in chunk_document(edital)
             if c.text.startswith("Art.")}
    assert edital.page_at(edital.text.index("R$ 85,00")) == 1
    assert edital.page_at(edital.text.index("Motorista")) == 2
    assert edital.page_at(edital.text.index("Diário Oficial")) == 3
    assert pages["Art.3º"] == 1 and pages["Art.6º"] == 2 and pages["Art.7º"] == 3
    assert all(c.page == edital.page_at(c.start) for c in chunk_document(edital))


def test_a_chunk_never_packs_two_pages(edital):
    for chunk in chunk_document(edital, max_chars=2000):
        assert edital.page_at(chunk.start) == edital.page_at(chunk.end - 1), chunk.text


def test_scanned_pdf_is_refused_as_needing_ocr():
    with pytest.raises(ExtractionError) as err:
        extract_document(doc_samples.scanned_pdf(), name="scan")
    assert err.value.code == "no_text" and "OCR" in str(err.value)


def test_broken_pdf_is_refused_as_broken():
    with pytest.raises(ExtractionError) as err:
        extract_document(doc_samples.broken_pdf(), name="broken")
    assert err.value.code == "broken" and "broken PDF" in str(err.value)


def test_docx_heading_paragraphs_and_table_in_order_without_the_page_header():
    doc = extract_document(doc_samples.portaria_docx(), name="portaria")
    assert doc.title == "Portaria nº 45/2025 — Calendário de Vacinação"
    assert "Secretaria Municipal de Saúde" not in doc.text
    assert doc.text.index("Art. 2º") < doc.text.index("Vacina | Público | Período") < doc.text.index("Art. 3º")
    assert "Influenza | Gestantes | 1º a 15 de maio" in doc.text.splitlines()
    assert doc.page_starts == ()  # Word recorded no page: no page numbers rather than wrong ones
    assert all(c.page == 0 for c in chunk_document(doc))


def test_docx_title_from_its_metadata_when_set():
    doc = extract_document(doc_samples.portaria_docx(title_in_metadata="Portaria da Vacinação 2025"), name="p")
    assert doc.title == "Portaria da Vacinação 2025"


def test_html_keeps_the_content_and_drops_navigation_sidebar_and_footer():
    doc = extract_document(doc_samples.bolsas_html(), name="bolsas")
    assert doc.title == "Edital nº 3/2025 — Bolsas de Estudo"
    for noise in ("Início", "Ouvidoria", "Você está aqui", "Links úteis", "Todos os direitos", "var menu"):
        assert noise not in doc.text, noise
    assert "abre inscrições para bolsas de estudo para estudantes da rede pública." in doc.text
    assert "Modalidade | Valor mensal\nIntegral | R$ 600,00\nParcial | R$ 300,00" in doc.text
    assert "As inscrições vão até 30 de junho de 2025.\nDúvidas:" in doc.text  # <br> stays a line break


def test_folder_scan_reads_every_format_and_reports_the_scan(tmp_path):
    (tmp_path / "edital.pdf").write_bytes(doc_samples.edital_pdf())
    (tmp_path / "portaria.DOCX").write_bytes(doc_samples.portaria_docx())
    (tmp_path / "bolsas.htm").write_bytes(doc_samples.bolsas_html())
    (tmp_path / "aviso.txt").write_text("Aviso\n\nO prazo foi prorrogado.", encoding="utf-8")
    (tmp_path / "digitalizado.pdf").write_bytes(doc_samples.scanned_pdf())
    (tmp_path / "quebrado.pdf").write_bytes(doc_samples.broken_pdf())
    scan = scan_documents(tmp_path)
    assert {d.name: d.kind for d in scan.documents} == {"edital": "pdf", "portaria": "docx", "bolsas": "html",
                                                         "aviso": "txt"}
    reasons = {s.path.name: s.reason for s in scan.skipped}
    assert "needs OCR" in reasons["digitalizado.pdf"] and "broken PDF" in reasons["quebrado.pdf"]


def test_hyphens_clitics_tables_and_running_lines():
    assert join_lines(["inscre-", "ver-se até o dia"]) == "inscrever-se até o dia"
    assert join_lines(["deverá inscrever-", "se até o dia"]) == "deverá inscrever-se até o dia"
    assert join_lines(["Rio Grande do Sul -", "Capital"]) == "Rio Grande do Sul - Capital"
    assert table_lines([["A", "B|C", None], ["1", "", None]]) == ["A | B/C", "1 | —"]
    edges = [["Prefeitura X", "Página 1 de 3"], ["Prefeitura X", "Página 2 de 3"], ["Outro", "Página 3 de 3"]]
    assert running_lines(edges) == {"prefeitura x", "página # de #"}


def test_a_long_table_is_split_by_rows_with_its_header_repeated():
    import io

    import docx

    document = docx.Document()
    document.add_heading("Tabela de Remuneração 2025", level=1)
    table = document.add_table(rows=0, cols=3)
    for row in [["Cargo", "Carga horária", "Salário"]] + [[f"Cargo {n}", "40 h", f"R$ {1000 + n},00"]
                                                            for n in range(60)]:
        for cell, value in zip(table.add_row().cells, row):
            cell.text = value
    buffer = io.BytesIO()
    document.save(buffer)
    doc = extract_document(buffer.getvalue(), name="tabela")
    pieces = [c for c in chunk_document(doc, max_chars=400) if "Cargo " in c.text]
    assert len(pieces) > 3
    assert "Cargo | Carga horária | Salário\nCargo 0 | 40 h" in pieces[0].text  # under its heading
    assert all(p.context == "Cargo | Carga horária | Salário" for p in pieces[1:])
    assert "Cargo 59 | 40 h | R$ 1059,00" in pieces[-1].text


def test_a_pdf_locked_by_a_password_is_refused_as_such():
    import io

    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, encrypt="segredo")
    c.drawString(50, 700, "Art. 1º Documento reservado.")
    c.showPage()
    c.save()
    with pytest.raises(ExtractionError) as err:
        extract_document(buffer.getvalue(), name="reservado")
    assert err.value.code == "encrypted"


def test_html_in_windows_1252_is_read_with_its_accents():
    page = doc_samples.BOLSAS_HTML.replace('<meta charset="utf-8">', '<meta charset="windows-1252">')
    doc = extract_document(page.encode("cp1252", errors="replace"), name="bolsas")
    assert doc.title == "Edital nº 3/2025 — Bolsas de Estudo"
    assert "A Secretaria de Educação abre inscrições" in doc.text
