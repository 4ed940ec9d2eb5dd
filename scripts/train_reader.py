"""Train the shipped span-reader adapter (``pipeline/answering/reader_adapter/``) and report it on held-out documents.

Data (see ``../shared/data``): machine-translated SQuAD 2.0 dev in Portuguese (answerable questions with their
answers re-located in the context, and unanswerable ones), the SQuAD 1.1 Portuguese sample, and FaQuAD's
``train`` articles (``pipeline.evaluation.answers.article_split``), FaQuAD upsampled and each of its questions also
paired with another paragraph of the same document as an on-topic "no answer here". FaQuAD's ``heldout``
articles and a few SQuAD 2.0 articles are never trained on: they are where the reader is measured.

    python scripts/train_reader.py --output pipeline/answering/reader_adapter --report reader_train.json

Prints (and writes with ``--report``) the data counts, the training curve and, on the gold paragraphs of the
held-out FaQuAD articles, token F1 / EM with and without abstention.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.evaluation.answers import article_split  # noqa: E402
from pipeline.training.reader_train import (REHEARSAL_FILE, QAExample, ReaderTrainArgs, example_from_record,  # noqa: E402
                                   hard_negatives, main, retrieval_negatives, squad_examples)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def squad_heldout(title: str) -> bool:
    """About one SQuAD 2.0 article in seven is kept for calibration (stable hash of the title)."""
    return int(hashlib.md5(title.encode("utf-8")).hexdigest(), 16) % 7 == 0


def article_contexts(path: Path, titles) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Paragraphs by article and the article of each paragraph, for the given titles of a SQuAD-style file."""
    group_of, contexts = {}, {}
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        if article["title"] in titles:
            for p in article["paragraphs"]:
                group_of[p["context"]] = article["title"]
                contexts.setdefault(article["title"], []).append(p["context"])
    return contexts, group_of


def faquad_examples(path: Path, split: str, rng: random.Random,
                    negatives: str = "random") -> tuple[list[QAExample], list[QAExample]]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    titles = {a["title"] for a in data if article_split(a["title"]) == split}
    examples = squad_examples(path, articles=titles)
    contexts, group_of = article_contexts(path, titles)
    if negatives == "retrieval":
        return examples, retrieval_negatives(examples, contexts, group_of)
    return examples, hard_negatives(examples, contexts, group_of, rng)


def gold_eval(reader, examples: list[QAExample]) -> dict:
    from pipeline.core.text import exact_match, token_f1

    f1, em, margins_pos, margins_neg, times = [], [], [], [], []
    for ex in examples:
        started = time.perf_counter()
        spans = reader.read(ex.question, [ex.context], top=1)
        times.append(time.perf_counter() - started)
        if ex.answer_start is None:
            margins_neg.append(spans[0].margin if spans else -99.0)
            continue
        text = spans[0].text if spans else ""
        f1.append(token_f1(text, [ex.answer_text]))
        em.append(exact_match(text, [ex.answer_text]))
        margins_pos.append(spans[0].margin if spans else -99.0)
    mean = lambda xs: round(sum(xs) / len(xs), 4) if xs else None  # noqa: E731
    return {"f1": mean(f1), "exact_match": mean(em), "n": len(f1), "n_unanswerable": len(margins_neg),
            "margins_answerable": margins_pos, "margins_unanswerable": margins_neg,
            "ms_per_question": round(1000 * sum(times) / max(len(times), 1), 1)}


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("pipeline/answering/reader_adapter"))
    parser.add_argument("--report", type=Path)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--max-unanswerable", type=int, default=3000)
    parser.add_argument("--max-answerable", type=int, default=100000)
    parser.add_argument("--faquad-repeat", type=int, default=2)
    parser.add_argument("--max-minutes", type=float)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--negatives", choices=("random", "retrieval"), default="random",
                        help="on-topic negatives: another paragraph of the same article at random, or the one that "
                             "matches the question best (TF-IDF) without the answer (also for SQuAD's articles)")
    parser.add_argument("--evaluate-only", action="store_true", help="only evaluate the adapter at --output")
    parser.add_argument("--write-rehearsal", type=int, default=0, metavar="N",
                        help="only write N examples of the training mix to OUTPUT/rehearsal.jsonl (no training)")
    parser.add_argument("--init-adapter", type=Path, help="continue this adapter (a second pass) instead of a new one")
    parser.add_argument("--citizen-style", type=Path, metavar="JSONL",
                        help="add the citizen-style examples of scripts/make_citizen_style.py (paraphrased questions "
                             "of the training articles, synthetic tables) to the mix")
    parser.add_argument("--citizen-repeat", type=int, default=1)
    return parser.parse_args(argv)


