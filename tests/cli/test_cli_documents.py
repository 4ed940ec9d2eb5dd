"""`oraculo generate-qa` and `oraculo index` read PDF, DOCX and HTML from the documents folder; a scan is
skipped with the reason; the index keeps each chunk's page."""

from __future__ import annotations

import json

from bot.cli import main
from tests.pipeline import doc_samples


def test_generate_qa_and_index_read_every_format_and_name_the_scan(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "edital.pdf").write_bytes(doc_samples.edital_pdf())
    (docs / "portaria.docx").write_bytes(doc_samples.portaria_docx())
    (docs / "bolsas.html").write_bytes(doc_samples.bolsas_html())
    (docs / "digitalizado.pdf").write_bytes(doc_samples.scanned_pdf())
    monkeypatch.setenv("DOCUMENTS_DIR", str(docs))

    assert main(["generate-qa"]) == 0
    out = capsys.readouterr()
    assert "digitalizado.pdf (no text layer (a scanned document?): needs OCR)" in out.out + out.err
    qa = tmp_path / "data" / "data_qa"
    assert {p.stem for p in qa.glob("*.jsonl") if not p.stem.endswith(".invalid")} >= {"edital", "portaria", "bolsas"}

    assert main(["index"]) == 0
    [chunks_file] = (tmp_path / "data" / "index").rglob("chunks.jsonl")
    chunks = [json.loads(line) for line in chunks_file.read_text(encoding="utf-8").splitlines()]
    assert {c["document"] for c in chunks} == {"edital", "portaria", "bolsas"}
    pages = {c["page"] for c in chunks if c["document"] == "edital"}
    assert pages == {1, 2, 3}
    assert all(c["page"] == 0 for c in chunks if c["document"] != "edital")
    [fee] = [c for c in chunks if "R$ 85,00" in c["text"]]
    assert (fee["title"], fee["page"]) == ("Edital nº 12/2025 – Concurso Público", 1)
