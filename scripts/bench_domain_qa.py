"""Do questions a local LLM writes about documents teach the reader those documents? Measured by document.

Two steps:

- ``write``: a local instruct GGUF writes ``--per-paragraph`` questions about each paragraph of the chosen
  FaQuAD articles (``--articles``: ``half0`` / ``half1``, the two halves of the held-out articles as
  ``scripts/bench_loop.py`` splits them, or ``train``, the articles the shipped reader trained on), greedy, with
  the prompt below. A pair is kept when its answer is found verbatim in the paragraph
  (``pipeline.training.reader_train.locate_answer``: case and accents aside), is at most MAX_ANSWER_WORDS words, is not
  written inside its own question, and the question is new for that paragraph (``--loose``: only the first rule,
  as the first measurement ran).
- ``train``: the nightly job's recipe on those questions (the shipped adapter continued ``--steps`` optimiser
  steps at lr 1e-4, batch 8, 3 rehearsal examples per question), then the reader's token F1 with the gold
  paragraph on the questions of each half of the held-out articles, and on the rehearsal guard.

Measured (README, "Ciclo de aprendizado", 3 seeds each): 73 questions about the tuning half of the held-out
articles raised F1 on those articles by +0.017 to +0.020; every other effect (the reported half's own questions,
questions about the whole held-out corpus, about the training articles) was within the seed-to-seed spread
(up to 0.04). Not built into the nightly job.

    python scripts/bench_domain_qa.py write --gguf qwen2.5-coder-1.5b-instruct-q4_k_m.gguf --articles half1 \
        --out half1.jsonl                                  # ~20 s per paragraph on 2 cores
    python scripts/bench_domain_qa.py train --questions half1.jsonl

``write``'s output: JSON lines ``{"kind": "llm_qa", "title", "paragraph", "question", "context",
"answer_start", "answer_text"}``, appended paragraph by paragraph (an interrupted run resumes; a row whose
``question`` is null marks a paragraph where nothing was kept).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.bench_loop import held_out_halves  # noqa: E402

SYSTEM = "Você cria perguntas de compreensão de leitura em português do Brasil. Responda somente com JSON."
USER = ("Texto:\n\"\"\"\n{text}\n\"\"\"\n\nEscreva {n} perguntas diferentes sobre fatos deste texto. Cada resposta "
        "deve ser um trecho curto (de 1 a 8 palavras) copiado exatamente do texto. Não repita a pergunta na "
        "resposta.\n"
        'Formato: {{"pairs": [{{"question": "...", "answer": "..."}}]}}')
MAX_ANSWER_WORDS = 12


FAQUAD = Path(__file__).resolve().parents[2] / "shared" / "data" / "faquad" / "train.json"


def kept_pairs(context: str, pairs: list[dict], *, loose: bool = False) -> list[dict]:
    """The pairs whose answer is found verbatim in ``context``; unless ``loose``, also short, not inside the
    question, one per question."""
    from pipeline.training.reader_train import locate_answer
    from pipeline.core.text import normalize_answer

    kept, seen = [], set()
    for pair in pairs:
        question, answer = pair["question"].strip(), pair["answer"].strip().strip(".;:").strip()
        folded_q = normalize_answer(question)
        if not answer or (not loose and (len(answer.split()) > MAX_ANSWER_WORDS or len(question.split()) < 3
                                         or folded_q in seen or normalize_answer(answer) in folded_q)):
            continue
        start = locate_answer(context, answer, None)
        if start is None:
            continue
        seen.add(folded_q)
        kept.append({"question": question, "answer_start": start, "answer_text": context[start:start + len(answer)]})
    return kept


def write(args) -> None:
    from pipeline.evaluation.answers import article_split
    from pipeline.llm.llamacpp import LlamaCppLLM
    from pipeline.qa.openai_compat import parse_pairs_json
    from pipeline.evaluation.squad import load_squad

    data = load_squad(args.squad)
    halves = held_out_halves(data)
    wanted = {"half0": lambda t: t in halves[0], "half1": lambda t: t in halves[1],
              "train": lambda t: article_split(t) == "train"}[args.articles]
    todo = [(i, text, title) for i, (text, title) in enumerate(zip(data.paragraphs, data.titles)) if wanted(title)]
    done = set()
    if args.out.exists():  # resume: the paragraphs already written
        done = {json.loads(line)["paragraph"] for line in args.out.read_text(encoding="utf-8").splitlines() if line}
    llm = LlamaCppLLM.from_file(args.gguf, n_threads=2)
    started, written = time.time(), 0
    with args.out.open("a", encoding="utf-8") as out:
        for n, (i, text, title) in enumerate(todo):
            if i in done:
                continue
            reply = llm.generate([{"role": "system", "content": SYSTEM},
                                  {"role": "user", "content": USER.format(text=text.strip(), n=args.per_paragraph)}],
                                 max_new_tokens=400)
            try:
                pairs = kept_pairs(text, parse_pairs_json(reply), loose=args.loose)
            except ValueError:
                pairs = []
            for pair in pairs:
                out.write(json.dumps({"kind": "llm_qa", "title": title, "paragraph": i, **pair, "context": text},
                                     ensure_ascii=False) + "\n")
            if not pairs:  # remembered as done, with nothing kept
                out.write(json.dumps({"kind": "llm_qa", "title": title, "paragraph": i, "question": None},
                                     ensure_ascii=False) + "\n")
            out.flush()
            written += len(pairs)
            print(f"{n + 1}/{len(todo)} {time.time() - started:.0f}s: {len(pairs)} kept ({written} in all)", flush=True)


def train(args) -> None:
    import random
    import tempfile
    from dataclasses import replace

    from pipeline.answering.reader import SHIPPED_ADAPTER, SpanReader
    from pipeline.loop.reader_job import (ReaderRunArgs, best_span_f1, guard_f1, nightly_train_args, rehearsal_guard,
                                     with_rehearsal)
    from pipeline.training.reader_train import QAExample, load_rehearsal, main as train_main
    from pipeline.evaluation.squad import load_squad

    data = load_squad(args.squad)
    rows = [json.loads(line) for line in args.questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    written = [QAExample(r["question"], r["context"], r["answer_start"], r["answer_text"]) for r in rows
               if r.get("question")]
    rng = random.Random(args.seed)
    if args.limit:
        rng.shuffle(written)
        written = written[:args.limit]
    recipe = replace(ReaderRunArgs(), max_steps=args.steps, seed=args.seed)  # the nightly job's
    rehearsal = load_rehearsal(SHIPPED_ADAPTER)
    examples, _ = with_rehearsal(written, rehearsal, replay=recipe.replay, rng=rng)
    out = Path(tempfile.mkdtemp(prefix="oraculo-domain-qa-")) / "adapter"
    train_main(nightly_train_args(recipe, out, examples, base="embedded", init_adapter=SHIPPED_ADAPTER))
    halves = held_out_halves(data)
    report = {"questions_written": len(written), "examples": len(examples)}
    for name, adapter in (("shipped", SHIPPED_ADAPTER), ("trained", out)):
        reader = SpanReader.load(adapter=adapter)
        report[name] = {f"half{h}": best_span_f1(reader, [(q.question, data.paragraphs[q.paragraph_id], q.answers)
                                                          for q in data.questions if q.answers and q.title in halves[h]])
                        for h in (0, 1)}
        report[name]["guard"] = guard_f1(reader, rehearsal_guard(rehearsal))
    print(json.dumps(report, ensure_ascii=False))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, default=FAQUAD, help="FaQuAD's train.json (SQuAD v1.1 format)")
    parser.add_argument("--seed", type=int, default=0)
    steps = parser.add_subparsers(dest="step", required=True)
    w = steps.add_parser("write", help="an LLM writes questions about the chosen articles")
    w.add_argument("--gguf", type=Path, required=True, help="a local instruct GGUF (Qwen2.5-Coder-1.5B here)")
    w.add_argument("--articles", choices=("half0", "half1", "train"), required=True)
    w.add_argument("--out", type=Path, required=True)
    w.add_argument("--per-paragraph", type=int, default=4)
    w.add_argument("--loose", action="store_true", help="keep every answer found in the paragraph")
    t = steps.add_parser("train", help="the nightly recipe on those questions, measured on both halves")
    t.add_argument("--questions", type=Path, required=True)
    t.add_argument("--steps", type=int, default=60)
    t.add_argument("--limit", type=int, default=0, help="at most this many questions (a random sample)")
    args = parser.parse_args(argv)
    write(args) if args.step == "write" else train(args)


if __name__ == "__main__":
    main()
