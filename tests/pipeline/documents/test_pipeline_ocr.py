"""OCR of scanned PDF pages (DOCUMENTS_OCR): off, a scan is refused as needing OCR; on, Tesseract reads it.

The tests that run Tesseract need it installed with its Portuguese model (``apt-get install tesseract-ocr
tesseract-ocr-por``) and are skipped, saying so, where it is not.
"""

from __future__ import annotations

import pytest

from pipeline.documents.ingest import extract_document, ocr
from pipeline.documents.ingest.layout import ExtractionError
from pipeline.loop.library import store_document
from pipeline.settings import Settings
from tests.pipeline import doc_samples

needs_tesseract = pytest.mark.skipif(ocr.ocr_missing() is not None, reason=f"OCR unavailable: {ocr.ocr_missing()}")


@needs_tesseract
def test_a_scanned_page_is_read_by_tesseract_with_its_accents_and_structure():
    doc = extract_document(doc_samples.scanned_pdf(), name="scan", ocr=True)
    assert doc.title == "EDITAL Nº 7/2025 - CURSO DE INFORMÁTICA"
    assert "Art. 1º A taxa de inscrição é de R$ 50,00." in doc.text.splitlines()
    assert "Art. 2º As aulas começam em 3 de março." in doc.text.splitlines()
    assert doc.page_starts == (0,)


@needs_tesseract
def test_an_upload_says_which_pages_were_read_by_ocr(tmp_path):
    (tmp_path / "docs").mkdir()
    settings = Settings(DATA_DIR=tmp_path / "data", DOCUMENTS_DIR=tmp_path / "docs", DOCUMENTS_OCR=True)
    report = store_document(settings, doc_samples.scanned_pdf(), "digitalizado.pdf")
    assert (report.file, report.ocr_pages, report.pages_without_text) == ("digitalizado.pdf", [1], [])


def test_with_ocr_asked_for_but_not_installed_the_scan_is_refused_naming_what_is_missing(monkeypatch):
    monkeypatch.setattr(ocr, "ocr_missing", lambda: "the tesseract program is not installed")
    with pytest.raises(ExtractionError) as err:
        extract_document(doc_samples.scanned_pdf(), name="scan", ocr=True)
    assert err.value.code == "no_text"
    assert str(err.value).endswith("needs OCR (the tesseract program is not installed)")


def test_ocr_is_off_by_default():
    assert Settings().documents_ocr is False
    with pytest.raises(ExtractionError) as err:
        extract_document(doc_samples.scanned_pdf(), name="scan")
    assert err.value.code == "no_text"
