"""Retrieval benchmark: quality on FaQuAD (tuned on half the articles, reported on the other half), latency and
build throughput at scale. Not a test: it prints figures (and writes them as JSON with --out) for the README.

Three systems in one run, on the same index: the seed's approach (dense all-MiniLM-L6-v2 + FAISS alone, i.e.
dense_weight=1), BM25 alone (dense_weight=0) and Oráculo's hybrid (dense_weight tuned on the tuning half).
Articles are split by a hash of their title, so no tuning question shares a paragraph with a reported one.

Run::

    python scripts/bench_retrieval.py --squad ../shared/data/faquad/train.json --scale 50000 --out bench.json

Scale part (``--scale N``): a synthetic corpus of N chunks of 3-6 sentences drawn from the FaQuAD paragraphs,
25 chunks per document. Embedding N chunks for real would take N/25 s here, so their vectors are the
normalised mean of their sentences' real embeddings, handed to ``build_index`` as its vector cache (the query
is always embedded for real); above 20k entries the dense index is IVF. Then one document is edited and the
index rebuilt incrementally; build
throughput is measured on ``--throughput-chunks`` of those chunks against a plain ``SentenceTransformer.encode``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.chunking import Chunk, split_sentences  # noqa: E402
from pipeline.eval_retrieval import corpus_chunks, percentile, rank_questions, retrieval_metrics  # noqa: E402
from pipeline.index import build_index, chunk_embedding_text, embedding_identity, entry_key  # noqa: E402
from pipeline.retrieve import RetrievalOptions, Retriever  # noqa: E402
from pipeline.squad import load_squad  # noqa: E402

GRID = [0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0]


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def is_tuning_title(title: str) -> bool:
    return int(hashlib.md5(title.encode()).hexdigest(), 16) % 2 == 0


def quality(squad: Path, model: str) -> dict:
    """Tune dense_weight on half the articles, report the three systems on the other half (and on all).

    The seed's row is the seed's model as it ran: float32. Oráculo's rows use Oráculo's default precision
    (``EMBEDDING_DTYPE=auto``: int8 for the embedded model).
    """
    from pipeline.embeddings import load_embedder

    data = load_squad(squad)

    def build(dtype: str):
        load_embedder(model, dtype=dtype)  # loading is not building
        root = Path(tempfile.mkdtemp(prefix="bench-faquad-"))
        started = time.perf_counter()
        info = build_index(corpus_chunks(data), qa_records=[], embedding_model=model, index_root=root,
                           embedding_dtype=dtype)
        build_s = time.perf_counter() - started
        retriever = Retriever.load(root, embedding_model=model, embedding_dtype=dtype)
        vectors = np.concatenate([retriever.embed_query(q.question) for q in data.questions])
        return info, build_s, retriever, vectors

    info, build_s, retriever, vectors = build("auto")
    seed_build = build("float32")
    tune = [i for i, q in enumerate(data.questions) if is_tuning_title(q.title)]
    held = [i for i, q in enumerate(data.questions) if not is_tuning_title(q.title)]

    title_weight = retriever.options.title_weight

    def evaluate(weight: float, rows: list[int], embed: bool = False, title: float | None = None, system=None
                 ) -> tuple[dict, list[float]]:
        searcher, query_vectors = system or (retriever, vectors)
        searcher.options = dataclasses.replace(searcher.options, dense_weight=weight,
                                               title_weight=title_weight if title is None else title)
        questions = [data.questions[i] for i in rows]
        ranks, latencies = rank_questions(searcher, questions, vectors=None if embed else query_vectors[rows])
        return retrieval_metrics(ranks), latencies

    grid = {w: evaluate(w, tune)[0]["ndcg@10"] for w in GRID}
    best = max(GRID, key=lambda w: (round(grid[w], 4), -w))  # ties: the smaller dense weight
    # The baselines without the title feature: the seed's dense search (float32), and BM25 alone.
    systems = {"seed (dense MiniLM float32 + FAISS)": (1.0, 0.0, seed_build[2:]),
               "BM25 pt (bm25s + PyStemmer)": (0.0, 0.0, None),
               f"Oráculo hybrid (w={best})": (best, title_weight, None)}
    report = {}
    for name, (weight, title, system) in systems.items():
        held_metrics, latencies = evaluate(weight, held, embed=True, title=title, system=system)  # query embedded
        report[name] = {"dense_weight": weight, "title_weight": title, "held_out": held_metrics,
                        "all": evaluate(weight, tune + held, title=title, system=system)[0],
                        "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95)}
    return {"n_docs": info.n_chunks, "n_tune": len(tune), "n_held_out": len(held), "build_s": build_s,
            "seed_build_s": seed_build[1], "tuning_grid_ndcg@10": grid, "best_dense_weight": best,
            "systems": report, "load": load_average()}


def synthetic_corpus(squad: Path, n_chunks: int, seed: int = 0) -> tuple[list[Chunk], list[str], list[list[int]]]:
    """``n_chunks`` chunks of 3-6 FaQuAD sentences, 25 per document; also the sentences and each chunk's."""
    data = load_squad(squad)
    sentences = [p[s:e] for p in data.paragraphs for s, e in split_sentences(p)]
    sentences = [s for s in dict.fromkeys(sentences) if len(s) > 30]
    rng = random.Random(seed)
    chunks, members = [], []
    for i in range(n_chunks):
        picked = rng.sample(range(len(sentences)), rng.randint(3, 6))
        text = " ".join(sentences[j] for j in picked) + f" (ref. {i})"  # unique even when sentences repeat
        doc = f"SINTETICO_{i // 25:05d}"
        chunks.append(Chunk(id=f"{doc}:{i}", document=doc, title=doc.replace("_", " ").title(), text=text,
                            start=0, end=len(text)))
        members.append(picked)
    return chunks, sentences, members


