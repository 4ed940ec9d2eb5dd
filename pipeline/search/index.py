"""Build the hybrid search index: dense (FAISS) and lexical (Portuguese BM25) over the same entries.

Every row of the index is an *entry*: a chunk itself (``kind="chunk"``, with its title and section path) or a
question that a QA record (generated, or validated by a 👍) asks about a chunk (``kind="question"``); a hit on a
question leads to its chunk. A build writes ``index_root/versions/<version>/`` (``faiss.index``, ``vectors.npy``,
``lexical/``, ``chunks.jsonl``, ``entries.jsonl``, ``meta.json``; no pickle) into a temporary folder renamed
into place, then replaces ``index_root/CURRENT`` atomically: a reader never sees half an index, and a crash
mid-build leaves the old version serving (the layout, the versions and ``CURRENT``: :mod:`pipeline.search.store`).

Incremental: an entry whose text (and model) is unchanged since the current version keeps its vector, so only
the documents whose content changed are embedded again. Exact search (``IndexFlatIP``) up to ``ann_threshold``
entries, an IVF index above it (its trained lists reused by the next build).

Example::

    >>> from pathlib import Path
    >>> from pipeline.documents.load import load_documents
    >>> from pipeline.documents.chunking import chunk_document
    >>> from pipeline.search.index import build_index
    >>> from pipeline.search.store import current_version
    >>> chunks = [c for d in load_documents(None) for c in chunk_document(d)]
    >>> info = build_index(chunks, qa_records=[], embedding_model="embedded", index_root=Path("/tmp/oraculo_ix"))
    >>> current_version(Path("/tmp/oraculo_ix")) == info.version
    True
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from pipeline.core.files import atomic_write_text
from pipeline.documents.chunking import Chunk
from pipeline.search.embeddings import (DTYPES, embedding_dimension, encode, load_embedder, model_identity,
                                        resolve_dtype)
from pipeline.search.lexical import LexicalIndex
from pipeline.search.store import (BUILD_PREFIX, CHUNKS_FILE, CURRENT_FILE, ENTRIES_FILE, FORMAT, INDEX_FILE,
                                   LEXICAL_DIR, META_FILE, VECTORS_FILE, VERSIONS_DIR, load_previous_version,
                                   prune_versions, remove_leftover_builds, reusable_dense_index, reusable_tokens,
                                   reusable_vectors)
from storage.repository import record_index_version

logger = logging.getLogger(__name__)

# Above this many entries the dense index is approximate (IVF); exact search costs ~8 ms at 50k on 2 cores.
ANN_THRESHOLD = 20_000
# BM25 parameters, tuned on half of FaQuAD's articles (scripts/bench_retrieval.py).
BM25_K1 = 1.2
BM25_B = 0.75


@dataclass(frozen=True)
class IndexInfo:
    version: str
    path: Path
    n_chunks: int
    n_questions: int
    n_embedded: int = 0  # entries whose vector was computed (not reused from the previous version)
    build_s: float = 0.0


def chunk_embedding_text(chunk: Chunk) -> str:
    """What is indexed for a chunk: its title (and section path) give the topic of the passage."""
    heading = f"{chunk.title} — {chunk.section}" if chunk.section else chunk.title
    context = getattr(chunk, "context", "")  # a split table's header
    return f"{heading}\n{context}\n{chunk.text}" if context else f"{heading}\n{chunk.text}"


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


OFFLINE_GENERATOR = "offline"  # pipeline.qa.generate.OfflineQAGenerator.name: template questions


def questions_to_index(qa_records: list[dict], *, generated: bool) -> list[dict]:
    """The QA records whose questions go into the index: all of them with ``generated``, else all but the offline
    generator's template questions (Settings.index_generated_questions)."""
    return [r for r in qa_records if generated or r.get("generator") != OFFLINE_GENERATOR]


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
            logger.warning("question %s (document %r) left out of the index: %s",
                           record.get("id") or repr(question[:60]), record.get("document"),
                           "no question" if not question else
                           "its chunk_id and span match no passage of the documents indexed")
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
        digest.update(f"\0{chunk.id}\0{chunk.section}\0{chunk.context}\0{chunk.text}".encode())
        if chunk.section_title:  # not indexed, but kept with the chunk for its citations
            digest.update(f"\0{chunk.section_title}".encode())
    for entry in entries:
        digest.update(f"\0{entry['kind']}\0{entry['chunk_id']}\0{entry['text']}".encode())
    return digest.hexdigest()


def _write_jsonl(path: Path, rows) -> None:
    encode = json.JSONEncoder(ensure_ascii=False).encode  # one encoder: json.dumps builds one per call
    path.write_text("".join(encode(row) + "\n" for row in rows), encoding="utf-8")


