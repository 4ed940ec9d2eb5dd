"""Loading documents: encodings, titles, subfolders, skipped files (named with the reason), no silent fallback."""

from __future__ import annotations

import hashlib
import logging

import pytest

from pipeline.documents.load import (DocumentsError, decode_bytes, load_documents, sample_corpus_dir, scan_documents,
                                title_from_name, title_from_text)
from pipeline.settings import Settings


def test_sample_corpus_is_loaded_sorted_with_titles_and_hashes(sample_documents):
    names = [doc.name for doc in sample_documents]
    assert len(sample_documents) == len(list(sample_corpus_dir().glob("*.txt"))) == 25
    assert names == sorted(names)
    assert "ATTRIBUTION" not in names  # only .txt files are documents
    doc = next(d for d in sample_documents if d.name == "HISTORIA_DA_FACOM")
    assert doc.title == "Historia da FACOM"
    assert doc.sha256 == hashlib.sha256(doc.text.encode("utf-8")).hexdigest()
    assert "UFMS" in doc.text and doc.path.name == "HISTORIA_DA_FACOM.txt"


def test_title_from_name():
    assert title_from_name("EDITAL_DE_BOLSAS_2024") == "Edital de Bolsas 2024"
    assert title_from_name("RES_APROVEITAMENTO_DE_ESTUDOS") == "RES Aproveitamento de Estudos"
    assert title_from_name("UFMS") == "UFMS"
    assert title_from_name("portaria-normativa_12") == "Portaria Normativa 12"


def test_utf8_bom_cp1252_and_latin1_are_decoded(tmp_path):
    text = "Inscrição – “prazo” até 30 de março."
    (tmp_path / "a_utf8.txt").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    (tmp_path / "b_cp1252.txt").write_bytes(text.encode("cp1252"))
    (tmp_path / "c_latin1.txt").write_bytes("Educação pública, São Paulo.".encode("latin-1"))
    docs = load_documents(tmp_path)
    assert [d.name for d in docs] == ["a_utf8", "b_cp1252", "c_latin1"]
    assert docs[0].text == text and docs[1].text == text
    assert docs[2].text == "Educação pública, São Paulo."
    assert docs[0].sha256 == docs[1].sha256  # the hash is of the text, not of the bytes


def test_line_endings_and_unicode_are_normalised(tmp_path):
    (tmp_path / "doc.txt").write_bytes("Educac\u0327a\u0303o\r\n\r\nSegundo.\rTerceiro.".encode("utf-8"))
    (doc,) = load_documents(tmp_path)
    assert doc.text == "Educação\n\nSegundo.\nTerceiro."


