"""Benchmark answer strategies on FaQuAD's held-out articles, beside the seed's approach, in one run.

Rows (all on the articles ``pipeline.evaluation.answers.article_split`` marks ``heldout``, which neither the reader
nor the older extractor was trained or tuned on; one paragraph in four of those articles is left out of the
index, and its questions are the *on-topic unanswerable* ones, reported as ``unanswerable_refused``):

- ``reader`` (Oráculo's default): retrieval + the e5-small span reader + its learned abstention (fitted with
  ``--calibrate`` on held-out SQuAD-pt articles, not on FaQuAD); ``reader/margin``: the same reader deciding
  by its no-answer margin alone (``READER_ABSTENTION=margin``);
- ``citizen``: crude, extractive and reader on the six citizen documents of ``scripts/bench_data/citizen``
  (informal questions + on-topic unanswerable ones), when present;

- ``crude``: the issue's crude extractive baseline (top-1 passage, the sentence with most question words, no
  abstention), and ``retrieval``: R@1/R@3 of the gold paragraph;
- ``seed``: dense MiniLM top-1 paragraph + the embedded LLM generating through transformers, no check;
- ``extractive`` (the previous default): current retrieval + the learned span extractor + abstention, with the
  odd-numbered off-topic questions (never used for calibration) mixed in;
- ``generative/<backend>``: current retrieval + the LLM + the grounding check (extractive fallback), for the
  transformers and llama.cpp backends;
- backend figures: load time and greedy tokens/s of each backend.

Generation is slow on 2 cores, so generative rows use the first ``--gen-n`` held-out questions (the extractive
row uses them all and also reports its F1 on that same subset). ``--calibrate`` instead chooses the reader's
abstention model (:mod:`pipeline.answering.answerability`) on SQuAD-pt articles held out from its training.

Example::

    python scripts/bench_answers.py --squad ../shared/data/faquad/train.json --gen-n 30 --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from pipeline.llm.prompt import build_messages  # noqa: E402
from pipeline.answering.answer import Answerer  # noqa: E402
from pipeline.answering.reader import SHIPPED_ADAPTER  # noqa: E402
from pipeline.evaluation.answers import OFF_TOPIC_QUESTIONS, article_split, build_squad_retriever, score_answers  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.evaluation.squad import load_squad  # noqa: E402


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class SeedAnswerer:
    """The seed: MiniLM dense top-1 paragraph as context, the LLM's text as the answer, nothing checked."""

    def __init__(self, paragraphs: list[str], llm, max_new_tokens: int) -> None:
        from pipeline.search.embeddings import encode, load_embedder

        self.embedder = load_embedder("embedded")
        self.paragraphs = paragraphs
        self.vectors = encode(self.embedder, paragraphs, kind="document")
        self.llm = llm
        self.max_new_tokens = max_new_tokens

    def warm_up(self) -> None:
        pass

    def answer(self, question: str):
        from pipeline.answering.result import Answer
        from pipeline.search.embeddings import encode

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
        from pipeline.answering.result import Answer
        from pipeline.documents.chunking import split_sentences
        from pipeline.core.text import content_terms

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
        # a paragraph longer than a chunk is indexed as "squad:<n>:<start>-<end>" pieces
        found = [r for r, i in enumerate(ids) if i == f"squad:{paragraph}" or i.startswith(f"squad:{paragraph}:")]
        ranks.append(found[0] if found else 99)
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


CITIZEN_DEV = Path(__file__).with_name("bench_data") / "citizen_dev"
SQUAD_ANSWER_SHARE = 0.90   # SQuAD-pt: the regression's own balance point (abstain on at most 10%)
FAQUAD_ANSWER_SHARE = 0.93  # the shipped threshold: 93% of the held-out FaQuAD articles' answerable questions
CLOSEST_SHARE = 0.90  # abstentions show the closest passage for 90% of citizen-style answerable questions
# The signals the shipped model weighs: the reader's own scores, the rank of the passage it read and the e5 cosine
# of the question with the sentence that supports the answer. Word-overlap signals (lexical_span, sentence_cover,
# passage_cover, max_sentence_cover) are left out: they reward questions written with the document's words and
# refused paraphrased, informal ones (cross-fitted by document on the citizen-style calibration set: 56% abstained
# with every signal, 38% with these; FaQuAD's refusal unchanged at 78%). Chosen on the calibration sets, 2/12/2026.
ABSTENTION_FEATURES = ("margin", "score", "null", "rank", "sentence_dense")