def embedding_identity(embedding_model: str, embedding_dtype: str = "auto") -> str:
    """The model as far as its vectors are concerned: what the name stands for (``"embedded"`` ->
    ``"e5-small-enpt"``, see :func:`pipeline.search.embeddings.model_identity`), plus the precision when not float32
    (int8 vectors differ from float32 ones enough that the two must never be mixed in one index)."""
    dtype = resolve_dtype(embedding_dtype, embedding_model)
    model = model_identity(embedding_model)
    return model if dtype == "float32" else f"{model}@{dtype}"


def identity_model(identity: str) -> str:
    """The model part of an :func:`embedding_identity` (its precision suffix removed)."""
    model, _, dtype = identity.rpartition("@")
    return model if model and dtype in DTYPES else identity


def entry_key(embedding_model: str, kind: str, text: str) -> str:
    """Cache key of an entry's vector: the same text embedded the same way by the same model
    (``embedding_model`` is an :func:`embedding_identity`)."""
    return hashlib.sha256(f"{embedding_model}\0{kind}\0{text}".encode()).hexdigest()[:32]


def embed_entries(embedder, entries: list[dict], cached: dict[str, np.ndarray]) -> tuple[np.ndarray, int]:
    """Vectors of ``entries`` (taken from ``cached`` by key when present); returns them and how many were new.

    Each distinct text is embedded once; ``encode`` sorts its batches by length (little padding).
    """
    dim = embedding_dimension(embedder)
    vectors = np.zeros((len(entries), dim), dtype=np.float32)
    todo: dict[tuple[str, str], list[int]] = {}
    for row, entry in enumerate(entries):
        hit = cached.get(entry["key"])
        if hit is not None:
            vectors[row] = hit
        else:
            todo.setdefault(("document" if entry["kind"] == "chunk" else "query", entry["text"]), []).append(row)
    for kind in ("document", "query"):
        texts = [text for k, text in todo if k == kind]
        for text, vector in zip(texts, encode(embedder, texts, kind=kind)):
            vectors[todo[(kind, text)]] = vector
    return vectors, len(todo)


def _dense_index(vectors: np.ndarray, *, ann_threshold: int, previous=None):
    """Exact ``IndexFlatIP`` up to ``ann_threshold`` rows; above it an inverted-file index (IVF, about sqrt(n)
    lists), whose trained coarse quantizer is reused from ``previous`` when it fits, so an incremental rebuild
    only re-adds the vectors (no k-means)."""
    import faiss

    n, dim = vectors.shape
    if n <= ann_threshold:
        index = faiss.IndexFlatIP(dim)
        index.add(vectors)
        return index
    nlist = max(1, int(math.sqrt(n)))
    if previous is not None and isinstance(previous, faiss.IndexIVFFlat) and previous.d == dim \
            and nlist / 2 <= previous.nlist <= nlist * 2:
        index = faiss.clone_index(previous)
        index.reset()  # drops the vectors, keeps the trained lists
    else:
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = vectors[np.random.default_rng(0).permutation(n)[:64 * nlist]]
        index.train(sample)
    index.add(vectors)
    return index


def _vectors_and_indexes(entries: list[dict], index_root: Path, *, embedding_model: str, embedding_dtype: str,
                         identity: str, vector_cache: dict[str, np.ndarray] | None, ann_threshold: int,
                         bm25_k1: float, bm25_b: float):
    """Vectors of ``entries`` (reusing the current version's and ``vector_cache``), the dense and the lexical
    index over them; returns ``(vectors, n_embedded, embed_s, dense_index, lexical)``."""
    embedder = load_embedder(embedding_model, dtype=embedding_dtype)
    previous_version = load_previous_version(index_root)
    cached = reusable_vectors(previous_version, identity, embedding_dimension(embedder))
    if vector_cache:
        cached = {**cached, **vector_cache}
    embed_started = time.perf_counter()
    vectors, n_embedded = embed_entries(embedder, entries, cached)
    embed_s = time.perf_counter() - embed_started
    previous = reusable_dense_index(index_root) if len(entries) > ann_threshold else None
    index = _dense_index(vectors, ann_threshold=ann_threshold, previous=previous)
    lexical = LexicalIndex.build([e["text"] for e in entries], k1=bm25_k1, b=bm25_b,
                                 known_tokens=reusable_tokens(previous_version))
    return vectors, n_embedded, embed_s, index, lexical


def _new_version(versions: Path, content_hash: str) -> tuple[datetime, str]:
    """The creation time and a version name not yet taken in ``versions``."""
    stamp = datetime.now(timezone.utc)
    version = f"{stamp:%Y%m%dT%H%M%SZ}-{content_hash[:8]}"
    suffix = 1
    while (versions / version).exists():
        suffix += 1
        version = f"{stamp:%Y%m%dT%H%M%SZ}-{content_hash[:8]}-{suffix}"
    return stamp, version


