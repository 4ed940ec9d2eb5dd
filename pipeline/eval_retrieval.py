"""``oraculo eval retrieval``: build a fresh index of SQuAD paragraphs and measure how well questions find theirs.

The corpus is every unique paragraph of the corpus file (one document, one chunk each, titled with its
article's title); a question's only relevant document is its own paragraph. The index is the product's own
(hybrid BM25 + dense, the weights of ``Settings``), built in a temporary folder; no generated questions are
indexed, and never the evaluation questions. Query latency includes embedding the query.

Example::

    >>> from pathlib import Path
    >>> from pipeline.settings import Settings
    >>> from pipeline.eval_retrieval import evaluate_retrieval
    >>> report = evaluate_retrieval(Settings(), squad=Path("../shared/data/faquad/train.json"))  # doctest: +SKIP
    >>> sorted(report)                                                                            # doctest: +SKIP
    ['build_s', 'mrr@10', 'n_docs', 'n_queries', 'ndcg@10', 'p50_ms', 'p95_ms', 'recall@1', 'recall@5']
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.chunking import Chunk
from pipeline.squad import SquadCorpus, load_squad

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
    from pipeline.embeddings import load_embedder
    from pipeline.index import build_index
    from pipeline.retrieve import RetrievalOptions, Retriever

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
