"""Retrieval benchmark: quality on FaQuAD (tuned on the 'train' articles, reported on the held-out ones), long
documents, citizens' words, and latency and build throughput at scale. Not a test: it prints figures (and writes
them as JSON with --out) for the README.

Run::

    python scripts/bench_retrieval.py --squad ../shared/data/faquad/train.json --scale 50000 --out bench.json

FaQuAD paragraphs (one chunk each): the articles are split by ``pipeline.evaluation.answers.article_split`` (a hash of
the title; about a third held out). Fusion weights (dense weight, title weight; the dense floor from the train
questions' cosines to other paragraphs) are tuned on the 'train' articles only, then these rows are reported on
the held-out ones, all in one run: e5 hybrid (tuned), e5 alone, MiniLM alone (the seed's approach, in the same
ONNX int8 precision), MiniLM hybrid (its old weights) and BM25-pt alone. Query latency includes embedding it.

Long documents: each FaQuAD article becomes one document (its paragraphs joined), cut by the product's chunker;
a question is answered when the chunk holding its answer span ranks first (passage R@1), or in the top 5/10.
Chunk size and the document-level weight are chosen on the 'train' articles; the held-out articles and the two
citizen sets (``scripts/bench_data/citizen``: never tuned on; ``citizen_words``: written for the abbreviation
table, so its figures show what the table does, not how it generalises) are reported.

Scale part (``--scale N``): a synthetic corpus of N chunks of 3-6 sentences drawn from the FaQuAD paragraphs,
25 chunks per document. Embedding N chunks for real would take N/40 s here, so their vectors are the
normalised mean of their sentences' real embeddings, handed to ``build_index`` as its vector cache (the query
is always embedded for real); above 20k entries the dense index is IVF. Then one document is edited and the
index rebuilt incrementally; build throughput is measured on ``--throughput-chunks`` of those chunks (a real,
cold ``build_index``) against a plain ``SentenceTransformer.encode`` of the same model.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
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

from pipeline.documents.chunking import Chunk, split_sentences  # noqa: E402
from pipeline.evaluation.answers import article_split  # noqa: E402
from pipeline.evaluation.retrieval import (corpus_chunks, document_chunks, long_documents, percentile,  # noqa: E402
                                     rank_passages, rank_questions, retrieval_metrics)
from pipeline.search.index import build_index, chunk_embedding_text, embedding_identity, entry_key  # noqa: E402
from pipeline.search.retrieve import RetrievalOptions, Retriever  # noqa: E402
from pipeline.evaluation.squad import load_squad  # noqa: E402

E5, MINILM = "embedded", "minilm"
DENSE_GRID = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0]
TITLE_GRID = [0.0, 0.05, 0.1, 0.2]
CHUNK_SIZES = [500, 900, 1400]
DOCUMENT_GRID = [0.0, 0.1, 0.2, 0.3, 0.5]
HERE = Path(__file__).resolve().parent


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def indexed(chunks: list[Chunk], model: str, options: RetrievalOptions | None = None) -> tuple[Retriever, float]:
    """A fresh index of ``chunks`` in a temporary folder, loaded; and its build time."""
    from pipeline.search.embeddings import load_embedder

    load_embedder(model)  # loading is not building
    root = Path(tempfile.mkdtemp(prefix="bench-retrieval-"))
    started = time.perf_counter()
    build_index(chunks, qa_records=[], embedding_model=model, index_root=root)
    build_s = time.perf_counter() - started
    return Retriever.load(root, embedding_model=model, options=options), build_s


def with_options(retriever: Retriever, **changes) -> Retriever:
    retriever.options = dataclasses.replace(retriever.options, **changes)
    return retriever


def query_vectors(retriever: Retriever, questions: list[str]) -> np.ndarray:
    return np.concatenate([retriever.embed_query(q) for q in questions])


def dense_floor(retriever: Retriever, vectors: np.ndarray, gold: list[int]) -> float:
    """The median cosine between a question and the paragraphs that do not answer it (rounded to 0.05): the
    level of "unrelated" for this model, where its dense score starts."""
    cosines = vectors @ retriever._vectors.T  # noqa: SLF001 - a benchmark may read the index it built
    mask = np.ones_like(cosines, dtype=bool)
    mask[np.arange(len(gold)), gold] = False
    return round(float(np.median(cosines[mask])) / 0.05) * 0.05


def faquad(squad: Path) -> dict:
    """Tune the fusion on the 'train' articles, report every system on the held-out ones."""
    data = load_squad(squad)
    chunks = corpus_chunks(data)
    train = [i for i, q in enumerate(data.questions) if article_split(q.title) == "train"]
    held = [i for i, q in enumerate(data.questions) if article_split(q.title) == "heldout"]
    texts = [q.question for q in data.questions]
    e5, e5_build_s = indexed(chunks, E5)
    minilm, minilm_build_s = indexed(chunks, MINILM)
    e5_vectors, minilm_vectors = query_vectors(e5, texts), query_vectors(minilm, texts)
    floor = dense_floor(e5, e5_vectors[train], [data.questions[i].paragraph_id for i in train])

    def score(retriever, vectors, rows, embed=False, **options) -> tuple[dict, list[float]]:
        with_options(retriever, **options)
        questions = [data.questions[i] for i in rows]
        ranks, latencies = rank_questions(retriever, questions, vectors=None if embed else vectors[rows])
        return retrieval_metrics(ranks), latencies

    grid = {(w, t): score(e5, e5_vectors, train, dense_weight=w, title_weight=t, dense_floor=floor)[0]["ndcg@10"]
            for w, t in itertools.product(DENSE_GRID, TITLE_GRID)}
    best_w, best_t = max(grid, key=lambda key: (round(grid[key], 4), -key[0], -key[1]))  # ties: smaller weights
    systems = {
        "e5 hybrid": (e5, e5_vectors, dict(dense_weight=best_w, title_weight=best_t, dense_floor=floor)),
        "e5 alone": (e5, e5_vectors, dict(dense_weight=1.0, title_weight=0.0, dense_floor=0.0)),
        "MiniLM alone": (minilm, minilm_vectors, dict(dense_weight=1.0, title_weight=0.0, dense_floor=0.0)),
        "MiniLM hybrid (old defaults)": (minilm, minilm_vectors, dict(dense_weight=0.15, title_weight=0.1,
                                                                      dense_floor=0.0)),
        "BM25-pt": (e5, e5_vectors, dict(dense_weight=0.0, title_weight=0.0)),
    }
    report = {}
    for name, (retriever, vectors, options) in systems.items():
        held_metrics, latencies = score(retriever, vectors, held, embed=True, **options)  # query embedded
        report[name] = {**options, "held_out": held_metrics,
                        "train": score(retriever, vectors, train, **options)[0],
                        "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95),
                        "abstention": abstention(retriever, [data.questions[i].question for i in held])}
    return {"n_paragraphs": len(chunks), "n_train": len(train), "n_held_out": len(held),
            "build_s": {"e5": e5_build_s, "minilm": minilm_build_s}, "dense_floor": floor,
            "tuning_grid_ndcg@10": {f"{w}/{t}": v for (w, t), v in grid.items()},
            "best": {"dense_weight": best_w, "title_weight": best_t}, "systems": report, "load": load_average()}


def abstention(retriever: Retriever, answerable: list[str]) -> dict:
    """With the current options: share of held-out questions whose best fused score reaches MIN_RELEVANCE, and
    share of off-topic questions (pipeline.evaluation.answers.OFF_TOPIC_QUESTIONS) below it."""
    from pipeline.evaluation.answers import OFF_TOPIC_QUESTIONS
    from pipeline.settings import Settings

    threshold = Settings.model_fields["min_relevance"].default

    def best(question: str) -> float:
        hits = retriever.search(question, 1)
        return hits[0].score if hits else 0.0

    return {"min_relevance": threshold,
            "answerable_kept": float(np.mean([best(q) >= threshold for q in answerable])),
            "off_topic_refused": float(np.mean([best(q) < threshold for q in OFF_TOPIC_QUESTIONS]))}


READ_BUDGET = 2700  # characters a reader gets: 3 chunks of the default 900


def passage_metrics(retriever: Retriever, questions, vectors=None) -> dict:
    passage, document, within = rank_passages(retriever, questions, vectors=vectors, budget=READ_BUDGET)
    return {"passage": retrieval_metrics(passage), "document_r@1": retrieval_metrics(document)["recall@1"],
            f"answer_in_first_{READ_BUDGET}_chars": float(np.mean(within)), "n": len(questions)}


def long_docs(squad: Path, fusion: dict) -> dict:
    """Chunk size and document weight chosen on FaQuAD's 'train' articles (as long documents), reported on the
    held-out articles and the citizen sets."""
    documents, questions = long_documents(squad)
    train = [q for q in questions if article_split(q.title) == "train"]
    held = [q for q in questions if article_split(q.title) == "heldout"]
    citizen = {name: long_documents(HERE / "bench_data" / name / "questions.json")
               for name in ("citizen", "citizen_words")}
    results, choice = {}, None
    for size in CHUNK_SIZES:
        retriever, build_s = indexed(document_chunks(documents, max_chars=size), E5, RetrievalOptions(**fusion))
        vectors = query_vectors(retriever, [q.question for q in train])
        grid = {}
        for weight in DOCUMENT_GRID:
            with_options(retriever, document_weight=weight)
            grid[weight] = passage_metrics(retriever, train, vectors)["passage"]["ndcg@10"]
        best = max(grid, key=lambda w: (round(grid[w], 4), -w))
        row = {"n_chunks": retriever.meta["n_chunks"], "train_grid_ndcg@10": grid, "document_weight": best}
        for weight in sorted({0.0, best}):
            with_options(retriever, document_weight=weight)
            row[f"held_out@dw={weight}"] = passage_metrics(retriever, held)
        for name, (docs, qs) in citizen.items():
            citizen_retriever, _ = indexed(document_chunks(docs, max_chars=size), E5, RetrievalOptions(**fusion))
            for weight in sorted({0.0, best}):
                with_options(citizen_retriever, document_weight=weight)
                row[f"{name}@dw={weight}"] = passage_metrics(citizen_retriever, qs)
        results[size] = row
        if choice is None or grid[best] > results[choice]["train_grid_ndcg@10"][results[choice]["document_weight"]]:
            choice = size
    return {"by_chunk_chars": results, "chosen_on_train": {"chunk_chars": choice,
                                                          "document_weight": results[choice]["document_weight"]},
            "load": load_average()}


def citizen_words(fusion: dict, chunk_chars: int = 900) -> dict:
    """Query expansion off / lexical / both, hybrid and BM25 alone, on the two citizen sets."""
    out = {}
    for name in ("citizen_words", "citizen"):
        docs, questions = long_documents(HERE / "bench_data" / name / "questions.json")
        retriever, _ = indexed(document_chunks(docs, max_chars=chunk_chars), E5, RetrievalOptions(**fusion))
        rows = {}
        for expansion in ("off", "lexical", "both"):
            rows[f"hybrid, expansion {expansion}"] = passage_metrics(
                with_options(retriever, query_expansion=expansion, **fusion), questions)
            rows[f"BM25-pt, expansion {expansion}"] = passage_metrics(
                with_options(retriever, query_expansion=expansion, dense_weight=0.0, title_weight=0.0), questions)
        minilm, _ = indexed(document_chunks(docs, max_chars=chunk_chars), MINILM,
                            RetrievalOptions(dense_weight=0.15, title_weight=0.1, dense_floor=0.0,
                                             query_expansion="off"))
        rows["MiniLM hybrid (old defaults), no expansion"] = passage_metrics(minilm, questions)
        out[name] = rows
    return out


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


def scale(squad: Path, model: str, n_chunks: int, throughput_chunks: int, fusion: dict) -> dict:
    from sentence_transformers import SentenceTransformer

    from pipeline.search.embeddings import encode, ensure_embedding_model, load_embedder

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
    retriever = Retriever.load(root, embedding_model=model, options=RetrievalOptions(**fusion))
    questions = [q.question for q in load_squad(squad).questions][:300]
    latency = {}
    for name, weight, title in (("hybrid", fusion["dense_weight"], fusion["title_weight"]), ("bm25", 0.0, 0.0),
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
    plain = SentenceTransformer(ensure_embedding_model(model), device="cpu")  # float32, e5's passage prompt
    plain.encode_document(texts[:8], batch_size=32, show_progress_bar=False)  # warm, like build_index's model
    started = time.perf_counter()
    plain.encode_document(texts, batch_size=32, show_progress_bar=False)
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
    parser.add_argument("--scale", type=int, default=0, help="also run the scale part with this many chunks")
    parser.add_argument("--throughput-chunks", type=int, default=256)
    parser.add_argument("--parts", default="faquad,long,citizen", help="comma-separated: faquad, long, citizen")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    result = {"load_before": load_average()}

    def show(name: str, value) -> None:
        result[name] = value
        print(json.dumps({name: value}, ensure_ascii=False, indent=1), flush=True)
        if args.out:
            args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")

    defaults = RetrievalOptions()
    fusion = {"dense_weight": defaults.dense_weight, "title_weight": defaults.title_weight,
              "dense_floor": defaults.dense_floor}
    if "faquad" in parts:
        show("faquad", faquad(args.squad))
        fusion = {**result["faquad"]["best"], "dense_floor": result["faquad"]["dense_floor"]}
    if "long" in parts:
        show("long_documents", long_docs(args.squad, fusion))
    if "citizen" in parts:
        show("citizen_words", citizen_words(fusion))
    if args.scale:
        show("scale", scale(args.squad, E5, args.scale, args.throughput_chunks, fusion))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
