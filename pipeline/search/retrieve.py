"""Search the current index: a question in, the best chunks out (one hit per chunk, best score first).

Hybrid: every entry (chunk or question about a chunk) gets a lexical score (Portuguese BM25 normalised to 0-1,
:mod:`pipeline.search.lexical`) and a dense score (cosine with the query embedding, rescaled to 0-1 above
``dense_floor``: e5's cosines of unrelated texts sit around 0.8, so a raw cosine would lift every score and
abstention could never refuse); the fused score is their weighted
sum, ``(1 - dense_weight) * lexical + dense_weight * dense`` (plus ``title_weight`` times the query's overlap
with the document title, rescaled to 0-1), times ``question_weight`` for question entries, and a chunk scores
as its best entry. The query's abbreviations and everyday terms ("rg", "iptu", "2a via") are expanded
(:mod:`pipeline.search.abbreviations`) for BM25 and, with ``query_expansion="both"``, for the dense model too.
Both scores are on absolute scales (not rescaled per query), so the fused
score also serves as a relevance score for abstention. A weak dense model cannot drag results down: its weight
is tuned on data (scripts/bench_retrieval.py) and 0 turns it off. Candidates are the top ``depth`` entries of
each retriever; with a reranker configured, a cross-encoder reorders the best ``rerank_depth`` chunks.

Example::

    >>> from pathlib import Path
    >>> from pipeline.search.retrieve import Retriever
    >>> retriever = Retriever.load(Path("data/index"), embedding_model="embedded")  # doctest: +SKIP
    >>> [hit.chunk.document for hit in retriever.search("O que é a UFMS?", k=3)]       # doctest: +SKIP
    ['UFMS', 'UNIVERSIDADE', 'HISTORIA_DA_FACOM']
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from pipeline.core.query import Query
from pipeline.documents.chunking import Chunk
from pipeline.search.abbreviations import expand_query, query_expansions
from pipeline.search.embeddings import encode, encode_query, load_embedder, resolve_embedding_model, torch_threads
from pipeline.search.index import chunk_embedding_text, embedding_identity, identity_model
from pipeline.search.store import (CHUNKS_FILE, ENTRIES_FILE, INDEX_FILE, LEXICAL_DIR, META_FILE, VECTORS_FILE,
                                   current_version, version_dir)
from pipeline.search.lexical import LexicalIndex, tokenize
from pipeline.search.rerank import load_reranker, rerank_scores

logger = logging.getLogger(__name__)

# Defaults of the Settings fields of the same names; tuned on FaQuAD's 'train' articles, reported on the
# held-out ones (pipeline.evaluation.answers.article_split; scripts/bench_retrieval.py), for the embedded e5-small.
# Grid 0-1 x title 0-0.2 on the 646 'train' questions: best 0.4 (nDCG@10 0.944; BM25 alone 0.930, e5 alone
# 0.837). The embedded MiniLM was tuned at 0.15 (dense floor 0, title 0.1).
DENSE_WEIGHT = 0.4
# Cosine below which the dense score counts 0 (the 0-1 scale starts there): e5-small's median cosine of a
# 'train' question to the paragraphs that do not answer it. 0 for models whose unrelated texts score near 0
# (MiniLM).
DENSE_FLOOR = 0.8
QUERY_EXPANSION = "both"  # off | lexical | both (see pipeline.search.abbreviations)
# A generated question resembles any question (same "O que é", "Qual é o"), so its match counts for less than
# a match on the passage itself.
QUESTION_WEIGHT = 0.85
# A query naming a document ("o edital do PROUNI", "a UFMS") favours that document's chunks: IDF-weighted word
# overlap between the query and the document title, added with this weight (the sum is rescaled to 0-1).
# Nearly neutral on FaQuAD's 'train' articles (with e5 at 0.4: nDCG@10 0.9434 at 0, 0.9437 at 0.05-0.1), it
# ranks "Onde é sediada a UFMS?" in UFMS.
TITLE_WEIGHT = 0.05
# Long documents: a chunk's score plus this weight times the best score among its document's candidates (the
# sum rescaled to 0-1), so a passage of a document that matches well elsewhere too ranks above a lone match.
# Measured on FaQuAD's 'train' articles as long documents: +0.0004 nDCG@10 at best (0.1), i.e. nothing; off.
DOCUMENT_WEIGHT = 0.0
CANDIDATE_DEPTH = 100  # entries taken from each retriever before fusion
RERANK_DEPTH = 20


@dataclass(frozen=True)
class RetrievalOptions:
    """Query-time knobs (Settings: DENSE_WEIGHT, DENSE_FLOOR, QUERY_EXPANSION, QUESTION_WEIGHT, TITLE_WEIGHT,
    DOCUMENT_WEIGHT, RERANKER_MODEL, RERANK_DEPTH, QUERY_THREADS)."""

    dense_weight: float = DENSE_WEIGHT
    dense_floor: float = DENSE_FLOOR
    query_expansion: str = QUERY_EXPANSION
    question_weight: float = QUESTION_WEIGHT
    title_weight: float = TITLE_WEIGHT
    document_weight: float = DOCUMENT_WEIGHT
    depth: int = CANDIDATE_DEPTH
    reranker_model: str | None = None
    rerank_depth: int = RERANK_DEPTH
    nprobe: int = 16  # IVF lists visited per query when the dense index is approximate
    query_threads: int = 1  # torch threads to embed a query (0: torch's default); see embeddings.torch_threads

    @classmethod
    def from_settings(cls, settings) -> "RetrievalOptions":
        return cls(dense_weight=settings.dense_weight, dense_floor=settings.dense_floor,
                   query_expansion=settings.query_expansion, question_weight=settings.question_weight,
                   title_weight=settings.title_weight, document_weight=settings.document_weight,
                   reranker_model=settings.reranker_model or None, rerank_depth=settings.rerank_depth,
                   query_threads=settings.query_threads)


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float  # fused relevance of the best entry of this chunk, 0-1 (question entries weighted down)
    via: str  # "chunk" (the passage itself matched) or "question" (a question about it matched)
    dense: float = 0.0  # cosine similarity of that entry
    lexical: float = 0.0  # normalised BM25 score of that entry
    rerank: float | None = field(default=None, compare=False)  # cross-encoder score when reranked
    # the passage's own entry (not a question about it): what the reader's abstention compares across corpora
    passage_dense: float = 0.0
    passage_lexical: float = 0.0


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


class Retriever:
    """Hybrid retrieval over one index version; load it with :meth:`Retriever.load`."""

    def __init__(self, *, index, vectors: np.ndarray, lexical, chunks: dict[str, Chunk], entries: list[dict],
                 meta: dict, embedder, options: RetrievalOptions | None = None) -> None:
        if not (index.ntotal == len(entries) == len(vectors) == lexical.n_rows):
            raise ValueError(f"index rows disagree: faiss {index.ntotal}, vectors {len(vectors)}, "
                             f"lexical {lexical.n_rows}, entries {len(entries)}")
        self._index = index
        self._vectors = vectors
        self._lexical = lexical
        self._chunks = chunks
        self._entry_chunk = [e["chunk_id"] for e in entries]
        self._entry_kind = [e["kind"] for e in entries]
        self._is_question = np.array([k == "question" for k in self._entry_kind], dtype=bool)
        self._chunk_row = {e["chunk_id"]: i for i, e in enumerate(entries) if e["kind"] == "chunk"}

        self._question_tokens = {i: tokenize(e["text"]) for i, e in enumerate(entries) if e["kind"] == "question"}
        titles = sorted({c.title for c in chunks.values()})
        self._titles = [tokenize(t) for t in titles]
        title_index = {t: i for i, t in enumerate(titles)}
        self._entry_title = np.array([title_index[chunks[e["chunk_id"]].title] for e in entries], dtype=np.int64)
        documents = {name: i for i, name in enumerate(sorted({c.document for c in chunks.values()}))}
        self._entry_document = np.array([documents[chunks[e["chunk_id"]].document] for e in entries], dtype=np.int64)
        self._embedder = embedder
        self.options = options or RetrievalOptions()
        self._reranker = None
        self.meta = meta
        self.version: str = meta["version"]
        if hasattr(index, "nprobe"):
            index.nprobe = min(self.options.nprobe, index.nlist)

    @classmethod
    def load(cls, index_root: Path, *, embedding_model: str, options: RetrievalOptions | None = None,
             embedding_dtype: str = "auto") -> "Retriever":
        """The current version under ``index_root``; ``FileNotFoundError`` when none was built yet."""
        import faiss

        version = current_version(index_root)
        if version is None:
            raise FileNotFoundError(f"no index under {index_root}: build one first")
        folder = version_dir(index_root, version)
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))

        built_with = meta.get("embedding_model")
        identity = embedding_identity(embedding_model, embedding_dtype)
        built_identity = meta.get("embedding_identity", built_with)
        # The model the vectors came from, not its name: "embedded" meant MiniLM before it meant e5.
        if identity_model(built_identity) != identity_model(identity) and (
                built_with == embedding_model
                or resolve_embedding_model(built_with) != resolve_embedding_model(embedding_model)):
            raise ValueError(f"index {version} was built with {built_with!r} ({identity_model(built_identity)}), "
                             f"not {embedding_model!r} ({identity_model(identity)}): rebuild it")
        if not (folder / VECTORS_FILE).is_file() or not (folder / LEXICAL_DIR).is_dir():
            raise ValueError(f"index {version} has an older layout (format {meta.get('format')}): rebuild it")
        index = faiss.deserialize_index(np.fromfile(folder / INDEX_FILE, dtype=np.uint8))
        vectors = np.load(folder / VECTORS_FILE)
        lexical = LexicalIndex.load(folder / LEXICAL_DIR)
        chunks = {row["id"]: Chunk(**row) for row in _read_jsonl(folder / CHUNKS_FILE)}
        entries = _read_jsonl(folder / ENTRIES_FILE)
        missing = {e["chunk_id"] for e in entries} - chunks.keys()
        if missing:
            raise ValueError(f"index {version}: entries point to unknown chunks, e.g. {sorted(missing)[0]}")
        if built_identity != identity:
            logger.warning("index %s was embedded as %s but queries will be as %s (EMBEDDING_DTYPE changed): "
                           "rebuild it for best results", version, meta.get("embedding_identity"), identity)
        embedder = load_embedder(embedding_model, dtype=embedding_dtype)
        dim = int(embedder.get_embedding_dimension())
        if index.d != dim:
            raise ValueError(f"index {version} has dimension {index.d} but the model gives {dim}: rebuild it")
        logger.info("index %s loaded: %d entries, %d chunks", version, index.ntotal, len(chunks))
        return cls(index=index, vectors=vectors, lexical=lexical, chunks=chunks, entries=entries, meta=meta,
                   embedder=embedder, options=options)

    @classmethod
    def from_settings(cls, settings) -> "Retriever":
        """The current index of ``settings.index_dir`` with the retrieval knobs of ``settings``."""
        return cls.load(settings.index_dir, embedding_model=settings.embedding_model,
                        options=RetrievalOptions.from_settings(settings), embedding_dtype=settings.embedding_dtype)

    @property
    def chunks(self) -> list[Chunk]:
        return list(self._chunks.values())

    def _expansions(self, query: str) -> list[str]:
        return [] if self.options.query_expansion == "off" else query_expansions(query)

    def _candidates(self, query: str, words: list[str], vector: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Entry rows worth scoring (lexical top ∪ dense top) and the lexical score of every row (``words``: the
        query's BM25 tokens)."""
        lexical = self._lexical.word_scores(words, [t for e in self._expansions(query) for t in tokenize(e)])
        depth = min(self.options.depth, len(lexical))
        if depth >= len(lexical):
            return np.arange(len(lexical)), lexical
        rows = np.argpartition(-lexical, depth - 1)[:depth]
        if vector is not None:
            _, dense_rows = self._index.search(vector, depth)
            rows = np.union1d(rows, dense_rows[0][dense_rows[0] >= 0])
        return rows, lexical

    def embed_query(self, query: str) -> np.ndarray:
        """The ``(1, dim)`` query vector :meth:`search` uses (to embed a batch of queries once, e.g. to tune):
        the query with its expansions in parentheses when ``query_expansion`` is ``"both"``."""
        query = query.strip()
        if self.options.query_expansion == "both":
            query = expand_query(query)
        with torch_threads(self.options.query_threads):
            return encode_query(self._embedder, query)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        """Unit vectors of ``texts`` as the index embeds its passages (``(len(texts), dim)``)."""
        with torch_threads(self.options.query_threads):
            return encode(self._embedder, texts, kind="document")

    def search(self, query: Query | str, k: int, *, query_vector: np.ndarray | None = None) -> list[Hit]:
        """The ``k`` best chunks for ``query`` (fewer when the index has fewer), best first; ``ValueError`` when it
        is blank.

        ``query_vector`` (from :meth:`embed_query`) skips embedding the query again.
        """
        try:
            query = Query.of(query).text
        except ValueError:
            raise ValueError("empty query") from None
        if k < 1:
            return []
        opts = self.options
        words = tokenize(query)  # once: BM25, the paraphrase overlap with indexed questions and the titles
        # A dense weight of 0 (lexical only) skips the query embedding altogether.
        vector = None
        if opts.dense_weight > 0:
            vector = query_vector if query_vector is not None else self.embed_query(query)
            vector = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        rows, all_lexical = self._candidates(query, words, vector)
        lexical = all_lexical[rows]
        questions = [i for i, row in enumerate(rows) if self._is_question[row]]
        if questions:  # a question entry matches by paraphrase: symmetric word overlap, not BM25 containment
            overlap = self._lexical.word_overlap(words, [self._question_tokens[int(rows[i])] for i in questions])
            lexical[questions] = np.maximum(lexical[questions], overlap)
        dense = self._vectors[rows] @ vector[0] if vector is not None else np.zeros(len(rows), np.float32)
        scaled = np.clip((dense - opts.dense_floor) / (1.0 - opts.dense_floor), 0.0, 1.0) if opts.dense_floor else dense
        fused = (1.0 - opts.dense_weight) * lexical + opts.dense_weight * scaled
        if opts.title_weight > 0:
            title_ids, inverse = np.unique(self._entry_title[rows], return_inverse=True)
            title = self._lexical.word_overlap(words, [self._titles[i] for i in title_ids])[inverse]
            fused = (fused + opts.title_weight * title) / (1.0 + opts.title_weight)
        fused = np.where(self._is_question[rows], fused * opts.question_weight, fused)
        if opts.document_weight > 0:
            documents, inverse = np.unique(self._entry_document[rows], return_inverse=True)
            best_of_document = np.zeros(len(documents), dtype=fused.dtype)
            np.maximum.at(best_of_document, inverse, fused)
            fused = (fused + opts.document_weight * best_of_document[inverse]) / (1.0 + opts.document_weight)
        best: dict[str, Hit] = {}
        for i in np.argsort(-fused, kind="stable"):
            row = int(rows[i])
            chunk_id = self._entry_chunk[row]
            if chunk_id not in best:  # rows come best first: the first one seen is the chunk's best entry
                own = self._chunk_row.get(chunk_id, row)
                best[chunk_id] = Hit(chunk=self._chunks[chunk_id], score=float(fused[i]),
                                     via=self._entry_kind[row], dense=float(dense[i]),
                                     lexical=float(lexical[i]),
                                     passage_dense=float(self._vectors[own] @ vector[0]) if vector is not None else 0.0,
                                     passage_lexical=float(all_lexical[own]))
                if len(best) >= max(k, opts.rerank_depth if opts.reranker_model else 0):
                    break
        hits = list(best.values())
        if opts.reranker_model:
            hits = self._rerank(query, hits)
        return hits[:k]

    def _rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        """Reorder ``hits`` by a cross-encoder's score (the fused score is kept for abstention)."""
        if self._reranker is None:
            self._reranker = load_reranker(self.options.reranker_model)

        scores = rerank_scores(self._reranker, query, [chunk_embedding_text(h.chunk) for h in hits])
        order = sorted(range(len(hits)), key=lambda i: -scores[i])
        return [replace(hits[i], rerank=float(scores[i])) for i in order]
