"""The documents folder as a library: safe names, checks before anything is written, versions, removal."""

from __future__ import annotations

import pytest

from pipeline.documents.ingest.layout import ExtractionError
from pipeline.loop.library import LibraryError, find_document, list_documents, safe_stem, store_document
from pipeline.settings import Settings
from tests.pipeline import doc_samples


@pytest.fixture
def settings(tmp_path) -> Settings:
    (tmp_path / "docs").mkdir()
    return Settings(DATA_DIR=tmp_path / "data", DOCUMENTS_DIR=tmp_path / "docs", DOCUMENT_MAX_MB=1)


def files(settings) -> list[str]:
    return sorted(p.name for p in settings.documents_dir.iterdir())


def test_safe_names_keep_letters_digits_and_dashes_only():
    assert safe_stem("Edital nº 12-2025 (final).PDF") == "Edital_no_12-2025_final"
    assert safe_stem("../../etc/passwd") == "passwd"
    assert safe_stem("C:\\Users\\ana\\Portaria Saúde.docx") == "Portaria_Saude"
    assert safe_stem("???.pdf") == "documento"
    assert len(safe_stem("a" * 300 + ".pdf")) == 80


def test_the_type_comes_from_the_content_whatever_the_name_says(settings):
    report = store_document(settings, doc_samples.portaria_docx(), "portaria.pdf")
    assert (report.kind, report.file) == ("docx", "portaria.docx")
    report = store_document(settings, doc_samples.bolsas_html(), "bolsas")
    assert (report.kind, report.file, report.title) == ("html", "bolsas.html", "Edital nº 3/2025 — Bolsas de Estudo")
    assert files(settings) == ["bolsas.html", "portaria.docx"]


@pytest.mark.parametrize(("data", "code"), [
    (doc_samples.scanned_pdf, "no_text"), (doc_samples.broken_pdf, "broken"),
    (lambda: bytes(range(256)) * 10, "unsupported"), (lambda: b"   \n", "empty"),
    (lambda: b"%PDF-1.7\n" + b"0" * (1024 * 1024 + 1), "too_large"),
])
def test_a_file_that_cannot_be_a_document_leaves_the_folder_untouched(settings, data, code):
    with pytest.raises(ExtractionError) as err:
        store_document(settings, data(), "arquivo.pdf")
    assert err.value.code == code
    assert files(settings) == []


def test_the_same_name_and_type_is_a_new_version_another_type_gets_a_number(settings):
    (settings.documents_dir / "edital.txt").write_text("Edital antigo\n\nTexto.", encoding="utf-8")
    pdf = doc_samples.edital_pdf()
    first = store_document(settings, pdf, "edital.pdf")
    assert (first.file, first.replaced) == ("edital-2.pdf", False)  # edital.txt stays its own document
    again = store_document(settings, pdf, "edital.pdf")
    assert (again.file, again.unchanged, again.replaced) == ("edital-2.pdf", True, False)  # no third copy
    assert files(settings) == ["edital-2.pdf", "edital.txt"]
    newer = store_document(settings, doc_samples.edital_pdf() + b"\n", "edital.pdf")
    assert (newer.file, newer.unchanged, newer.replaced) == ("edital-2.pdf", False, True)
    text = store_document(settings, "Edital novo\n\nOutro texto.".encode(), "edital.txt")
    assert (text.file, text.replaced) == ("edital.txt", True)
    assert (settings.documents_dir / "edital.txt").read_text(encoding="utf-8").startswith("Edital novo")
    assert not [p for p in settings.documents_dir.iterdir() if p.name.startswith(".")]  # no temp file left


def test_listing_gives_files_types_pages_and_dates_and_finds_by_name_file_or_title(settings):
    store_document(settings, doc_samples.edital_pdf(), "edital.pdf")
    store_document(settings, doc_samples.portaria_docx(), "portaria.docx")
    entries = {e.name: e for e in list_documents(settings)}
    assert (entries["edital"].kind, entries["edital"].pages, entries["edital"].file) == ("pdf", 3, "edital.pdf")
    assert (entries["portaria"].kind, entries["portaria"].pages) == ("docx", 0)
    assert entries["edital"].modified.year >= 2025
    assert find_document(settings, "EDITAL.PDF").name == "edital"
    assert find_document(settings, "portaria nº 45/2025 — calendário de vacinação").name == "portaria"
    with pytest.raises(LibraryError) as err:
        find_document(settings, "nada")
    assert err.value.code == "not_found"


def test_the_bundled_sample_corpus_is_read_only(tmp_path):
    sample = Settings(DATA_DIR=tmp_path / "data", DOCUMENTS_DIR="sample")
    with pytest.raises(LibraryError) as err:
        store_document(sample, doc_samples.edital_pdf(), "edital.pdf")
    assert err.value.code == "read_only"
