"""Proof of the learning loop: simulated citizens on FaQuAD ask, vote, the nightly job runs, they ask again.

The questions are split by article (``pipeline.eval_answers.article_split``): the *train* articles' questions
are the feedback part (asked through the real answer path ``Oraculo.ask``, then 👍 when the answer's token F1
against the gold answers is >= 0.5, else 👎, through ``Oraculo.vote``), the *held-out* articles' questions are
asked but never voted on. Then ``pipeline.retrain.retrain_job`` runs once (export, index with the 👍 pairs,
LoRA training in a child process, evaluation, promotion) and both parts are asked again by new citizens.
Prints token F1 and exact match before/after per part, the job's duration and step timings, and ``uptime``.

Example::

    python scripts/bench_loop.py --squad ../shared/data/faquad/train.json             # ~10 min on 2 cores
    python scripts/bench_loop.py --squad ../shared/data/faquad/train.json --limit 100 --no-train   # quick
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.eval_answers import article_split  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.squad import exact_match, load_squad, token_f1  # noqa: E402

LIKE_F1 = 0.5  # the simulated citizen's rule: 👍 when the answer matches the gold answer this well


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def ask_all(service, questions, *, round_name: str, vote: bool) -> dict:
    f1s, ems, strategies, votes = [], [], Counter(), Counter()
    for n, q in enumerate(questions):
        result = service.ask(q.question, user_ref=f"{round_name}:{n}", channel="bench")
        text = "" if result.answer.abstained else result.answer.text
        f1 = token_f1(text, q.answers) if text else 0.0
        f1s.append(f1)
        ems.append(exact_match(text, q.answers) if text else 0.0)
        strategies[result.answer.strategy + ("/abstained" if result.answer.abstained else "")] += 1
        if vote:
            choice = 1 if f1 >= LIKE_F1 else -1
            service.vote(interaction_id=result.interaction_id, user_ref=f"{round_name}:{n}", vote=choice)
            votes["up" if choice > 0 else "down"] += 1
    n = max(len(questions), 1)
    return {"f1": round(sum(f1s) / n, 4), "exact_match": round(sum(ems) / n, 4), "n": len(questions),
            "strategies": dict(strategies), "votes": dict(votes)}


def corpus_as_documents(data, folder: Path) -> list:
    """Write each FaQuAD paragraph as a document (training reads its context from the documents folder) and
    return one chunk per paragraph, titled with its article (as ``paragraph_chunks``)."""
    from pipeline.chunking import Chunk
    from pipeline.documents import load_documents

    folder.mkdir(parents=True, exist_ok=True)
    titles = {}
    for i, (text, title) in enumerate(zip(data.paragraphs, data.titles)):
        (folder / f"p{i:03d}.txt").write_text(text.strip() + "\n", encoding="utf-8")
        titles[f"p{i:03d}"] = title or "squad"
    return [Chunk(id=f"{doc.name}:0-{len(doc.text)}", document=doc.name, title=titles[doc.name], text=doc.text,
                  start=0, end=len(doc.text)) for doc in load_documents(folder)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--squad", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=0, help="questions per part (0 = all)")
    parser.add_argument("--max-steps", type=int, default=8, help="LoRA steps of the job's training")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--max-examples", type=int, default=32, help="training/validation examples sampled")
    parser.add_argument("--no-train", action="store_true", help="skip the LoRA step (RETRAIN_TRAIN=false)")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from pipeline.promote import build_candidate_index, promote
    from pipeline.retrain import retrain_job
    from pipeline.service import Oraculo

    data = load_squad(args.squad)
    answered = [q for q in data.questions if q.answers]
    feedback = [q for q in answered if article_split(q.title) == "train"]
    heldout = [q for q in answered if article_split(q.title) == "heldout"]
    if args.limit:
        feedback, heldout = feedback[:args.limit], heldout[:args.limit]
    folder = args.data_dir or Path(tempfile.mkdtemp(prefix="oraculo-loop-"))
    chunks = corpus_as_documents(data, folder / "documents")
    settings = Settings(DATA_DIR=folder, RETRAIN_TRAIN=not args.no_train, RETRAIN_MAX_STEPS=args.max_steps,
                        RETRAIN_BATCH_SIZE=args.batch_size, RETRAIN_MAX_EXAMPLES=args.max_examples)
    promote(settings, index=build_candidate_index(settings, chunks, []))  # day 0: the documents only
    service = Oraculo.from_settings(settings)
    service.warm_up()

    started = time.perf_counter()
    before = {"feedback": ask_all(service, feedback, round_name="day1", vote=True),
              "heldout": ask_all(service, heldout, round_name="day1-heldout", vote=False)}
    asking_s = time.perf_counter() - started
    load_before = uptime()
    job_started = time.perf_counter()
    report = retrain_job(settings, trigger="bench", chunks=lambda: chunks)
    job_s = time.perf_counter() - job_started
    load_after = uptime()
    after = {"feedback": ask_all(service, feedback, round_name="day2", vote=False),
             "heldout": ask_all(service, heldout, round_name="day2-heldout", vote=False)}

    print(f"{'part':10s} {'n':>5s} {'F1 before':>10s} {'F1 after':>9s} {'ΔF1':>7s} {'EM before':>10s} {'EM after':>9s}")
    for part in ("feedback", "heldout"):
        b, a = before[part], after[part]
        print(f"{part:10s} {b['n']:5d} {b['f1']:10.4f} {a['f1']:9.4f} {a['f1'] - b['f1']:+7.4f} "
              f"{b['exact_match']:10.4f} {a['exact_match']:9.4f}")
    print(f"votes: {before['feedback']['votes']}; answers after: {after['feedback']['strategies']}")
    print(f"job: {job_s:.1f} s ({', '.join(f'{s.name} {s.seconds:.1f}s' for s in report.steps)}); "
          f"promoted {report.promoted}; {report.reason}")
    print(f"asking round 1: {asking_s:.1f} s for {len(feedback) + len(heldout)} questions")
    print(f"uptime before job: {load_before}\nuptime after job:  {load_after}")
    print(json.dumps({"before": before, "after": after, "job_s": round(job_s, 1),
                      "steps": {s.name: s.seconds for s in report.steps}, "promoted": report.promoted,
                      "evaluation": report.metrics, "uptime_before": load_before, "uptime_after": load_after,
                      "settings": {"max_steps": args.max_steps, "batch_size": args.batch_size,
                                   "max_examples": args.max_examples, "train": not args.no_train}},
                     ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