def reader_features(answerer, questions: list[str], golds: list | None = None) -> list[dict]:
    """The abstention signals (:meth:`pipeline.answering.answer.Answerer.signals`) of each question, with the token F1
    of the best span under ``_f1`` when the gold answers are given."""
    from pipeline.core.text import token_f1

    rows = []
    for n, question in enumerate(questions):
        question = " ".join(question.split())
        vector = answerer.retriever.embed_query(question)
        hits, spans = answerer.read(question, query_vector=vector)
        row = answerer.signals(question, hits, spans, query_vector=vector)
        if golds is not None:
            row["_f1"] = token_f1(spans[0].text, golds[n]) if spans else 0.0
        rows.append(row)
    return rows


def squad_calibration_rows(settings: Settings) -> tuple[dict, list[str]]:
    """Feature rows of 6 SQuAD-pt articles held out from the reader's training: answerable questions, on-topic
    unanswerable ones (one paragraph in four left out of the index, as in the benchmark), SQuAD 2.0's
    unanswerable questions and the even-numbered off-topic questions."""
    from pipeline.evaluation.squad import SquadCorpus
    from scripts.train_reader import squad_heldout

    v2 = Path(__file__).resolve().parents[2] / "shared" / "data" / "squad_pt" / "squad-v2.0-pt-dev.json"
    raw = json.loads(v2.read_text(encoding="utf-8"))["data"]
    articles = [a for a in raw if squad_heldout(a["title"])]
    paragraphs, titles = [], []
    groups: dict[str, list[str]] = {"answerable": [], "unanswerable": [], "adversarial": [],
                                    "off_topic": list(OFF_TOPIC_QUESTIONS[0::2])}
    number = 0
    for article in articles:
        for p in article["paragraphs"]:
            removed = removed_paragraph(number)
            number += 1
            if not removed:
                paragraphs.append(p["context"])
                titles.append(article["title"])
            for qa in p["qas"]:
                if qa.get("is_impossible"):
                    if not removed:
                        groups["adversarial"].append(qa["question"])
                else:
                    groups["unanswerable" if removed else "answerable"].append(qa["question"])
    corpus = SquadCorpus(paragraphs=paragraphs, titles=titles, questions=[])
    retriever = build_squad_retriever(settings, corpus, settings.data_dir / "calibration-index")
    answerer = Answerer(settings, retriever=retriever)
    return {name: reader_features(answerer, questions) for name, questions in groups.items()}, \
        [a["title"] for a in articles]


def faquad_calibration_rows(settings: Settings, squad: Path) -> dict[str, dict[str, list[dict]]]:
    """Per held-out FaQuAD article, the feature rows of its answerable and on-topic unanswerable questions,
    indexed exactly as the benchmark indexes them."""
    bench = heldout_faquad(settings, squad, "calibration-faquad-index")
    answerer = Answerer(settings, retriever=bench.retriever)
    out: dict[str, dict[str, list[dict]]] = {}
    for q in bench.questions:
        kind = "unanswerable" if q.paragraph_id in bench.removed else "answerable"
        row = reader_features(answerer, [q.question], [q.answers] if kind == "answerable" else None)[0]
        out.setdefault(q.title, {"answerable": [], "unanswerable": []})[kind].append(row)
    return out


