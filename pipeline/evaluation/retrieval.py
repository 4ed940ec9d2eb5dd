"""``oraculo eval retrieval``: build a fresh index of SQuAD paragraphs and measure how well questions find theirs.

The corpus is every unique paragraph of the corpus file (one document, one chunk each, titled with its
article's title); a question's only relevant document is its own paragraph. The index is the product's own
(hybrid BM25 + dense, the weights of ``Settings``), built in a temporary folder; no generated questions are
indexed, and never the evaluation questions. Query latency includes embedding the query.

Example::

    >>> from pathlib import Path
    >>> from pipeline.settings import Settings
    >>> from pipeline.evaluation.retrieval import evaluate_retrieval
    >>> report = evaluate_retrieval(Settings(), squad=Path("../shared/data/faquad/train.json"))  # doctest: +SKIP
    >>> sorted(report)                                                                            # doctest: +SKIP
    ['build_s', 'mrr@10', 'n_docs', 'n_queries', 'ndcg@10', 'p50_ms', 'p95_ms', 'recall@1', 'recall@5']
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.documents.chunking import Chunk, chunk_document
from pipeline.documents.text import Document
from pipeline.evaluation.squad import SquadCorpus, load_squad
from pipeline.search.embeddings import load_embedder
from pipeline.search.index import build_index
from pipeline.search.retrieve import RetrievalOptions, Retriever

MISS = 10**9  # rank of a relevant document not retrieved in the top 10


def corpus_chunks(corpus: SquadCorpus) -> list[Chunk]:
    """One chunk per unique paragraph; its id ``p<n>`` is the paragraph's position."""
    return [Chunk(id=f"p{i}", document=f"p{i}", title=title, text=text, start=0, end=len(text))
            for i, (text, title) in enumerate(zip(corpus.paragraphs, corpus.titles))]


def rank_questions(retriever, questions: Sequence, *, k: int = 10, vectors: np.ndarray | None = None
                   ) -> tuple[list[int], list[float]]:
    """1-based rank of each question's paragraph in the top ``k`` (``MISS`` when absent) and latencies in ms.

    ``vectors`` (query embeddings, one row per question) skip embedding; latencies then exclude it.
    """
    ranks, latencies = [], []
    for i, question in enumerate(questions):
        started = time.perf_counter()
        hits = retriever.search(question.question, k,
                                query_vector=None if vectors is None else vectors[i:i + 1])
        latencies.append((time.perf_counter() - started) * 1000)
        ids = [h.chunk.id for h in hits]
        target = f"p{question.paragraph_id}"
        ranks.append(ids.index(target) + 1 if target in ids else MISS)
    return ranks, latencies


def retrieval_metrics(ranks: Sequence[int]) -> dict[str, float]:
    """nDCG@10, Recall@1, Recall@5 and MRR@10 of 1-based ranks (one relevant document per question)."""
    if not ranks:
        return {"ndcg@10": 0.0, "recall@1": 0.0, "recall@5": 0.0, "mrr@10": 0.0}
    n = len(ranks)
    return {
        "ndcg@10": sum(1 / math.log2(r + 1) for r in ranks if r <= 10) / n,
        "recall@1": sum(r <= 1 for r in ranks) / n,
        "recall@5": sum(r <= 5 for r in ranks) / n,
        "mrr@10": sum(1 / r for r in ranks if r <= 10) / n,
    }


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else 0.0