def training_examples(args: argparse.Namespace, rng: random.Random) -> tuple[list[QAExample], dict]:
    """The training mix (shuffled) and its counts."""
    stats: dict = {}
    v2 = DATA / "squad_pt" / "squad-v2.0-pt-dev.json"
    titles = [a["title"] for a in json.loads(v2.read_text(encoding="utf-8"))["data"]]
    held_squad = [t for t in titles if squad_heldout(t)]
    squad = squad_examples(v2, exclude=held_squad, stats=stats)
    squad += squad_examples(DATA / "squad_pt" / "squad-v1.1-pt-sample.json", stats=stats)
    answerable = [e for e in squad if e.answer_start is not None]
    unanswerable = [e for e in squad if e.answer_start is None]
    rng.shuffle(answerable)
    rng.shuffle(unanswerable)
    answerable, unanswerable = answerable[:args.max_answerable], unanswerable[:args.max_unanswerable]
    faquad, faquad_neg = faquad_examples(DATA / "faquad" / "train.json", "train", rng, args.negatives)
    squad_neg: list[QAExample] = []
    if args.negatives == "retrieval":  # SQuAD's articles give on-topic negatives too
        for path, titles_of in ((v2, [t for t in titles if t not in held_squad]),
                                (DATA / "squad_pt" / "squad-v1.1-pt-sample.json", None)):
            if titles_of is None:
                titles_of = [a["title"] for a in json.loads(path.read_text(encoding="utf-8"))["data"]]
            contexts, group_of = article_contexts(path, set(titles_of))
            squad_neg += retrieval_negatives([e for e in answerable if e.context in group_of], contexts, group_of)
        rng.shuffle(squad_neg)
        squad_neg = squad_neg[:args.max_unanswerable]
    citizen = citizen_style_examples(args.citizen_style) if args.citizen_style else []
    examples = (answerable + unanswerable + faquad * args.faquad_repeat + faquad_neg + squad_neg
                + citizen * args.citizen_repeat)
    rng.shuffle(examples)
    counts = {"init_adapter": str(args.init_adapter) if args.init_adapter else None, "seed": args.seed,
              "squad_answerable": len(answerable), "squad_unanswerable": len(unanswerable),
              "faquad_train_questions": len(faquad), "faquad_repeat": args.faquad_repeat,
              "faquad_hard_negatives": len(faquad_neg), "negatives": args.negatives,
              "squad_retrieval_negatives": len(squad_neg),
              "citizen_style": {"file": str(args.citizen_style) if args.citizen_style else None,
                                "answerable": sum(e.answer_start is not None for e in citizen),
                                "unanswerable": sum(e.answer_start is None for e in citizen),
                                "repeat": args.citizen_repeat},
              "total": len(examples), "relocation": stats,
              "squad_heldout_articles": held_squad}
    return examples, counts


def citizen_style_examples(path: Path) -> list[QAExample]:
    """The examples of ``scripts/make_citizen_style.py``'s JSON lines; ValueError on a line that is not one (or
    whose answer is not at its offset): training data, unlike the nightly rehearsal sample, must be whole."""
    examples = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").split("\n"), start=1):
        if line.strip():
            try:
                examples.append(example_from_record(json.loads(line)))
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: {exc}") from None
    return examples


