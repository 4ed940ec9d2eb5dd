"""Benchmark QA generation: offline pairs per document and % valid on FaQuAD, throughput against the fake
OpenAI-compatible server (1 vs 8 requests in flight), and the retrieval nDCG@10 lift from indexing generated
questions (the retrieval evaluation's own corpus, index and metrics: ``pipeline.evaluation.retrieval``).

    python scripts/bench_qa.py --squad ../shared/data/faquad/train.json [--latency 0.25] [--no-lift] [--json]

Documents are FaQuAD's articles (paragraphs joined by blank lines, one document per title). Timings depend on
the machine's load: the script prints ``os.getloadavg()`` next to them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pipeline.documents.load import Document  # noqa: E402
from pipeline.qa.generate import OfflineQAGenerator, OpenAIQAGenerator, generate_qa, pairs_from_result  # noqa: E402
from pipeline.qa.validate import validate_records  # noqa: E402


def faquad_documents(squad: Path) -> list[Document]:
    data = json.loads(squad.read_text(encoding="utf-8"))["data"]
    by_title: dict[str, list[str]] = defaultdict(list)
    for article in data:
        for paragraph in article["paragraphs"]:
            by_title[article["title"]].append(paragraph["context"].strip())
    docs = []
    for title, paragraphs in by_title.items():
        text = "\n\n".join(paragraphs)
        name = "".join(c if c.isalnum() else "_" for c in title.upper())
        docs.append(Document(name=name, title=title, text=text, path=squad,
                             sha256=hashlib.sha256(text.encode()).hexdigest()))
    return docs


def offline_figures(docs: list[Document]) -> dict:
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        summary = generate_qa(docs, out_dir=Path(out), generator="offline")
        seconds = time.perf_counter() - started
        kinds: dict[str, int] = defaultdict(int)
        for path in Path(out).glob("*.jsonl"):
            if path.name.endswith(".invalid.jsonl"):
                continue
            for line in path.read_text(encoding="utf-8").splitlines():
                kinds[next((t[5:] for t in json.loads(line)["tags"] if t.startswith("kind:")), "?")] += 1
    return {"documents": len(docs), "pairs": summary.n_pairs, "valid": summary.n_valid,
            "pairs_per_document": round(summary.n_pairs / len(docs), 2),
            "valid_per_document": round(summary.n_valid / len(docs), 2),
            "valid_pct": round(summary.valid_pct, 1), "seconds": round(seconds, 2), "kinds": dict(kinds)}


def throughput(docs: list[Document], *, concurrency: int, latency: float) -> dict:
    from tests.fakes.openai_server import FakeOpenAI, quoting_reply

    with FakeOpenAI(default=quoting_reply, latency=latency) as fake, tempfile.TemporaryDirectory() as out:
        gen = OpenAIQAGenerator(base_url=fake.base_url, api_key="sk-bench", model="fake", timeout_s=30,
                                concurrency=concurrency)
        started = time.perf_counter()
        summary = generate_qa(docs, out_dir=Path(out), generator=gen)
        seconds = time.perf_counter() - started
        return {"concurrency": concurrency, "latency_s": latency, "requests": len(fake.requests),
                "max_in_flight": fake.max_in_flight, "seconds": round(seconds, 2),
                "chunks_per_s": round(summary.chunks_asked / seconds, 2),
                "pairs_per_s": round(summary.n_pairs / seconds, 2), "valid_pct": round(summary.valid_pct, 1),
                "tokens": summary.usage["total_tokens"], "errors": len(summary.errors)}


def retrieval_lift(squad: Path) -> dict:
    """nDCG@10 of the retrieval evaluation without and with offline questions generated from its paragraphs."""
    from pipeline.evaluation.retrieval import corpus_chunks, rank_questions, retrieval_metrics
    from pipeline.search.index import build_index
    from pipeline.search.retrieve import RetrievalOptions, Retriever
    from pipeline.settings import Settings
    from pipeline.evaluation.squad import load_squad

    settings = Settings()
    data = load_squad(squad)
    chunks = corpus_chunks(data)
    gen = OfflineQAGenerator()
    records = []
    for chunk in chunks:  # each paragraph is its own document and chunk, as in the evaluation
        doc = Document(name=chunk.document, title=chunk.title, text=chunk.text, path=squad,
                       sha256=hashlib.sha256(chunk.text.encode()).hexdigest())
        pairs = [p.to_record() for p in pairs_from_result(doc, chunk, gen.generate_chunk(doc, chunk), gen.name)]
        records += [r for r, reasons in validate_records(pairs, doc.text) if not reasons]
    specific = [r for r in records if "kind:acronym" not in r["tags"]]
    report = {"n_paragraphs": len(chunks), "n_queries": len(data.questions), "n_generated_questions": len(records),
              "n_without_acronym_questions": len(specific)}
    with tempfile.TemporaryDirectory() as folder:  # one folder: later builds reuse the vectors of earlier ones
        for label, qa in (("without", []), ("with", records), ("with_no_acronym", specific)):
            build_index(chunks, qa_records=qa, embedding_model=settings.embedding_model, index_root=Path(folder),
                        embedding_dtype=settings.embedding_dtype)
            retriever = Retriever.load(Path(folder), embedding_model=settings.embedding_model,
                                       options=RetrievalOptions.from_settings(settings),
                                       embedding_dtype=settings.embedding_dtype)
            ranks, _ = rank_questions(retriever, data.questions)
            metrics = retrieval_metrics(ranks)
            report[f"ndcg@10_{label}"] = round(metrics["ndcg@10"], 4)
            report[f"recall@1_{label}"] = round(metrics["recall@1"], 4)
    report["ndcg@10_lift"] = round(report["ndcg@10_with"] - report["ndcg@10_without"], 4)
    report["ndcg@10_lift_no_acronym"] = round(report["ndcg@10_with_no_acronym"] - report["ndcg@10_without"], 4)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, default=Path("../shared/data/faquad/train.json"))
    parser.add_argument("--latency", type=float, default=0.25, help="seconds the fake server takes per reply")
    parser.add_argument("--no-lift", action="store_true", help="skip the nDCG@10 lift (builds two indexes)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    docs = faquad_documents(args.squad)
    report = {"load_before": [round(x, 2) for x in os.getloadavg()], "offline": offline_figures(docs)}
    print("offline:", json.dumps(report["offline"], ensure_ascii=False), flush=True)
    report["throughput"] = [throughput(docs, concurrency=c, latency=args.latency) for c in (1, 8)]
    for row in report["throughput"]:
        print("fake server:", json.dumps(row), flush=True)
    if not args.no_lift:
        report["retrieval"] = retrieval_lift(args.squad)
        print("retrieval:", json.dumps(report["retrieval"]), flush=True)
    report["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print("load average (1, 5, 15 min) before:", report["load_before"], "after:", report["load_after"])
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
