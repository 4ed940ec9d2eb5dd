"""Benchmark answer strategies on FaQuAD's held-out articles, beside the seed's approach, in one run.

Rows (all on the articles ``pipeline.eval_answers.article_split`` marks ``heldout``; the extractor and the
abstention thresholds were tuned on the others):

- ``crude``: the issue's crude extractive baseline (top-1 passage, the sentence with most question words, no
  abstention), and ``retrieval``: R@1/R@3 of the gold paragraph;
- ``seed``: dense MiniLM top-1 paragraph + the embedded LLM generating through transformers, no check;
- ``extractive`` (Oráculo's default): current retrieval + the learned span extractor + abstention, with the
  odd-numbered off-topic questions (never used for calibration) mixed in;
- ``generative/<backend>``: current retrieval + the LLM + the grounding check (extractive fallback), for the
  transformers and llama.cpp backends;
- backend figures: load time and greedy tokens/s of each backend.

Generation is slow on 2 cores, so generative rows use the first ``--gen-n`` held-out questions (the extractive
row uses them all and also reports its F1 on that same subset). ``--calibrate`` instead sweeps the abstention
thresholds on the *train* articles and the even-numbered off-topic questions.

Example::

    python scripts/bench_answers.py --squad ../shared/data/faquad/train.json --gen-n 30 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from pipeline import answer as answer_module  # noqa: E402
from pipeline.answer import Answerer  # noqa: E402
from pipeline.eval_answers import OFF_TOPIC_QUESTIONS, article_split, build_squad_retriever, score_answers  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.squad import load_squad  # noqa: E402


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class SeedAnswerer:
    """The seed: MiniLM dense top-1 paragraph as context, the LLM's text as the answer, nothing checked."""

    def __init__(self, paragraphs: list[str], llm, max_new_tokens: int) -> None:
        from pipeline.embeddings import encode, load_embedder

        self.embedder = load_embedder("embedded")
        self.paragraphs = paragraphs
        self.vectors = encode(self.embedder, paragraphs, kind="document")
        self.llm = llm
        self.max_new_tokens = max_new_tokens

    def warm_up(self) -> None:
        pass

    def answer(self, question: str):
        from pipeline.answer import Answer
        from pipeline.embeddings import encode

        best = int(np.argmax(self.vectors @ encode(self.embedder, [question], kind="query")[0]))
        messages = [{"role": "user", "content": f"Contexto: {self.paragraphs[best]}\n\nPergunta: {question}"}]
        text = self.llm.generate(messages, max_new_tokens=self.max_new_tokens)
        return Answer(text=text, abstained=not text.strip(), strategy="seed")


class CrudeAnswerer:
    """The issue's crude extractive baseline: top-1 passage, its sentence sharing most of the question's words."""

    def __init__(self, retriever) -> None:
        self.retriever = retriever

    def warm_up(self) -> None:
        pass

    def answer(self, question: str):
        from pipeline.answer import Answer
        from pipeline.chunking import split_sentences
        from pipeline.extract import content_terms

        hits = self.retriever.search(question, 1)
        if not hits:
            return Answer(text="", abstained=True, strategy="crude")
        text, terms = hits[0].chunk.text, set(content_terms(question))
        sentences = [text[a:b] for a, b in split_sentences(text)] or [text]
        best = max(sentences, key=lambda s: len(terms & set(content_terms(s))))  # first of the ties
        return Answer(text=best, abstained=False, strategy="crude")


def retrieval_recall(retriever, questions: list[tuple[str, int]]) -> dict:
    """Share of questions whose gold paragraph is the first hit / among the first three (answers use three)."""
    ranks = []
    for question, paragraph in questions:
        ids = [h.chunk.id for h in retriever.search(" ".join(question.split()), 3)]
        ranks.append(ids.index(f"squad:{paragraph}") if f"squad:{paragraph}" in ids else 99)
    return {"r@1": round(float(np.mean([r == 0 for r in ranks])), 4),
            "r@3": round(float(np.mean([r < 3 for r in ranks])), 4)}


def backend_figures(llm, load_s: float, messages: list[dict], max_new_tokens: int) -> dict:
    """Load time, time to the first piece (prompt processing) and decoding speed after it (pieces/s)."""
    started = time.perf_counter()
    stamps = [time.perf_counter() for _ in llm.stream(messages, max_new_tokens=max_new_tokens)]
    first = stamps[0] - started if stamps else float("nan")
    decode = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else float("nan")
    return {"load_s": round(load_s, 2), "first_token_s": round(first, 2), "pieces": len(stamps),
            "decode_pieces_per_s": round(decode, 1)}