def _write_version_files(folder: Path, vectors: np.ndarray, lexical: LexicalIndex, chunks: list[Chunk],
                         entries: list[dict], meta: dict, started: float) -> None:
    """Everything of a version but the dense index into ``folder``; ``meta.json`` last, with the build time."""
    np.save(folder / VECTORS_FILE, vectors)
    lexical.save(folder / LEXICAL_DIR)
    names = [f.name for f in fields(Chunk)]  # not asdict(): it deep-copies, seconds at 50k chunks
    _write_jsonl(folder / CHUNKS_FILE, ({n: getattr(c, n) for n in names} for c in chunks))
    _write_jsonl(folder / ENTRIES_FILE, ({"row": i, **e} for i, e in enumerate(entries)))
    meta["build_s"] = round(time.perf_counter() - started, 3)
    (folder / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")


def build_index(chunks: list[Chunk], *, qa_records: list[dict], embedding_model: str, index_root: Path,
                keep: int = 3, ann_threshold: int = ANN_THRESHOLD, bm25_k1: float = BM25_K1,
                bm25_b: float = BM25_B, embedding_dtype: str = "auto",
                vector_cache: dict[str, np.ndarray] | None = None) -> IndexInfo:
    """Index ``chunks`` and the questions of ``qa_records``, write a new version and make it current.

    ``keep`` old versions (the new one included) stay on disk for rollback; older ones are removed.
    ``vector_cache`` (entry key -> vector, see :func:`entry_key`) is consulted before the current version.
    """
    import faiss

    if not chunks:
        raise ValueError("cannot build an index without chunks")
    if len({c.id for c in chunks}) != len(chunks):
        raise ValueError("chunk ids must be unique")
    started = time.perf_counter()
    index_root = Path(index_root)
    questions, unplaced = _question_entries(qa_records, chunks)
    entries = [{"kind": "chunk", "chunk_id": c.id, "text": chunk_embedding_text(c)} for c in chunks] + questions
    identity = embedding_identity(embedding_model, embedding_dtype)
    for entry in entries:
        entry["key"] = entry_key(identity, entry["kind"], entry["text"])
    content_hash = _content_hash(identity, entries, chunks)
    vectors, n_embedded, embed_s, index, lexical = _vectors_and_indexes(
        entries, index_root, embedding_model=embedding_model, embedding_dtype=embedding_dtype, identity=identity,
        vector_cache=vector_cache, ann_threshold=ann_threshold, bm25_k1=bm25_k1, bm25_b=bm25_b)

    versions = index_root / VERSIONS_DIR
    versions.mkdir(parents=True, exist_ok=True)
    stamp, version = _new_version(versions, content_hash)
    meta = {"format": FORMAT, "version": version, "created_at": stamp.isoformat(timespec="seconds"),
            "embedding_model": embedding_model, "embedding_identity": identity, "dim": int(vectors.shape[1]),
            "metric": "inner_product", "dense_index": "flat" if len(entries) <= ann_threshold else "ivf",
            "n_chunks": len(chunks), "n_questions": len(questions), "n_entries": len(entries),
            "n_embedded": n_embedded, "embed_s": round(embed_s, 3),
            "unplaced_questions": unplaced, "content_hash": content_hash,
            "documents": sorted({c.document for c in chunks})}

    remove_leftover_builds(index_root)
    tmp = Path(tempfile.mkdtemp(prefix=f"{BUILD_PREFIX}{os.getpid()}-", dir=versions))
    try:
        faiss.serialize_index(index).tofile(tmp / INDEX_FILE)  # bytes written by Python: any path works
        _write_version_files(tmp, vectors, lexical, chunks, entries, meta, started)
        tmp.rename(versions / version)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_text(index_root / CURRENT_FILE, version + "\n")
    prune_versions(index_root, keep=keep, protect={version})
    logger.info("index %s built: %d chunks, %d questions (%d unplaced), %d entries embedded, in %.1fs", version,
                len(chunks), len(questions), unplaced, n_embedded, time.perf_counter() - started)
    return IndexInfo(version=version, path=versions / version, n_chunks=len(chunks), n_questions=len(questions),
                     n_embedded=n_embedded, build_s=meta["build_s"])


def record_in_database(database_url: str, info: IndexInfo) -> None:
    """Record a built version (and that it is now current) in the ``index_versions`` table."""
    from storage.db import migrated

    meta = json.loads((info.path / META_FILE).read_text(encoding="utf-8"))
    with migrated(database_url) as database, database.session() as session:
        record_index_version(session, version=info.version, embedding_model=meta["embedding_model"],
                             content_hash=meta["content_hash"], n_chunks=info.n_chunks,
                             n_questions=info.n_questions, n_embedded=info.n_embedded, build_s=info.build_s,
                             meta={k: meta[k] for k in ("dense_index", "dim", "n_entries", "embed_s")})
