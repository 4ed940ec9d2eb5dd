"""Questions a local instruct LLM writes about the paragraphs of FaQuAD's *training* articles, for the reader.

Why: on FaQuAD's held-out articles (by document), 60 optimiser steps from the shipped reader on ~60-70
LLM-written questions about three held-out articles (plus 3x rehearsal) raised the reader's F1 with the gold
paragraph by +0.009 to +0.018 on *both* halves of the held-out articles, whichever half the questions were
written on, while the same steps on the rehearsal mix alone gave +0.003 / -0.015 (README, "Ciclo de
aprendizado"). LLM-written questions adapt the reader to the domain (Brazilian institutional text), not to the
documents they were written on. This script writes such questions on the training articles only (never a
held-out one: ``pipeline.eval_answers.article_split``), for a later training pass to use.

Each paragraph is sent once with the prompt below (greedy); a pair is kept when its answer is found verbatim in
the paragraph (``pipeline.reader_train.locate_answer``: case and accents aside), is at most MAX_ANSWER_WORDS
words, is not written inside its own question, and the question is new for that paragraph.

    python scripts/make_domain_qa.py --gguf qwen2.5-coder-1.5b-instruct-q4_k_m.gguf \\
        --squad ../shared/data/faquad/train.json --out domain_qa.jsonl

Output: JSON lines ``{"kind": "llm_qa", "title", "paragraph", "question", "context", "answer_start",
"answer_text"}``, appended paragraph by paragraph (an interrupted run resumes where it stopped).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SYSTEM = "Você cria perguntas de compreensão de leitura em português do Brasil. Responda somente com JSON."
USER = ("Texto:\n\"\"\"\n{text}\n\"\"\"\n\nEscreva {n} perguntas diferentes sobre fatos deste texto. Cada resposta "
        "deve ser um trecho curto (de 1 a 8 palavras) copiado exatamente do texto. Não repita a pergunta na "
        "resposta.\n"
        'Formato: {{"pairs": [{{"question": "...", "answer": "..."}}]}}')
MAX_ANSWER_WORDS = 12


def kept_pairs(context: str, pairs: list[dict]) -> list[dict]:
    """The pairs whose answer is a short verbatim span of ``context``, not inside the question, one per question."""
    from pipeline.reader_train import locate_answer
    from pipeline.squad import normalize_answer

    kept, seen = [], set()
    for pair in pairs:
        question, answer = pair["question"].strip(), pair["answer"].strip().strip(".;:").strip()
        folded_q = normalize_answer(question)
        if (not answer or len(answer.split()) > MAX_ANSWER_WORDS or len(question.split()) < 3
                or folded_q in seen or normalize_answer(answer) in folded_q):
            continue
        start = locate_answer(context, answer, None)
        if start is None:
            continue
        seen.add(folded_q)
        kept.append({"question": question, "answer_start": start, "answer_text": context[start:start + len(answer)]})
    return kept


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=Path, required=True, help="a local instruct GGUF (Qwen2.5-Coder-1.5B here)")
    parser.add_argument("--squad", type=Path, required=True, help="FaQuAD's train.json (SQuAD v1.1 format)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-paragraph", type=int, default=4)
    args = parser.parse_args(argv)

    from pipeline.eval_answers import article_split
    from pipeline.llm_llamacpp import LlamaCppLLM
    from pipeline.qa_openai import parse_pairs_json
    from pipeline.squad import load_squad

    data = load_squad(args.squad)
    todo = [(i, text, title) for i, (text, title) in enumerate(zip(data.paragraphs, data.titles))
            if article_split(title) == "train"]
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
                pairs = kept_pairs(text, parse_pairs_json(reply))
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


if __name__ == "__main__":
    main()
