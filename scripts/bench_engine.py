"""Answers through an engine (llama-cpp-python's OpenAI-compatible server) vs in-process llama.cpp, on this machine.

Three measurements, all with the embedded SmolLM2 GGUF and the RAG prompt of real retrieved passages:

1. ``inprocess``: ``LlamaCppLLM.stream`` in this process (LLM_BACKEND=llamacpp);
2. ``server``: ``OpenAIChatLLM.stream`` against ``python -m pipeline.llm.llamacpp serve`` on 127.0.0.1
   (LLM_BACKEND=openai), same prompts, the two alternated question by question so that the shared CPU's noise
   falls on both; p50/p95 of the whole answer and of the time to the first streamed piece;
3. ``bot``: ``--users`` concurrent citizens through the real bot (``scripts/load_bot.py``: fake Bot API, real
   service, ANSWER_STRATEGY=generative) answering through the server.

Keep it short on a shared 2-core box (the defaults take a few minutes)::

    python scripts/bench_engine.py --questions 12 --users 20 --user-questions 1 --index-from data

The server gets ``--threads`` threads, and so does the in-process model. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--questions", type=int, default=12, help="questions answered by each of the two paths")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--users", type=int, default=20, help="concurrent citizens through the bot (0: skip)")
    p.add_argument("--user-questions", type=int, default=1, help="questions per citizen")
    p.add_argument("--index-from", type=Path, help="a DATA_DIR whose index/ and data_qa/ are reused")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def quantiles(values: list[float]) -> dict:
    values = sorted(values)
    q = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {"p50_ms": round(q[49], 1), "p95_ms": round(q[94], 1), "n": len(values)}


def timed_stream(llm, messages, max_new_tokens: int) -> tuple[float, float | None, int]:
    started = time.perf_counter()
    first, pieces = None, 0
    for _ in llm.stream(messages, max_new_tokens=max_new_tokens):
        first = first or time.perf_counter()
        pieces += 1
    end = time.perf_counter()
    return (end - started) * 1000, None if first is None else (first - started) * 1000, pieces


def prepare_data(args) -> Path:
    from pipeline.loop.jobs import ensure_index
    from pipeline.settings import Settings

    data_dir = Path(tempfile.mkdtemp(prefix="oraculo-engine-"))
    if args.index_from:
        for name in ("index", "data_qa"):
            if (args.index_from / name).exists():
                shutil.copytree(args.index_from / name, data_dir / name)
    ensure_index(Settings(DATA_DIR=data_dir, DOCUMENTS_DIR="sample"))
    return data_dir


def compare(args, data_dir: Path, base_url: str) -> dict:
    from pipeline.llm.prompt import build_messages
    from pipeline.qa.records import qa_records
    from pipeline.llm.llamacpp import LlamaCppLLM
    from pipeline.llm.resolve import resolve_gguf
    from pipeline.llm.remote import OpenAIChatLLM
    from pipeline.search.retrieve import Retriever
    from pipeline.settings import Settings

    settings = Settings(DATA_DIR=data_dir, DOCUMENTS_DIR="sample")
    retriever = Retriever.from_settings(settings)
    questions = [r["question"] for r in qa_records(settings) if r.get("question")]
    random.Random(args.seed).shuffle(questions)
    prompts = [build_messages(q, retriever.search(q, settings.top_k)) for q in questions[:args.questions]]
    local = LlamaCppLLM.from_file(resolve_gguf("embedded"), n_threads=args.threads)
    remote = OpenAIChatLLM(base_url=base_url, api_key=None, model="embedded", timeout_s=120, max_retries=0)
    for llm in (local, remote):  # warm both (first prompt evaluation, connection)
        timed_stream(llm, prompts[0], 4)
    results = {"inprocess": {"total": [], "first": [], "pieces": 0}, "server": {"total": [], "first": [], "pieces": 0}}
    for i, messages in enumerate(prompts):
        order = [("inprocess", local), ("server", remote)]
        for name, llm in (order if i % 2 == 0 else order[::-1]):
            total, first, pieces = timed_stream(llm, messages, args.max_new_tokens)
            results[name]["total"].append(total)
            if first is not None:
                results[name]["first"].append(first)
            results[name]["pieces"] += pieces
    return {name: {"answer": quantiles(r["total"]), "first_piece": quantiles(r["first"]),
                   "pieces_per_answer": round(r["pieces"] / max(1, len(r["total"])), 1)}
            for name, r in results.items()}


def through_bot(args, data_dir: Path, base_url: str) -> dict:
    import asyncio

    import scripts.load_bot as load_bot

    os.environ.update({"LLM_BACKEND": "openai", "OPENAI_BASE_URL": base_url, "OPENAI_ANSWER_MODEL": "embedded",
                       "OPENAI_ANSWER_TIMEOUT_S": "300", "MAX_NEW_TOKENS": str(args.max_new_tokens)})
    bot_args = load_bot.parse_args(["--users", str(args.users), "--questions", str(args.user_questions),
                                    "--failure-rate", "0", "--think-s", "0", "--ramp-s", "1",
                                    "--strategy", "generative", "--index-from", str(data_dir),
                                    "--seed", str(args.seed)])
    report = asyncio.run(load_bot.run(bot_args))
    keys = ("users", "questions_sent", "answered", "exact", "p50_s", "p95_s", "max_s", "service_p50_ms",
            "service_p95_ms", "wall_s", "throughput_qps", "peak_rss_mb")
    return {k: report[k] for k in keys}


def main(argv=None) -> int:
    from tests.fixtures.llamacpp_server import LlamaCppServer

    args = parse_args(argv)
    data_dir = prepare_data(args)
    report = {"cpus": os.cpu_count(), "threads": args.threads, "max_new_tokens": args.max_new_tokens}
    try:
        with LlamaCppServer(threads=args.threads, log=data_dir / "server.log") as server:
            report.update(compare(args, data_dir, server.base_url))
            if args.users:
                report["bot"] = through_bot(args, data_dir, server.base_url)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    report["load_average"] = os.getloadavg()
    print(json.dumps(report, ensure_ascii=False, indent=1))
    print(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