def citizen_dev_examples() -> list[QAExample]:
    """The citizen-style calibration set (scripts/bench_data/citizen_dev): its 80 questions on their whole document,
    and its on-topic unanswerable questions (``unanswerable.json`` lists them in document order, the same number
    for each) on theirs."""
    from pipeline.evaluation.answers import load_unanswerable

    folder = Path(__file__).resolve().parent / "bench_data" / "citizen_dev"
    examples = squad_examples(folder / "questions.json")
    documents = [p["context"] for a in json.loads((folder / "questions.json").read_text(encoding="utf-8"))["data"]
                 for p in a["paragraphs"]]
    unanswerable = load_unanswerable(folder / "unanswerable.json")
    if len(unanswerable) % len(documents):
        raise ValueError(f"{folder / 'unanswerable.json'}: expected the same number of questions per document")
    per_document = len(unanswerable) // len(documents)
    return examples + [QAExample(q, documents[i // per_document]) for i, q in enumerate(unanswerable)]


def write_rehearsal(examples: list[QAExample], folder: Path, n: int, rng: random.Random) -> Path:
    """A sample of the training mix, kept beside the adapter: the nightly runs replay it among the citizens'
    votes so that a few votes do not pull the reader away from what it learned first (rehearsal)."""
    from pipeline.core.files import atomic_file

    sample = rng.sample(examples, min(n, len(examples)))
    # the answer as the context writes it (the datasets' answers may differ in case from the text they point at)
    lines = [json.dumps({"question": e.question, "context": e.context, "answer_start": e.answer_start,
                         "answer_text": None if e.answer_start is None
                         else e.context[e.answer_start:e.answer_start + len(e.answer_text)]},
                        ensure_ascii=False) for e in sample]
    path = Path(folder) / REHEARSAL_FILE
    with atomic_file(path) as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def run(args: argparse.Namespace) -> dict:
    if args.evaluate_only:  # nothing to build: the adapter at --output is only measured
        return {"evaluation": evaluate(args.output)}
    rng = random.Random(args.seed)
    examples, counts = training_examples(args, rng)
    if args.write_rehearsal:
        path = write_rehearsal(examples, args.output, args.write_rehearsal, rng)
        print(f"{args.write_rehearsal} rehearsal examples written to {path}")
        return counts
    print(json.dumps(counts, ensure_ascii=False), flush=True)
    report = main(ReaderTrainArgs(output_dir=args.output, examples=examples, epochs=args.epochs, lr=args.lr,
                                  batch_size=args.batch_size, max_length=args.max_length, seed=args.seed,
                                  precision=args.precision, answer_windows_only=True, init_adapter=args.init_adapter,
                                  max_seconds=args.max_minutes * 60 if args.max_minutes else None))
    print(json.dumps(report.__dict__, ensure_ascii=False), flush=True)

    evaluation = evaluate(args.output)
    result = {"data": counts, "training": report.__dict__, "evaluation": evaluation}
    if args.report:
        args.report.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    return result


def evaluate(adapter: Path) -> dict:
    """The reader with ``adapter`` on the gold paragraphs of held-out FaQuAD and SQuAD-pt articles."""
    from pipeline.answering.reader import SpanReader

    v2 = DATA / "squad_pt" / "squad-v2.0-pt-dev.json"
    held_squad = [a["title"] for a in json.loads(v2.read_text(encoding="utf-8"))["data"] if squad_heldout(a["title"])]
    reader = SpanReader.load(adapter=adapter)
    held_faquad, held_neg = faquad_examples(DATA / "faquad" / "train.json", "heldout", random.Random(1))
    held_v2 = squad_examples(v2, articles=held_squad)
    _, held_hard = faquad_examples(DATA / "faquad" / "train.json", "heldout", random.Random(1), "retrieval")
    evaluation = {"faquad_heldout_gold": gold_eval(reader, held_faquad + held_neg),
                  "faquad_heldout_retrieval_negatives": gold_eval(reader, held_hard),
                  "squad_heldout_gold": gold_eval(reader, held_v2[:600]),
                  "citizen_dev_document": gold_eval(reader, citizen_dev_examples())}
    positives = evaluation["faquad_heldout_gold"]["margins_answerable"]
    cut = sorted(positives)[len(positives) // 10] if positives else 0.0  # answers 90% of FaQuAD's questions
    citizen = evaluation["citizen_dev_document"]
    # one margin threshold for both domains: the share of citizen-style questions it answers
    citizen["answered_at_faquad_90pct"] = round(sum(m >= cut for m in citizen["margins_answerable"])
                                                / max(len(citizen["margins_answerable"]), 1), 4)
    for name in ("faquad_heldout_gold", "faquad_heldout_retrieval_negatives", "citizen_dev_document"):
        # on-topic negatives refused when the margin threshold answers 90% of the answerable questions
        negatives = evaluation[name]["margins_unanswerable"]
        evaluation[name]["refused_at_90pct_answered"] = round(sum(m < cut for m in negatives) / max(len(negatives), 1), 4)
    for name, ev in evaluation.items():
        print(name, {k: v for k, v in ev.items() if not k.startswith("margins")}, flush=True)
    return evaluation


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    run(parse())
