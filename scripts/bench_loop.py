"""Proof of the learning loop, on documents the reader never saw: citizens ask, vote, the job runs, they ask again.

Only FaQuAD's *held-out* articles (``pipeline.evaluation.answers.article_split``; the shipped reader was not trained on
them) take part, split by article into the *voted* documents and the *other* documents:

- ``voted``: half of the questions of the voted documents (stable hash), asked through the real answer path
  (``Oraculo.ask``), then 👍 when the answer's token F1 against the gold answers is >= 0.5, else 👎
  (``Oraculo.vote``) — simulated citizens give votes only, never the right answer. Under an abstention that
  quotes the closest passage the bot asks whether it answers: 👍 when a gold answer is written in what the
  citizen reads (the reply as the terminal prints it), else 👎; a bare "not found" has no buttons;
- ``new``: the other questions of the same documents, asked before and after, never voted on: does the
  retrained reader generalise, not only remember?
- ``other``: the questions of the other documents, never voted on: nothing may get worse there.

Then ``pipeline.loop.nightly.retrain_job`` runs once (export, index with the 👍 pairs, the reader's LoRA adapter
trained on the 👍 spans and 👎 negatives in a child process, evaluation, promotion, hot swap) and every part is
asked again by new citizens. Prints token F1 and exact match before/after per part, the job's duration and step
timings, and ``uptime``.

Example::

    python scripts/bench_loop.py --squad ../shared/data/faquad/train.json             # ~10 min on 2 cores
    python scripts/bench_loop.py --squad ../shared/data/faquad/train.json --no-train  # votes only: memory
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

from pipeline.evaluation.answers import article_split  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from bot.texts import render_answer_plain  # noqa: E402
from pipeline.evaluation.squad import load_squad  # noqa: E402
from pipeline.core.text import exact_match, normalize_answer, token_f1  # noqa: E402

LIKE_F1 = 0.5  # the simulated citizen's rule: 👍 when the answer matches the gold answer this well


def stable_half(question: str, seed: int = 0) -> bool:
    """Half of the questions, by a stable hash (the same split on every run); another ``seed`` draws another
    half (seed 0 is the split the README has reported since the first run)."""
    import hashlib

    key = question if seed == 0 else f"{seed}:{question}"
    return int(hashlib.md5(key.encode("utf-8")).hexdigest(), 16) % 2 == 0


def held_out_halves(data) -> tuple[set[str], set[str]]:
    """The two halves of FaQuAD's held-out articles: every other one, sorted by title (``--voted-half 0 / 1``)."""
    titles = sorted({q.title for q in data.questions if q.answers and article_split(q.title) == "heldout"})
    return set(titles[0::2]), set(titles[1::2])

def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def ask_all(service, questions, *, round_name: str, vote: bool, details: list | None = None) -> dict:
    f1s, ems, strategies, votes = [], [], Counter(), Counter()
    for n, q in enumerate(questions):
        result = service.ask(q.question, user_ref=f"{round_name}:{n}", channel="bench")
        text = "" if result.answer.abstained else result.answer.text
        f1 = token_f1(text, q.answers) if text else 0.0
        f1s.append(f1)
        ems.append(exact_match(text, q.answers) if text else 0.0)
        strategies[result.answer.strategy + ("/abstained" if result.answer.abstained else "")] += 1
        if details is not None:
            details.append({"round": round_name, "question": q.question, "answer": text, "f1": round(f1, 4),
                            "strategy": result.answer.strategy})
        if not vote:
            continue
        if result.answer.abstained and result.answer.closest is None:  # no 👍/👎 under a bare "not found"
            votes["none (abstained)"] += 1
            continue
        if result.answer.abstained:  # the closest passage, quoted: does what the citizen reads answer them?
            shown = f" {normalize_answer(render_answer_plain(result.answer))} "
            golds = [normalize_answer(gold) for gold in q.answers]
            choice = 1 if any(gold and f" {gold} " in shown for gold in golds) else -1
            kind = "passage "
        else:
            choice = 1 if f1 >= LIKE_F1 else -1
            kind = ""
        service.vote(interaction_id=result.interaction_id, user_ref=f"{round_name}:{n}", vote=choice)
        votes[kind + ("up" if choice > 0 else "down")] += 1
    n = max(len(questions), 1)
    return {"f1": round(sum(f1s) / n, 4), "exact_match": round(sum(ems) / n, 4), "n": len(questions),
            "strategies": dict(strategies), "votes": dict(votes)}


