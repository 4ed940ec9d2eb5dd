"""Index builds killed mid-way leave a ``versions/.build-*`` folder: the next build removes it (and no other)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from pipeline.documents.chunking import chunk_document
from pipeline.documents.load import load_documents
from pipeline.search.index import build_index
from pipeline.search.store import current_version, remove_leftover_builds


def _leftovers(root):
    versions = root / "versions"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folders = {"killed": versions / f".build-{dead.pid}-k1ll3d", "live": versions / f".build-{os.getppid()}-busy",
               "old": versions / ".build-a1b2c3", "recent": versions / ".build-d4e5f6"}
    for folder in folders.values():
        folder.mkdir(parents=True)
        (folder / "vectors.npy").write_bytes(b"half written")
    stale = time.time() - 7 * 3600
    os.utime(folders["old"], (stale, stale))
    return folders


def test_leftover_build_folders_of_dead_processes_are_removed(tmp_path):
    folders = _leftovers(tmp_path)
    assert sorted(remove_leftover_builds(tmp_path)) == sorted([folders["killed"].name, folders["old"].name])
    assert folders["live"].is_dir() and folders["recent"].is_dir()  # another build may be writing them
    assert remove_leftover_builds(tmp_path / "nowhere") == []


def test_the_next_build_cleans_them(tmp_path):
    folders = _leftovers(tmp_path)
    doc = next(d for d in load_documents(None) if d.name == "MEC")
    info = build_index(chunk_document(doc)[:2], qa_records=[], embedding_model="embedded", index_root=tmp_path)
    assert current_version(tmp_path) == info.version
    names = {p.name for p in (tmp_path / "versions").iterdir()}
    assert names == {info.version, folders["live"].name, folders["recent"].name}


def test_a_question_left_out_of_the_index_is_named_with_the_reason(caplog):
    import logging

    from pipeline.search.index import _question_entries

    doc = next(d for d in load_documents(None) if d.name == "MEC")
    chunks = chunk_document(doc)[:1]
    records = [{"id": "h9", "question": "Quando foi fundado o MEC?", "document": "MEC", "span": [10**6, 10**6 + 5]}]
    with caplog.at_level(logging.WARNING, logger="pipeline.search.index"):
        entries, unplaced = _question_entries(records, chunks)
    assert (entries, unplaced) == ([], 1)
    assert "question h9 (document 'MEC') left out of the index: its chunk_id and span match no passage" in caplog.text