def calibrate(settings: Settings, data, retriever) -> None:
    """Print on-topic abstention and off-topic refusal for a grid of thresholds (train articles only)."""
    answerer = Answerer(settings, retriever=retriever)
    answerer.warm_up()
    on = [q.question for q in data.questions if q.answers and article_split(q.title) == "train"]
    off = list(OFF_TOPIC_QUESTIONS[0::2])

    def values(questions):
        out = []
        for question in questions:
            ev = answerer.evidence(" ".join(question.split()))
            out.append((ev.term_coverage, ev.extraction.coverage if ev.extraction else 0.0))
        return np.array(out)

    v_on, v_off = values(on), values(off)
    for term in (0.2, 0.3, 0.4):
        for sentence in (0.2, 0.3, 0.4, 0.5):
            def refused(v):
                return float(np.mean((v[:, 0] < term) | (v[:, 1] < sentence)))
            print(f"term>={term} sentence>={sentence}: on-topic abstain {refused(v_on):.3f}  "
                  f"off-topic refused {refused(v_off):.3f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, default=Path("../shared/data/faquad/train.json"))
    parser.add_argument("--gen-n", type=int, default=30, help="held-out questions for the generative rows")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--skip", default="", help="comma list of rows to skip: seed,transformers,llamacpp")
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    data = load_squad(args.squad)
    settings = Settings(DATA_DIR=Path(tempfile.mkdtemp(prefix="bench-answers-")), max_new_tokens=args.max_new_tokens)
    retriever = build_squad_retriever(settings, data, settings.data_dir / "index")
    if args.calibrate:
        calibrate(settings, data, retriever)
        return 0
    heldout = [(q.question, q.answers) for q in data.questions if q.answers and article_split(q.title) == "heldout"]
    gen = heldout[:args.gen_n]
    off = list(OFF_TOPIC_QUESTIONS[1::2])
    results = {"machine": {"cpus": os.cpu_count(), "load_before": _load()}, "n_heldout": len(heldout),
               "n_generative": len(gen)}

    results["retrieval"] = retrieval_recall(retriever, [(q.question, q.paragraph_id) for q in data.questions
                                                        if q.answers and article_split(q.title) == "heldout"])
    results["crude"] = {**score_answers(CrudeAnswerer(retriever), heldout, off), "load": _load()}
    extractive = Answerer(settings, retriever=retriever)
    extractive.warm_up()
    results["extractive"] = {**score_answers(extractive, heldout, off), "load": _load()}
    results["extractive@gen_subset"] = {**score_answers(extractive, gen, []), "load": _load()}
    print(json.dumps(results, ensure_ascii=False), flush=True)

    messages = answer_module.build_messages(gen[0][0], retriever.search(gen[0][0], settings.top_k))
    for backend in ("llamacpp", "transformers"):
        if backend in skip:
            continue
        from pipeline.llm import load_llm

        started = time.perf_counter()
        llm = load_llm("embedded", backend=backend, models_dir=settings.models_dir)
        load_s = time.perf_counter() - started
        results[f"backend/{backend}"] = {**backend_figures(llm, load_s, messages, args.max_new_tokens),
                                         "load": _load()}
        generative = Answerer(settings.model_copy(update={"answer_strategy": "generative", "llm_backend": backend}),
                              retriever=retriever, llm=llm)
        kept = []
        original = generative._result

        def spy(text, sources, strategy, abstained, index_version, started, _orig=original):
            kept.append(strategy == "generative" and not abstained)
            return _orig(text, sources, strategy, abstained, index_version, started)

        generative._result = spy
        results[f"generative/{backend}"] = {**score_answers(generative, gen, []), "load": _load()}
        results[f"generative/{backend}"]["generated_kept"] = round(float(np.mean(kept)), 3) if kept else 0.0
        if backend == "transformers" and "seed" not in skip:
            seed = SeedAnswerer(list(data.paragraphs), llm, args.max_new_tokens)
            results["seed"] = {**score_answers(seed, gen, []), "load": _load()}
        print(json.dumps(results, ensure_ascii=False), flush=True)
    results["machine"]["load_after"] = _load()
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    print(json.dumps(results, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