def test_empty_and_binary_files_are_skipped_with_a_log(tmp_path, caplog):
    (tmp_path / "empty.txt").write_text("  \n\n ", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (tmp_path / "good.txt").write_text("Um documento de verdade.", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="pipeline.documents.load"):
        docs = load_documents(tmp_path)
    assert [d.name for d in docs] == ["good"]
    assert "empty.txt: empty" in caplog.text and "binary.txt: looks binary" in caplog.text


def test_the_sample_corpus_only_when_asked_for_never_as_a_fallback(tmp_path):
    (tmp_path / "notes.md").write_text("# not a document", encoding="utf-8")
    with pytest.raises(DocumentsError) as err:  # folder without .txt
        load_documents(tmp_path)
    assert str(tmp_path) in str(err.value) and "notes.md: not a .txt, .pdf, .docx or .html file" in str(err.value)
    with pytest.raises(DocumentsError, match="does not exist"):
        load_documents(tmp_path / "missing")
    assert "UFMS" in [d.name for d in load_documents(None)]  # asked for in code
    assert Settings(DATA_DIR=tmp_path, DOCUMENTS_DIR="sample").documents_dir == sample_corpus_dir()  # by setting
    assert Settings(DATA_DIR=tmp_path, DOCUMENTS_DIR=None).documents_dir == tmp_path / "documents"


def test_documents_in_subfolders_and_with_any_extension_case_are_found(tmp_path):
    (tmp_path / "editais" / "2025").mkdir(parents=True)
    (tmp_path / "editais" / "2025" / "EDITAL.TXT").write_text("O prazo é de dez dias.", encoding="utf-8")
    (tmp_path / "Portaria.Txt").write_text("A portaria vale desde março.", encoding="utf-8")
    (tmp_path / "EDITAL.txt").write_text("Outro edital, na raiz.", encoding="utf-8")
    docs = load_documents(tmp_path)
    assert [d.name for d in docs] == ["EDITAL", "Portaria", "editais__2025__EDITAL"]
    assert docs[2].text == "O prazo é de dez dias." and docs[2].title == "Edital"


def test_same_name_twice_is_skipped_with_the_reason(tmp_path):
    (tmp_path / "EDITAL.txt").write_text("Primeiro.", encoding="utf-8")
    (tmp_path / "EDITAL.TXT").write_text("Segundo.", encoding="utf-8")
    scan = scan_documents(tmp_path)
    assert [d.name for d in scan.documents] == ["EDITAL"]
    assert [s.reason for s in scan.skipped] == [f"same document name 'EDITAL' as {scan.documents[0].path}"]


def test_symlinks_and_hidden_files_are_not_read_unless_allowed(tmp_path):
    secret = tmp_path / "outside" / ".env"
    secret.parent.mkdir()
    secret.write_text("OPENAI_API_KEY=sk-secreto-123\n", encoding="utf-8")
    outside_dir = tmp_path / "outside" / "pasta"
    outside_dir.mkdir()
    (outside_dir / "linked_folder_doc.txt").write_text("Documento de uma pasta ligada.", encoding="utf-8")
    docs = tmp_path / "docs"
    (docs / ".git").mkdir(parents=True)
    (docs / "real.txt").write_text("Um documento de verdade.", encoding="utf-8")
    (docs / "passwd.txt").symlink_to("/etc/passwd")
    (docs / "env.txt").symlink_to(secret)
    (docs / "pasta").symlink_to(outside_dir, target_is_directory=True)
    (docs / ".oculto.txt").write_text("Arquivo oculto.", encoding="utf-8")
    (docs / ".git" / "HEAD.txt").write_text("ref: refs/heads/main", encoding="utf-8")
    scan = scan_documents(docs)
    assert [d.name for d in scan.documents] == ["real"]
    assert "sk-secreto" not in "".join(d.text for d in scan.documents)
    reasons = {s.path.name: s.reason for s in scan.skipped}
    assert reasons["passwd.txt"].startswith("symbolic link") and reasons["env.txt"].startswith("symbolic link")
    assert reasons["pasta"].startswith("symbolic link")
    assert reasons[".oculto.txt"].startswith("hidden file") and reasons[".git"].startswith("hidden folder")
    allowed = scan_documents(docs, follow_symlinks=True, include_hidden=True)
    assert {d.name for d in allowed.documents} == {"real", "env", "passwd", "pasta__linked_folder_doc", ".oculto",
                                                   ".git__HEAD"}


def test_symlink_loops_end(tmp_path):
    (tmp_path / "a.txt").write_text("Texto.", encoding="utf-8")
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    scan = scan_documents(tmp_path, follow_symlinks=True)
    assert [d.name for d in scan.documents] == ["a"] and "loop" in scan.skipped[0].reason


def test_stray_nul_bytes_are_dropped_and_utf16_utf32_with_bom_are_read(tmp_path):
    text = "Edital de inscrição.\n\nAs inscrições vão até 30 de março. " * 200
    (tmp_path / "nul.txt").write_bytes(text[:300].encode("utf-8") + b"\x00" + text[300:].encode("utf-8"))
    (tmp_path / "u16le.txt").write_bytes(text.encode("utf-16"))  # with BOM, native order
    (tmp_path / "u16be.txt").write_bytes(b"\xfe\xff" + text.encode("utf-16-be"))
    (tmp_path / "u32.txt").write_bytes(text.encode("utf-32"))
    (tmp_path / "u8bom.txt").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    docs = {d.name: d for d in load_documents(tmp_path)}
    assert set(docs) == {"nul", "u16le", "u16be", "u32", "u8bom"}
    assert all(d.text == text for d in docs.values()), {n: d.text[:40] for n, d in docs.items()}
    assert decode_bytes(b"abc " * 100 + b"\x00") == ("abc " * 100, "utf-8, 1 NUL byte dropped")
    assert decode_bytes(b"\x00\x01\x00\x02" * 100) is None  # mostly NULs: binary


def test_title_comes_from_the_documents_own_heading(tmp_path):
    (tmp_path / "edital_12_2025.txt").write_text(
        "Edital nº 12/2025 — Concurso Público\n\nAs inscrições vão de 1º a 15 de março.", encoding="utf-8")
    (tmp_path / "PORTARIA_5.txt").write_text("# Portaria de Pessoal\nTexto da portaria.", encoding="utf-8")
    (tmp_path / "taxa.txt").write_text("A taxa é de R$ 100,00.\nO prazo é de dez dias.", encoding="utf-8")
    long_heading = "Regulamento " + " ".join(["geral de atividades complementares dos cursos"] * 4)
    (tmp_path / "longo.txt").write_text(long_heading + "\n\nTexto.", encoding="utf-8")
    titles = {d.name: d.title for d in load_documents(tmp_path)}
    assert titles["edital_12_2025"] == "Edital nº 12/2025 — Concurso Público"
    assert titles["PORTARIA_5"] == "Portaria de Pessoal"
    assert titles["taxa"] == "Taxa"  # the first line is a sentence: the file name
    assert len(titles["longo"]) <= 90 and titles["longo"].startswith("Regulamento geral")
    assert titles["longo"].endswith("…")
    assert title_from_text("EDITAL Nº 5, DE 3 DE MAIO DE 2025.\nTexto.") == "EDITAL Nº 5, DE 3 DE MAIO DE 2025"
    assert title_from_text("Uma linha só") is None
