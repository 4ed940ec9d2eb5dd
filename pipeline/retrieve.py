"""Search the current index: a question in, the best chunks out (one hit per chunk, best score first).

Example::

    >>> from pathlib import Path
    >>> from pipeline.retrieve import Retriever
    >>> retriever = Retriever.load(Path("data/index"), embedding_model="embedded")  # doctest: +SKIP
    >>> [hit.chunk.document for hit in retriever.search("O que é a UFMS?", k=3)]       # doctest: +SKIP
    ['UFMS', 'UNIVERSIDADE', 'HISTORIA_DA_FACOM']
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.chunking import Chunk
from pipeline.index import CHUNKS_FILE, ENTRIES_FILE, INDEX_FILE, META_FILE, current_version, version_dir

logger = logging.getLogger(__name__)

# A generated question resembles any question (same "O que é", "Qual é o"), so its match counts for less than
# a match on the passage itself. Measured on FaQuAD train (837 questions, offline QA, all-MiniLM-L6-v2),
# right document in the top 5: 0.775 at weight 1.0, 0.814 without questions, 0.820 at 0.85.
QUESTION_WEIGHT = 0.85


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float  # cosine similarity of the best entry of this chunk
    via: str  # "chunk" (the passage itself matched) or "question" (a generated question about it matched)


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


class Retriever:
    """Dense retrieval over one index version; load it with :meth:`Retriever.load`."""

    def __init__(self, *, index, chunks: dict[str, Chunk], entries: list[dict], meta: dict, embedder) -> None:
        if index.ntotal != len(entries):
            raise ValueError(f"index has {index.ntotal} rows but {len(entries)} entries")
        self._index = index
        self._chunks = chunks
        self._entry_chunk = [e["chunk_id"] for e in entries]
        self._entry_kind = [e["kind"] for e in entries]
        self._embedder = embedder
        self.meta = meta
        self.version: str = meta["version"]

    @classmethod
    def load(cls, index_root: Path, *, embedding_model: str) -> "Retriever":
        """The current version under ``index_root``; ``FileNotFoundError`` when none was built yet."""
        import faiss

        from pipeline.embeddings import load_embedder, resolve_embedding_model

        version = current_version(index_root)
        if version is None:
            raise FileNotFoundError(f"no index under {index_root}: build one first")
        folder = version_dir(index_root, version)
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        built_with = meta.get("embedding_model")
        if built_with != embedding_model and \
                resolve_embedding_model(built_with) != resolve_embedding_model(embedding_model):
            raise ValueError(f"index {version} was built with {built_with!r}, not {embedding_model!r}: rebuild it")
        index = faiss.deserialize_index(np.fromfile(folder / INDEX_FILE, dtype=np.uint8))
        chunks = {row["id"]: Chunk(**row) for row in _read_jsonl(folder / CHUNKS_FILE)}
        entries = _read_jsonl(folder / ENTRIES_FILE)
        missing = {e["chunk_id"] for e in entries} - chunks.keys()
        if missing:
            raise ValueError(f"index {version}: entries point to unknown chunks, e.g. {sorted(missing)[0]}")
        embedder = load_embedder(embedding_model)
        dim = int(embedder.get_embedding_dimension())
        if index.d != dim:
            raise ValueError(f"index {version} has dimension {index.d} but the model gives {dim}: rebuild it")
        logger.info("index %s loaded: %d entries, %d chunks", version, index.ntotal, len(chunks))
        return cls(index=index, chunks=chunks, entries=entries, meta=meta, embedder=embedder)

    @property
    def chunks(self) -> list[Chunk]:
        return list(self._chunks.values())

    def search(self, query: str, k: int) -> list[Hit]:
        """The ``k`` best chunks for ``query`` (fewer when the index has fewer), best first."""
        from pipeline.embeddings import encode

        if not query or not query.strip():
            raise ValueError("empty query")
        if k < 1:
            return []
        vector = encode(self._embedder, [query.strip()], kind="query")
        total = self._index.ntotal
        depth = min(total, max(4 * k, 16))
        while True:
            scores, rows = self._index.search(vector, depth)
            best: dict[str, Hit] = {}
            for score, row in zip(scores[0], rows[0]):
                if row < 0:
                    continue
                chunk_id, via = self._entry_chunk[row], self._entry_kind[row]
                score = float(score) * (QUESTION_WEIGHT if via == "question" else 1.0)
                if chunk_id not in best or score > best[chunk_id].score:
                    best[chunk_id] = Hit(chunk=self._chunks[chunk_id], score=score, via=via)
            # Weighting can reorder rows, so only stop once the k-th chunk cannot be overtaken by a row not
            # yet seen (whose weighted score is at most the last raw score seen).
            ranked = sorted(best.values(), key=lambda h: -h.score)
            last = float(scores[0][-1])
            if depth >= total or (len(ranked) >= k and ranked[k - 1].score >= max(last, last * QUESTION_WEIGHT)):
                break
            depth = min(total, depth * 4)
        return ranked[:k]
