"""Loading documents: encodings, skipped files, the sample-corpus fallback."""

from __future__ import annotations

import hashlib
import logging

from pipeline.documents import load_documents, sample_corpus_dir, title_from_name


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
    with caplog.at_level(logging.WARNING, logger="pipeline.documents"):
        docs = load_documents(tmp_path)
    assert [d.name for d in docs] == ["good"]
    assert "empty.txt: empty" in caplog.text and "binary.txt: looks binary" in caplog.text


def test_falls_back_to_the_sample_corpus(tmp_path):
    (tmp_path / "notes.md").write_text("# not a document", encoding="utf-8")
    sample = [d.name for d in load_documents(None)]
    assert [d.name for d in load_documents(tmp_path)] == sample  # folder without .txt
    assert [d.name for d in load_documents(tmp_path / "missing")] == sample
    assert "UFMS" in sample