def corpus_as_documents(data, folder: Path) -> list:
    """Write each FaQuAD paragraph as a document (training reads its context from the documents folder) and
    return one chunk per paragraph, titled with its article (as ``paragraph_chunks``)."""
    from pipeline.documents.chunking import Chunk
    from pipeline.documents.load import load_documents

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
    parser.add_argument("--max-steps", type=int, default=60, help="optimiser steps of the job's reader training")
    parser.add_argument("--no-train", action="store_true", help="skip the training step (RETRAIN_TRAIN=false)")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--voted-half", type=int, choices=(0, 1), default=0,
                        help="which half of the held-out articles is voted on: 0 (reported in the README) or 1 (the "
                             "other half, where the nightly training's settings are chosen)")
    parser.add_argument("--split-seed", type=int, default=0,
                        help="which half of the voted documents' questions is voted on (0: the reported split; other "
                             "values draw other halves, to see how much one run's figures owe to the draw)")
    parser.add_argument("--details", type=Path, default=None, help="write every answer, before and after, here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from pipeline.serving.promote import build_candidate_index, promote
    from pipeline.loop.nightly import retrain_job
    from pipeline.service import Oraculo

    data = load_squad(args.squad)
    answered = [q for q in data.questions if q.answers and article_split(q.title) == "heldout"]
    voted_docs = held_out_halves(data)[args.voted_half]
    in_voted = [q for q in answered if q.title in voted_docs]
    voted = [q for q in in_voted if stable_half(q.question, args.split_seed)]
    new = [q for q in in_voted if not stable_half(q.question, args.split_seed)]
    other = [q for q in answered if q.title not in voted_docs]
    if args.limit:
        voted, new, other = voted[:args.limit], new[:args.limit], other[:args.limit]
    folder = args.data_dir or Path(tempfile.mkdtemp(prefix="oraculo-loop-"))
    chunks = corpus_as_documents(data, folder / "documents")
    settings = Settings(DATA_DIR=folder, DOCUMENTS_DIR=folder / "documents", RETRAIN_TRAIN=not args.no_train,
                        RETRAIN_MAX_STEPS=args.max_steps)
    # day 0 as `oraculo demo` leaves it: the documents indexed, with the QA pairs generated from them (offline),
    # whose template questions the index leaves out unless INDEX_GENERATED_QUESTIONS
    from pipeline.loop import jobs
    from pipeline.qa.records import qa_records

    jobs.generate_qa_job(settings)
    promote(settings, index=build_candidate_index(settings, chunks, qa_records(settings)))
    service = Oraculo.from_settings(settings)
    service.warm_up()

    details: list[dict] = []
    started = time.perf_counter()
    before = {"voted": ask_all(service, voted, round_name="day1", vote=True, details=details),
              "new": ask_all(service, new, round_name="day1-new", vote=False, details=details),
              "other": ask_all(service, other, round_name="day1-other", vote=False, details=details)}
    asking_s = time.perf_counter() - started
    load_before = uptime()
    job_started = time.perf_counter()
    # as every night: QA pairs generated again (nothing new here), 👍 pairs into the index, the reader retrained
    report = retrain_job(settings, trigger="bench", chunks=lambda: chunks, generate_qa=True)
    job_s = time.perf_counter() - job_started
    load_after = uptime()
    after = {"voted": ask_all(service, voted, round_name="day2", vote=False, details=details),
             "new": ask_all(service, new, round_name="day2-new", vote=False, details=details),
             "other": ask_all(service, other, round_name="day2-other", vote=False, details=details)}

    if args.details:
        args.details.write_text(json.dumps(details, ensure_ascii=False, indent=0), encoding="utf-8")
    print(f"{'part':10s} {'n':>5s} {'F1 before':>10s} {'F1 after':>9s} {'ΔF1':>7s} {'EM before':>10s} {'EM after':>9s}")
    for part in ("voted", "new", "other"):
        b, a = before[part], after[part]
        print(f"{part:10s} {b['n']:5d} {b['f1']:10.4f} {a['f1']:9.4f} {a['f1'] - b['f1']:+7.4f} "
              f"{b['exact_match']:10.4f} {a['exact_match']:9.4f}")
    print(f"voted documents: {sorted(voted_docs)}")
    print(f"votes: {before['voted']['votes']}; answers after: {after['voted']['strategies']}")
    print(f"job: {job_s:.1f} s ({', '.join(f'{s.name} {s.seconds:.1f}s' for s in report.steps)}); "
          f"promoted {report.promoted}; {report.reason}")
    print(f"asking round 1: {asking_s:.1f} s for {len(voted) + len(new) + len(other)} questions")
    print(f"uptime before job: {load_before}\nuptime after job:  {load_after}")
    print(json.dumps({"before": before, "after": after, "job_s": round(job_s, 1),
                      "steps": {s.name: s.seconds for s in report.steps}, "promoted": report.promoted,
                      "evaluation": report.metrics, "uptime_before": load_before, "uptime_after": load_after,
                      "voted_documents": sorted(voted_docs),
                      "settings": {"max_steps": args.max_steps, "train": not args.no_train,
                                   "voted_half": args.voted_half, "split_seed": args.split_seed}},
                     ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