def scale(squad: Path, model: str, n_chunks: int, throughput_chunks: int) -> dict:
    from sentence_transformers import SentenceTransformer

    from pipeline.embeddings import encode, load_embedder, resolve_embedding_model

    chunks, sentences, members = synthetic_corpus(squad, n_chunks)
    embedder = load_embedder(model)
    started = time.perf_counter()
    sentence_vectors = encode(embedder, sentences, kind="document")
    sentences_s = time.perf_counter() - started
    cache = {}
    for chunk, picked in zip(chunks, members):
        vector = sentence_vectors[picked].mean(axis=0)
        cache[entry_key(embedding_identity(model), "chunk", chunk_embedding_text(chunk))] = vector / np.linalg.norm(vector)

    root = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    started = time.perf_counter()
    first = build_index(chunks, qa_records=[], embedding_model=model, index_root=root, vector_cache=cache)
    first_s = time.perf_counter() - started
    del cache
    retriever = Retriever.load(root, embedding_model=model)
    questions = [q.question for q in load_squad(squad).questions][:300]
    latency = {}
    defaults = RetrievalOptions()
    for name, weight, title in (("hybrid", defaults.dense_weight, defaults.title_weight), ("bm25", 0.0, 0.0),
                                ("dense", 1.0, 0.0)):
        retriever.options = dataclasses.replace(retriever.options, dense_weight=weight, title_weight=title)
        retriever.search(questions[0], 10)
        times = []
        for question in questions:
            t0 = time.perf_counter()
            retriever.search(question, 10)
            times.append((time.perf_counter() - t0) * 1000)
        latency[name] = {"p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95)}

    # Incremental: one document (25 chunks) edited; only its chunks are embedded again.
    edited_doc = chunks[0].document
    edited = [dataclasses.replace(c, text=c.text + " Alterado.", end=c.end + 10) if c.document == edited_doc else c
              for c in chunks]
    started = time.perf_counter()
    second = build_index(edited, qa_records=[], embedding_model=model, index_root=root)
    incremental_s = time.perf_counter() - started

    # Throughput: a plain encode of the same chunks vs a cold full build_index of them.
    sample = chunks[-throughput_chunks:]
    texts = [chunk_embedding_text(c) for c in sample]
    plain = SentenceTransformer(resolve_embedding_model(model), device="cpu")
    plain.encode(texts[:8], batch_size=32, show_progress_bar=False)  # warm, like the cached model of build_index
    started = time.perf_counter()
    plain.encode(texts, batch_size=32, show_progress_bar=False)
    plain_s = time.perf_counter() - started
    cold_root = Path(tempfile.mkdtemp(prefix="bench-cold-"))
    started = time.perf_counter()
    build_index(sample, qa_records=[], embedding_model=model, index_root=cold_root)
    cold_s = time.perf_counter() - started
    return {"n_chunks": n_chunks, "dense_index": retriever.meta["dense_index"],
            "sentence_embedding_s": sentences_s, "n_sentences": len(sentences),
            "build_with_cached_vectors_s": first_s, "latency_with_query_embedding": latency,
            "incremental": {"changed_chunks": sum(c.document == edited_doc for c in chunks),
                            "embedded": second.n_embedded, "seconds": incremental_s},
            "throughput": {"chunks": len(sample), "plain_encode_chunks_per_s": len(sample) / plain_s,
                           "build_index_chunks_per_s": len(sample) / cold_s,
                           "ratio": plain_s / cold_s, "first_build_embedded": first.n_embedded},
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "load": load_average()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--squad", type=Path, default=Path("../shared/data/faquad/train.json"))
    parser.add_argument("--model", default="embedded", help="embedding model (default: the embedded MiniLM)")
    parser.add_argument("--scale", type=int, default=0, help="also run the scale part with this many chunks")
    parser.add_argument("--throughput-chunks", type=int, default=256)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    result = {"load_before": load_average(), "quality": quality(args.squad, args.model)}
    print(json.dumps(result["quality"], ensure_ascii=False, indent=1), flush=True)
    if args.scale:
        result["scale"] = scale(args.squad, args.model, args.scale, args.throughput_chunks)
        print(json.dumps(result["scale"], ensure_ascii=False, indent=1), flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
