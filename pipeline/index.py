"""Build the dense search index: chunks and generated questions embedded into one FAISS inner-product index.

Every row of the index is an *entry*: a chunk itself (``kind="chunk"``, embedded with its title) or a question
that one of the QA records asks about a chunk (``kind="question"``); a search hit on a question leads to its
chunk. A build writes ``index_root/versions/<version>/`` (``faiss.index``, ``chunks.jsonl``, ``entries.jsonl``,
``meta.json``; no pickle) into a temporary folder renamed into place, then replaces ``index_root/CURRENT``
atomically, so a reader never sees half an index.

Example::

    >>> from pathlib import Path
    >>> from pipeline.documents import load_documents
    >>> from pipeline.chunking import chunk_document
    >>> from pipeline.index import build_index, current_version
    >>> chunks = [c for d in load_documents(None) for c in chunk_document(d)]
    >>> info = build_index(chunks, qa_records=[], embedding_model="embedded", index_root=Path("/tmp/oraculo_ix"))
    >>> current_version(Path("/tmp/oraculo_ix")) == info.version
    True
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from pipeline.chunking import Chunk
from pipeline.qa import atomic_write_text

logger = logging.getLogger(__name__)

CURRENT_FILE = "CURRENT"
VERSIONS_DIR = "versions"
INDEX_FILE = "faiss.index"
CHUNKS_FILE = "chunks.jsonl"
ENTRIES_FILE = "entries.jsonl"
META_FILE = "meta.json"
FORMAT = 1  # bump when the files' layout changes


@dataclass(frozen=True)
class IndexInfo:
    version: str
    path: Path
    n_chunks: int
    n_questions: int


def chunk_embedding_text(chunk: Chunk) -> str:
    """What is embedded for a chunk: its title (and section) give the model the topic of the passage."""
    heading = f"{chunk.title} — {chunk.section}" if chunk.section else chunk.title
    return f"{heading}\n{chunk.text}"


def _record_chunk_id(record: dict, by_id: dict[str, Chunk], by_doc: dict[str, list[Chunk]]) -> str | None:
    """The chunk a QA record points to: its ``chunk_id``, else the chunk of its document overlapping its span."""
    chunk_id = record.get("chunk_id")
    if isinstance(chunk_id, str) and chunk_id in by_id:
        return chunk_id
    span = record.get("span")
    if not (isinstance(span, list) and len(span) == 2):
        return None
    best, best_overlap = None, 0
    for chunk in by_doc.get(record.get("document", ""), []):
        overlap = min(chunk.end, span[1]) - max(chunk.start, span[0])
        if overlap > best_overlap:
            best, best_overlap = chunk.id, overlap
    return best


def _question_entries(qa_records: list[dict], chunks: list[Chunk]) -> tuple[list[dict], int]:
    by_id = {c.id: c for c in chunks}
    by_doc: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        by_doc.setdefault(chunk.document, []).append(chunk)
    entries, seen, unplaced = [], set(), 0
    for record in qa_records:
        question = " ".join(str(record.get("question", "")).split())
        chunk_id = _record_chunk_id(record, by_id, by_doc)
        if not question or chunk_id is None:
            unplaced += 1
            continue
        if (question.lower(), chunk_id) in seen:
            continue
        seen.add((question.lower(), chunk_id))
        entries.append({"kind": "question", "chunk_id": chunk_id, "text": question,
                        "qa_id": record.get("id"), "generator": record.get("generator")})
    return entries, unplaced


def _content_hash(embedding_model: str, entries: list[dict], chunks: list[Chunk]) -> str:
    digest = hashlib.sha256(f"{FORMAT}|{embedding_model}".encode())
    for chunk in chunks:
        digest.update(f"\0{chunk.id}\0{chunk.section}\0{chunk.text}".encode())
    for entry in entries:
        digest.update(f"\0{entry['kind']}\0{entry['chunk_id']}\0{entry['text']}".encode())
    return digest.hexdigest()


def _write_jsonl(path: Path, rows) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def version_dir(index_root: Path, version: str) -> Path:
    return Path(index_root) / VERSIONS_DIR / version


def current_version(index_root: Path) -> str | None:
    """The version named in ``index_root/CURRENT``, or ``None`` when there is no usable index."""
    try:
        version = (Path(index_root) / CURRENT_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not version or not (version_dir(index_root, version) / META_FILE).is_file():
        if version:
            logger.warning("CURRENT names %s but %s has no such index", version, index_root)
        return None
    return version


def _prune(index_root: Path, *, keep: int, protect: set[str]) -> None:
    versions = sorted((p for p in (Path(index_root) / VERSIONS_DIR).iterdir()
                       if p.is_dir() and (p / META_FILE).is_file()),
                      key=lambda p: ((p / META_FILE).stat().st_mtime_ns, p.name))  # oldest first
    for old in versions[:-keep] if keep > 0 else []:
        if old.name not in protect:
            shutil.rmtree(old, ignore_errors=True)
            logger.info("old index version removed: %s", old.name)


def build_index(chunks: list[Chunk], *, qa_records: list[dict], embedding_model: str, index_root: Path,
                keep: int = 3) -> IndexInfo:
    """Embed ``chunks`` and the questions of ``qa_records``, write a new version and make it current.

    ``keep`` old versions (the new one included) stay on disk for rollback; older ones are removed.
    """
    import faiss

    from pipeline.embeddings import encode, load_embedder

    if not chunks:
        raise ValueError("cannot build an index without chunks")
    if len({c.id for c in chunks}) != len(chunks):
        raise ValueError("chunk ids must be unique")
    started = time.perf_counter()
    index_root = Path(index_root)
    questions, unplaced = _question_entries(qa_records, chunks)
    entries = [{"kind": "chunk", "chunk_id": c.id, "text": chunk_embedding_text(c)} for c in chunks] + questions
    content_hash = _content_hash(embedding_model, entries, chunks)

    embedder = load_embedder(embedding_model)
    vectors = np.concatenate([encode(embedder, [e["text"] for e in entries[:len(chunks)]], kind="document"),
                              encode(embedder, [e["text"] for e in questions], kind="query")])
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)

    versions = index_root / VERSIONS_DIR
    versions.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc)
    version = f"{stamp:%Y%m%dT%H%M%SZ}-{content_hash[:8]}"
    suffix = 1
    while (versions / version).exists():
        suffix += 1
        version = f"{stamp:%Y%m%dT%H%M%SZ}-{content_hash[:8]}-{suffix}"
    meta = {"format": FORMAT, "version": version, "created_at": stamp.isoformat(timespec="seconds"),
            "embedding_model": embedding_model, "dim": int(vectors.shape[1]), "metric": "inner_product",
            "n_chunks": len(chunks), "n_questions": len(questions), "n_entries": len(entries),
            "unplaced_questions": unplaced, "content_hash": content_hash,
            "documents": sorted({c.document for c in chunks})}

    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=versions))
    try:
        faiss.serialize_index(index).tofile(tmp / INDEX_FILE)  # bytes written by Python: any path works
        _write_jsonl(tmp / CHUNKS_FILE, (asdict(c) for c in chunks))
        _write_jsonl(tmp / ENTRIES_FILE, ({"row": i, **e} for i, e in enumerate(entries)))
        (tmp / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.rename(versions / version)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_text(index_root / CURRENT_FILE, version + "\n")
    _prune(index_root, keep=keep, protect={version})
    logger.info("index %s built: %d chunks, %d questions (%d unplaced) in %.1fs", version, len(chunks),
                len(questions), unplaced, time.perf_counter() - started)
    return IndexInfo(version=version, path=versions / version, n_chunks=len(chunks), n_questions=len(questions))