def citizen_dev_rows(settings: Settings, folder: Path) -> dict[str, dict[str, list[dict]]]:
    """Per document of the citizen-style calibration set (``scripts/bench_data/citizen_dev``: fictitious documents
    and informal questions written for tuning, never for figures), the feature rows of its answerable questions
    and of its unanswerable ones (``unanswerable.json`` lists them in document order, the same number for each),
    indexed as whole documents the way ``oraculo index`` chunks them."""
    from pipeline.evaluation.answers import load_unanswerable

    data = load_squad(folder / "questions.json")
    retriever = build_squad_retriever(settings, data, settings.data_dir / "calibration-citizen-index")
    answerer = Answerer(settings, retriever=retriever)
    titles = list(dict.fromkeys(data.titles))
    out: dict[str, dict[str, list[dict]]] = {t: {"answerable": [], "unanswerable": []} for t in titles}
    for q in data.questions:
        if q.answers:
            out[q.title]["answerable"] += reader_features(answerer, [q.question], [q.answers])
    unanswerable = load_unanswerable(folder / "unanswerable.json")
    if len(unanswerable) % len(titles):
        raise ValueError(f"{folder / 'unanswerable.json'}: expected the same number of questions per document")
    each = len(unanswerable) // len(titles)
    for n, question in enumerate(unanswerable):
        out[titles[n // each]]["unanswerable"] += reader_features(answerer, [question])
    return out


def _fit(squad_rows: dict, faquad_rows: list[dict[str, list[dict]]], fitted_on: str,
         citizen_rows: list[dict[str, list[dict]]] = ()):
    """The regression on SQuAD's rows, the given FaQuAD articles' and the given citizen-style documents', its
    threshold at FAQUAD_ANSWER_SHARE of those FaQuAD articles' answerable questions (and bold from the decision
    value 60% of them reach)."""
    from dataclasses import replace

    from pipeline.answering.answerability import fit

    positives = squad_rows["answerable"] + [r for a in [*faquad_rows, *citizen_rows] for r in a["answerable"]]
    on_topic_negatives = [r for a in [*faquad_rows, *citizen_rows] for r in a["unanswerable"]]
    negatives = squad_rows["unanswerable"] + squad_rows["adversarial"] + squad_rows["off_topic"] + on_topic_negatives
    # SQuAD 2.0's unanswerable questions count half: their paragraph is in the index and nearly answers them
    weights = ([1.0] * len(squad_rows["unanswerable"]) + [0.5] * len(squad_rows["adversarial"])
               + [1.0] * (len(squad_rows["off_topic"]) + len(on_topic_negatives)))
    model = fit(positives, negatives, features=ABSTENTION_FEATURES, negative_weights=weights,
                answer_share=SQUAD_ANSWER_SHARE, fitted_on=fitted_on)
    decisions = np.array([model.decision(r) for a in faquad_rows for r in a["answerable"]])
    threshold = float(np.quantile(decisions, 1.0 - FAQUAD_ANSWER_SHARE))
    # The closest passage is shown on abstentions from the decision value CLOSEST_SHARE of the citizen-style
    # answerable questions reach, but never for a question as far off-topic as the calibration's off-topic ones.
    citizen = [model.decision(r) for a in citizen_rows for r in a["answerable"]]
    off_topic = max(model.decision(r) for r in squad_rows["off_topic"])
    near = max(float(np.quantile(citizen, 1.0 - CLOSEST_SHARE)), off_topic + 0.01) if citizen else math.inf
    return replace(model, threshold=round(threshold, 4), confident=round(float(np.quantile(decisions, 0.4)), 4),
                   near=round(min(near, threshold), 4) if math.isfinite(near) else math.inf)


def calibrate(settings: Settings, output: Path, squad: Path, features: Path | None = None) -> dict:
    """Fit the reader's abstention model and save it to ``output``.

    The regression learns from held-out SQuAD-pt articles (:func:`squad_calibration_rows`) and FaQuAD's
    held-out articles (never trained on); the threshold is set on FaQuAD's, the documents closest to the ones
    Oráculo serves: it answers FAQUAD_ANSWER_SHARE of their answerable questions. Because those articles are
    also where the benchmark reports, the honest estimate is the *cross-fitted* one printed here: fitted on
    half of the FaQuAD articles (and SQuAD), measured on the other half, both ways (by document, never by
    question). ``features`` caches the rows (reused when present, e.g. to refit after changing this code)."""
    cached = json.loads(features.read_text(encoding="utf-8")) if features is not None and features.is_file() else {}
    if "squad" not in cached:
        cached["squad"], cached["squad_articles"] = squad_calibration_rows(settings)
    if "faquad" not in cached:
        cached["faquad"] = faquad_calibration_rows(settings, squad)
    if "citizen_dev" not in cached:
        cached["citizen_dev"] = citizen_dev_rows(settings, CITIZEN_DEV)
    if features is not None:
        features.write_text(json.dumps(cached), encoding="utf-8")
    squad_rows, squad_articles, faquad = cached["squad"], cached["squad_articles"], cached["faquad"]
    citizen = cached["citizen_dev"]
    titles, documents = sorted(faquad), sorted(citizen)
    folds, citizen_folds = [titles[0::2], titles[1::2]], [documents[0::2], documents[1::2]]
    cross = {"abstained": [], "refused": [], "f1": [], "folds": []}
    citizen_cross = {"abstained": [], "refused": [], "f1": []}
    for k in (0, 1):
        model = _fit(squad_rows, [faquad[t] for t in folds[k]], "fold", [citizen[d] for d in citizen_folds[k]])
        answerable = [r for t in folds[1 - k] for r in faquad[t]["answerable"]]
        unanswerable = [r for t in folds[1 - k] for r in faquad[t]["unanswerable"]]
        answered = [model.decision(r) >= model.threshold for r in answerable]
        refused = [model.decision(r) < model.threshold for r in unanswerable]
        cross["abstained"] += [not a for a in answered]
        cross["refused"] += refused
        cross["f1"] += [r["_f1"] * a for r, a in zip(answerable, answered)]
        cross["folds"].append({"fitted_on": folds[k], "measured_on": folds[1 - k],
                               "abstained": round(1 - float(np.mean(answered)), 4),
                               "refused": round(float(np.mean(refused)), 4)})
        for d in citizen_folds[1 - k]:
            citizen_cross["abstained"] += [model.decision(r) < model.threshold for r in citizen[d]["answerable"]]
            citizen_cross["f1"] += [r["_f1"] * (model.decision(r) >= model.threshold) for r in citizen[d]["answerable"]]
            citizen_cross["refused"] += [model.decision(r) < model.threshold for r in citizen[d]["unanswerable"]]
    model = _fit(squad_rows, [faquad[t] for t in titles],
                 f"SQuAD 2.0 pt dev ({len(squad_articles)} articles), FaQuAD ({len(titles)} articles), all held out "
                 f"from the reader's training, and the citizen-style calibration set ({len(documents)} documents); "
                 f"threshold at {FAQUAD_ANSWER_SHARE:.0%} answered on FaQuAD's", [citizen[d] for d in documents])
    model.save(output)
    result = {"model": str(output), "threshold": model.threshold, "confident": model.confident,
              "coef": dict(zip(model.features, model.coef)),
              "cross_fitted_faquad": {"abstained": round(float(np.mean(cross["abstained"])), 4),
                                      "unanswerable_refused": round(float(np.mean(cross["refused"])), 4),
                                      "f1": round(float(np.mean(cross["f1"])), 4),
                                      "n": len(cross["abstained"]), "n_unanswerable": len(cross["refused"]),
                                      "folds": cross["folds"]},
              "cross_fitted_citizen_dev": {name: round(float(np.mean(values)), 4)
                                           for name, values in citizen_cross.items()},
              "squad_refused": {name: round(float(np.mean([model.decision(r) < model.threshold for r in rows])), 4)
                                for name, rows in squad_rows.items()},
              "squad_articles": squad_articles, "faquad_articles": titles, "citizen_dev_documents": documents}
    print(json.dumps(result, ensure_ascii=False))
    return result


@dataclass
class HeldOutFaquad:
    """FaQuAD indexed without one paragraph in four of its held-out articles (see removed_paragraph)."""

    retriever: object
    corpus: object               # the indexed paragraphs (a SquadCorpus)
    questions: list              # the held-out articles' answerable questions (their paragraph may be removed)
    removed: set[int]            # paragraph ids left out of the index
    new_id: dict[int, int]       # paragraph id in the file -> its number in the index


def heldout_faquad(settings: Settings, squad: Path, index_name: str) -> HeldOutFaquad:
    full = load_squad(squad)
    removed = {i for i, t in enumerate(full.titles) if article_split(t) == "heldout" and removed_paragraph(i)}
    keep = [i for i in range(len(full.paragraphs)) if i not in removed]
    corpus = full.__class__(paragraphs=[full.paragraphs[i] for i in keep], titles=[full.titles[i] for i in keep],
                            questions=[])
    retriever = build_squad_retriever(settings, corpus, settings.data_dir / index_name)
    held = [q for q in full.questions if q.answers and article_split(q.title) == "heldout"]
    return HeldOutFaquad(retriever, corpus, held, removed, {old: new for new, old in enumerate(keep)})


def removed_paragraph(paragraph_id: int) -> bool:
    """One paragraph in four of the held-out articles is left out of the index: its questions become on-topic
    questions the corpus does not answer (same documents, same words, no answer)."""
    return paragraph_id % 4 == 1


def citizen_rows(settings: Settings, folder: Path, answerers: dict) -> dict:
    """The rows on the citizen set (scripts/bench_data/citizen): whole documents chunked as the index does."""
    from pipeline.evaluation.answers import load_unanswerable

    data = load_squad(folder / "questions.json")
    retriever = build_squad_retriever(settings, data, settings.data_dir / "citizen-index")
    questions = [(q.question, q.answers) for q in data.questions if q.answers]
    unanswerable = load_unanswerable(folder / "unanswerable.json")
    rows = {"n": len(questions), "n_unanswerable": len(unanswerable)}
    for name, factory in answerers.items():
        answerer = factory(retriever)
        answerer.warm_up()
        rows[name] = {**score_answers(answerer, questions, [], unanswerable), "load": _load()}
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, default=Path("../shared/data/faquad/train.json"))
    parser.add_argument("--gen-n", type=int, default=30, help="held-out questions for the generative rows")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--gen-model", default="embedded",
                        help="the generative rows' model: 'embedded' (SmolLM2-135M) or a GGUF file (llamacpp row) / "
                             "HF id or checkpoint (transformers row)")
    parser.add_argument("--gen-unanswerable", type=int, default=0,
                        help="also ask the generative rows this many on-topic unanswerable questions (refusal)")
    parser.add_argument("--skip", default="", help="comma list of rows to skip: seed,transformers,llamacpp")
    parser.add_argument("--calibrate", action="store_true",
                        help="fit the reader's abstention model on held-out SQuAD-pt articles, save it and exit")
    parser.add_argument("--abstention-out", type=Path,
                        default=SHIPPED_ADAPTER / "abstention.json",
                        help="where --calibrate saves the model (default: beside the shipped adapter)")
    parser.add_argument("--citizen", type=Path, default=Path(__file__).with_name("bench_data") / "citizen")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    settings = Settings(DATA_DIR=Path(tempfile.mkdtemp(prefix="bench-answers-")), max_new_tokens=args.max_new_tokens)
    if args.calibrate:
        result = calibrate(settings, args.abstention_out, args.squad,
                           args.json.with_suffix(".features.json") if args.json else None)
        if args.json:
            args.json.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
        return 0
    # The index holds every paragraph but one in four of the held-out articles' (see removed_paragraph).
    bench = heldout_faquad(settings, args.squad, "index")
    retriever, data, held, removed, new_id = bench.retriever, bench.corpus, bench.questions, bench.removed, bench.new_id
    heldout = [(q.question, q.answers) for q in held if q.paragraph_id not in removed]
    unanswerable = [q.question for q in held if q.paragraph_id in removed]
    gen = heldout[:args.gen_n]
    off = list(OFF_TOPIC_QUESTIONS[1::2])
    results = {"machine": {"cpus": os.cpu_count(), "load_before": _load()}, "n_heldout": len(heldout),
               "n_unanswerable_on_topic": len(unanswerable), "n_generative": len(gen),
               "reader_threshold": settings.reader_threshold}

    results["retrieval"] = retrieval_recall(retriever, [(q.question, new_id[q.paragraph_id]) for q in held
                                                        if q.paragraph_id not in removed])
    results["crude"] = {**score_answers(CrudeAnswerer(retriever), heldout, off, unanswerable), "load": _load()}
    extractive = Answerer(settings.model_copy(update={"answer_strategy": "extractive"}), retriever=retriever)
    extractive.warm_up()
    results["extractive"] = {**score_answers(extractive, heldout, off, unanswerable), "load": _load()}
    reader = Answerer(settings, retriever=retriever)
    reader.warm_up()
    results["reader"] = {**score_answers(reader, heldout, off, unanswerable), "load": _load()}
    margin_only = Answerer(settings.model_copy(update={"reader_abstention": "margin"}), retriever=retriever,
                           reader=reader.reader)
    results["reader/margin"] = {**score_answers(margin_only, heldout, off, unanswerable), "load": _load()}
    results["reader@gen_subset"] = {**score_answers(reader, gen, []), "load": _load()}
    print(json.dumps(results, ensure_ascii=False), flush=True)
    if (args.citizen / "questions.json").is_file():
        results["citizen"] = citizen_rows(settings, args.citizen, {
            "crude": lambda r: CrudeAnswerer(r),
            "extractive": lambda r: Answerer(settings.model_copy(update={"answer_strategy": "extractive"}),
                                             retriever=r),
            "reader": lambda r: Answerer(settings, retriever=r, reader=reader.reader),
            "reader/margin": lambda r: Answerer(settings.model_copy(update={"reader_abstention": "margin"}),
                                                retriever=r, reader=reader.reader),
            # how well it reads, abstention aside: the margin rule with a threshold nothing falls under
            "reader/never_abstains": lambda r: Answerer(settings.model_copy(update={
                "reader_abstention": "margin", "reader_threshold": -1e9}), retriever=r, reader=reader.reader)})
        print(json.dumps(results["citizen"], ensure_ascii=False), flush=True)

    messages = build_messages(gen[0][0], retriever.search(gen[0][0], settings.top_k))
    for backend in ("llamacpp", "transformers"):
        if backend in skip:
            continue
        from pipeline.llm.local import load_llm

        started = time.perf_counter()
        llm = load_llm(args.gen_model, backend=backend, models_dir=settings.models_dir)
        load_s = time.perf_counter() - started
        results[f"backend/{backend}"] = {**backend_figures(llm, load_s, messages, args.max_new_tokens),
                                         "load": _load()}
        generative = Answerer(settings.model_copy(update={"answer_strategy": "generative", "llm_backend": backend}),
                              retriever=retriever, llm=llm)
        stream_first = []
        for question, _ in gen[:5]:  # time to the first streamed piece, through the answer path
            started = time.perf_counter()
            firsts = []
            generative.answer(question, on_partial=lambda text: firsts.append(time.perf_counter()))
            if firsts:
                stream_first.append(firsts[0] - started)
        kept = []
        original = generative._result

        def spy(text, sources, strategy, abstained, index_version, started, _orig=original):
            kept.append(strategy == "generative" and not abstained)
            return _orig(text, sources, strategy, abstained, index_version, started)

        generative._result = spy
        results[f"generative/{backend}"] = {**score_answers(generative, gen, [],
                                                            unanswerable[:args.gen_unanswerable] or None),
                                            "model": args.gen_model, "load": _load()}
        results[f"generative/{backend}"]["generated_kept"] = round(float(np.mean(kept)), 3) if kept else 0.0
        results[f"generative/{backend}"]["first_piece_s_median"] = (
            round(float(np.median(stream_first)), 2) if stream_first else None)
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
