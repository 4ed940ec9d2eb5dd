"""Index building on the sample corpus with the real embedder and FAISS."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.chunking import chunk_document
from pipeline.documents import load_documents
from pipeline.index import CURRENT_FILE, build_index, current_version


def test_sample_index_files_and_counts(sample_index, sample_chunks, sample_qa_records, session_settings):
    import faiss

    root = session_settings.index_dir
    assert current_version(root) == sample_index.version
    assert (root / CURRENT_FILE).read_text().strip() == sample_index.version
    assert sorted(p.name for p in sample_index.path.iterdir()) == ["chunks.jsonl", "entries.jsonl",
                                                                    "faiss.index", "meta.json"]
    meta = json.loads((sample_index.path / "meta.json").read_text(encoding="utf-8"))
    assert meta["embedding_model"] == "embedded" and meta["dim"] == 384
    assert meta["n_chunks"] == sample_index.n_chunks == len(sample_chunks)
    assert 0 < sample_index.n_questions <= len(sample_qa_records)
    assert meta["unplaced_questions"] == 0

    entries = [json.loads(line) for line in (sample_index.path / "entries.jsonl").open(encoding="utf-8")]
    assert [e["row"] for e in entries] == list(range(len(entries)))
    assert sum(e["kind"] == "question" for e in entries) == sample_index.n_questions
    chunk_ids = {json.loads(line)["id"] for line in (sample_index.path / "chunks.jsonl").open(encoding="utf-8")}
    assert {e["chunk_id"] for e in entries} <= chunk_ids
    index = faiss.deserialize_index(np.fromfile(sample_index.path / "faiss.index", dtype=np.uint8))
    assert index.ntotal == len(entries) and index.d == 384


def small_chunks():
    docs = [d for d in load_documents(None) if d.name in {"MEC", "MONOGRAFIA"}]
    return [c for d in docs for c in chunk_document(d)]


def test_rebuild_switches_current_and_prunes_old_versions(tmp_path):
    chunks = small_chunks()
    versions = [build_index(chunks[:n], qa_records=[], embedding_model="embedded", index_root=tmp_path,
                            keep=2).version for n in (2, 3, 4)]
    assert len(set(versions)) == 3
    assert current_version(tmp_path) == versions[-1]
    assert sorted(p.name for p in (tmp_path / "versions").iterdir()) == sorted(versions[1:])  # no temp dirs


def test_qa_records_are_placed_by_chunk_id_or_span(tmp_path):
    chunks = small_chunks()
    target = chunks[1]
    records = [
        {"question": "Pergunta pelo id?", "answer": "x", "document": target.document, "chunk_id": target.id},
        {"question": "Pergunta pelo span?", "answer": "x", "document": target.document,
         "chunk_id": "stale:0-1", "span": [target.start + 5, target.start + 20]},
        {"question": "Documento que não existe?", "answer": "x", "document": "NOPE", "span": [0, 10]},
        {"question": "Pergunta pelo id?", "answer": "x", "document": target.document, "chunk_id": target.id},
    ]
    info = build_index(chunks, qa_records=records, embedding_model="embedded", index_root=tmp_path)
    entries = [json.loads(line) for line in (info.path / "entries.jsonl").open(encoding="utf-8")]
    questions = [(e["text"], e["chunk_id"]) for e in entries if e["kind"] == "question"]
    assert questions == [("Pergunta pelo id?", target.id), ("Pergunta pelo span?", target.id)]
    assert json.loads((info.path / "meta.json").read_text())["unplaced_questions"] == 1


def test_current_version_is_none_without_a_usable_index(tmp_path):
    assert current_version(tmp_path / "nothing") is None
    (tmp_path / CURRENT_FILE).write_text("\n")
    assert current_version(tmp_path) is None
    (tmp_path / CURRENT_FILE).write_text("20240101T000000Z-deadbeef\n")  # names a version that is not there
    assert current_version(tmp_path) is None


def test_no_chunks_is_an_error(tmp_path):
    with pytest.raises(ValueError):
        build_index([], qa_records=[], embedding_model="embedded", index_root=tmp_path)
    assert not Path(tmp_path / CURRENT_FILE).exists()
