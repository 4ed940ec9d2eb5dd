"""Index building on the sample corpus with the real embedder and FAISS."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.documents.chunking import chunk_document
from pipeline.documents.load import load_documents
from pipeline.search.index import build_index
from pipeline.search.store import CURRENT_FILE, current_version
from pipeline.search.retrieve import Retriever


def test_sample_index_files_and_counts(sample_index, sample_chunks, sample_qa_records, session_settings):
    import faiss

    root = session_settings.index_dir
    assert current_version(root) == sample_index.version
    assert (root / CURRENT_FILE).read_text().strip() == sample_index.version
    assert sorted(p.name for p in sample_index.path.iterdir()) == ["chunks.jsonl", "entries.jsonl", "faiss.index",
                                                                    "lexical", "meta.json", "vectors.npy"]
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
    vectors = np.load(sample_index.path / "vectors.npy")
    assert vectors.shape == (len(entries), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert meta["dense_index"] == "flat" and meta["n_embedded"] <= len(entries)


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


def test_rebuild_embeds_only_what_changed(tmp_path):
    from pipeline.documents.text import Document

    chunks = small_chunks()
    first = build_index(chunks, qa_records=[], embedding_model="embedded", index_root=tmp_path)
    assert first.n_embedded == len(chunks)
    same = build_index(chunks, qa_records=[], embedding_model="embedded", index_root=tmp_path)
    assert same.n_embedded == 0
    # One document edited: only its chunks are embedded again; the others keep their exact vectors.
    mec = next(d for d in load_documents(None) if d.name == "MEC")
    edited = Document(name=mec.name, title=mec.title, text=mec.text.replace("Ministério", "Ministerio", 1),
                      path=mec.path, sha256="changed")
    new_chunks = chunk_document(edited) + [c for c in chunks if c.document != "MEC"]
    changed = {c.text for c in chunk_document(edited)} - {c.text for c in chunks}
    third = build_index(new_chunks, qa_records=[], embedding_model="embedded", index_root=tmp_path)
    assert third.n_embedded == len(changed) >= 1
    old = dict(zip((json.loads(x)["chunk_id"] for x in (first.path / "entries.jsonl").open()),
                   np.load(first.path / "vectors.npy")))
    new = dict(zip((json.loads(x)["chunk_id"] for x in (third.path / "entries.jsonl").open()),
                   np.load(third.path / "vectors.npy")))
    kept = [c.id for c in chunks if c.document != "MEC"]
    assert all(np.array_equal(old[i], new[i]) for i in kept)


def test_large_corpora_get_an_approximate_dense_index(tmp_path):
    import faiss

    chunks = small_chunks()
    info = build_index(chunks, qa_records=[], embedding_model="embedded", index_root=tmp_path, ann_threshold=2)
    index = faiss.deserialize_index(np.fromfile(info.path / "faiss.index", dtype=np.uint8))
    assert json.loads((info.path / "meta.json").read_text())["dense_index"] == "ivf"
    assert isinstance(index, faiss.IndexIVFFlat) and index.ntotal == len(chunks)
    # the next build reuses the trained lists: same centroids, the new vectors added
    again = build_index(chunks[:-1], qa_records=[], embedding_model="embedded", index_root=tmp_path, ann_threshold=2)
    index2 = faiss.deserialize_index(np.fromfile(again.path / "faiss.index", dtype=np.uint8))
    centroids = [faiss.downcast_index(ix.quantizer).reconstruct_n(0, ix.nlist) for ix in (index, index2)]
    assert index2.ntotal == len(chunks) - 1 and np.array_equal(*centroids)
    retriever = Retriever.load(tmp_path, embedding_model="embedded")
    assert retriever.search("ministério da educação", k=3)[0].chunk.document == "MEC"


def test_a_crash_mid_build_leaves_the_old_version_serving(tmp_path, monkeypatch):
    import pipeline.search.index as index_module

    chunks = small_chunks()
    first = build_index(chunks, qa_records=[], embedding_model="embedded", index_root=tmp_path)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(index_module, "_write_jsonl", crash)
    with pytest.raises(OSError, match="disk full"):
        build_index(chunks[:2], qa_records=[], embedding_model="embedded", index_root=tmp_path)
    assert current_version(tmp_path) == first.version
    assert [p.name for p in (tmp_path / "versions").iterdir()] == [first.version]  # no half-built folder left


def test_index_job_records_the_version_in_the_database(tmp_path):
    from pipeline.loop.jobs import index_job
    from pipeline.settings import Settings
    from storage import repository as repo
    from storage.db import Database

    docs = tmp_path / "docs"
    docs.mkdir()
    mec = next(d for d in load_documents(None) if d.name == "MEC")
    (docs / "MEC.txt").write_text(mec.text, encoding="utf-8")
    settings = Settings(DATA_DIR=tmp_path / "data")
    info = index_job(settings, input_dir=docs)
    database = Database(settings.database_url)
    try:
        with database.session() as session:
            row = repo.current_index_version(session)
            assert row.version == info.version == current_version(settings.index_dir)
            assert row.n_chunks == info.n_chunks and row.meta["dense_index"] == "flat"
    finally:
        database.dispose()


def test_template_questions_are_indexed_only_when_asked_for():
    from pipeline.search.index import questions_to_index

    records = [{"id": "o", "generator": "offline"}, {"id": "f", "generator": "feedback"},
               {"id": "h", "generator": "human"}, {"id": "l", "generator": "openai:qwen"}, {"id": "x"}]
    assert [r["id"] for r in questions_to_index(records, generated=False)] == ["f", "h", "l", "x"]
    assert questions_to_index(records, generated=True) == records


def test_the_index_jobs_leave_template_questions_out_by_default(tmp_path, sample_chunks):
    from pipeline.serving.promote import build_candidate_index
    from pipeline.settings import Settings

    chunk = sample_chunks[0]
    records = [{"id": "t", "question": "O que é a UFMS?", "answer": chunk.text[:20], "chunk_id": chunk.id,
                "document": chunk.document, "generator": "offline"},
               {"id": "v", "question": "Onde fica a UFMS?", "answer": chunk.text[:20], "chunk_id": chunk.id,
                "document": chunk.document, "generator": "feedback"}]
    default = build_candidate_index(Settings(DATA_DIR=tmp_path / "a"), sample_chunks[:3], records)
    assert default.n_questions == 1  # the 👍's question, not the template one
    both = build_candidate_index(Settings(DATA_DIR=tmp_path / "b", INDEX_GENERATED_QUESTIONS=True),
                                 sample_chunks[:3], records)
    assert both.n_questions == 2


def test_vectors_of_another_precision_are_never_reused(tmp_path):
    chunks = small_chunks()
    first = build_index(chunks, qa_records=[], embedding_model="embedded", index_root=tmp_path,
                        embedding_dtype="int8")
    assert json.loads((first.path / "meta.json").read_text())["embedding_identity"] == "e5-small-enpt@int8"
    other = build_index(chunks, qa_records=[], embedding_model="embedded", index_root=tmp_path,
                        embedding_dtype="float32")
    assert other.n_embedded == len(chunks)  # float32 vectors computed anew, not mixed with int8 ones
    assert json.loads((other.path / "meta.json").read_text())["embedding_identity"] == "e5-small-enpt"