def evaluate_retrieval(settings, *, squad: Path, corpus: Path | None = None, off_topic: int = 0) -> dict:
    """Build a temporary index of the corpus paragraphs, run every question, return the metrics.

    ``off_topic`` is accepted for the CLI's sake and unused: retrieval has no notion of an off-topic question.
    """
    data = load_squad(Path(squad), Path(corpus) if corpus else None)
    if not data.paragraphs:
        raise ValueError(f"{corpus or squad}: no paragraphs")
    if not data.questions:
        raise ValueError(f"{squad}: no question whose paragraph is in the corpus")
    load_embedder(settings.embedding_model, dtype=settings.embedding_dtype)  # loading is not building
    with tempfile.TemporaryDirectory(prefix="oraculo-eval-") as folder:
        started = time.perf_counter()
        build_index(corpus_chunks(data), qa_records=[], embedding_model=settings.embedding_model,
                    index_root=Path(folder), embedding_dtype=settings.embedding_dtype)
        build_s = time.perf_counter() - started
        retriever = Retriever.load(Path(folder), embedding_model=settings.embedding_model,
                                   options=RetrievalOptions.from_settings(settings),
                                   embedding_dtype=settings.embedding_dtype)
        retriever.search(data.questions[0].question, 10)  # warm-up: first-call allocations are not latency
        ranks, latencies = rank_questions(retriever, data.questions)
    return {**{key: round(value, 4) for key, value in retrieval_metrics(ranks).items()},
            "p50_ms": round(percentile(latencies, 50), 2), "p95_ms": round(percentile(latencies, 95), 2),
            "build_s": round(build_s, 2), "n_docs": len(data.paragraphs), "n_queries": len(data.questions)}


# --- passages of long documents ---------------------------------------------------------------------------

@dataclass(frozen=True)
class PassageQuestion:
    """A question about a long document: the passage that answers is the chunk holding ``span``."""

    question: str
    document: str
    span: tuple[int, int]  # of the answer, in the document's text
    title: str


def long_documents(path: Path, *, join_articles: bool = True) -> tuple[list[tuple[str, str, str]],
                                                                      list[PassageQuestion]]:
    """Documents ``(name, title, text)`` and questions of a SQuAD v1.1 file, one document per article (its
    paragraphs joined by blank lines, answer offsets moved accordingly) when ``join_articles``, else one per
    paragraph. FaQuAD's articles become documents of a few pages; a file whose contexts are whole documents
    (scripts/bench_data/citizen*) is read as it is."""
    import json

    articles = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    documents, questions = [], []
    for a, article in enumerate(articles):
        title = article.get("title", f"doc{a}")
        parts, offset = [], 0
        for p, paragraph in enumerate(article["paragraphs"]):
            context = paragraph["context"]
            if not join_articles:
                parts, offset = [], 0
            for qa in paragraph["qas"]:
                answer = qa["answers"][0]
                start = offset + answer["answer_start"]
                name = f"a{a}" if join_articles else f"a{a}p{p}"
                questions.append(PassageQuestion(qa["question"], name, (start, start + len(answer["text"])), title))
            parts.append(context)
            offset += len(context) + 2
            if not join_articles:
                documents.append((f"a{a}p{p}", title, context))
        if join_articles:
            documents.append((f"a{a}", title, "\n\n".join(parts)))
    return documents, questions


def document_chunks(documents: Sequence[tuple[str, str, str]], *, max_chars: int = 900) -> list[Chunk]:
    """The product's own chunks (:func:`pipeline.documents.chunking.chunk_document`) of ``(name, title, text)``
    documents."""
    return [chunk for name, title, text in documents
            for chunk in chunk_document(Document(name=name, title=title, text=text, path=Path(name), sha256=""),
                                        max_chars=max_chars)]


def rank_passages(retriever, questions: Sequence[PassageQuestion], *, k: int = 10,
                  vectors: np.ndarray | None = None, budget: int = 0) -> tuple[list[int], list[int], list[bool]]:
    """1-based rank of the first chunk holding each answer (``MISS`` when not in the top ``k``), of the first
    chunk of the right document, and whether the answer is within the first ``budget`` characters of the
    retrieved chunks (what a reader of that many characters would see; chunk sizes compared fairly)."""
    passage_ranks, document_ranks, within = [], [], []
    for i, question in enumerate(questions):
        hits = retriever.search(question.question, k, query_vector=None if vectors is None else vectors[i:i + 1])
        start, end = question.span
        rank = next((r for r, h in enumerate(hits, 1) if h.chunk.document == question.document
                     and h.chunk.start < end and h.chunk.end > start), MISS)
        passage_ranks.append(rank)
        document_ranks.append(next((r for r, h in enumerate(hits, 1) if h.chunk.document == question.document),
                                   MISS))
        within.append(rank <= len(hits) and sum(len(h.chunk.text) for h in hits[:rank]) <= budget)
    return passage_ranks, document_ranks, within
