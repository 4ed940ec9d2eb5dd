"""Step 4 of the nightly loop: a candidate (index, adapter) against the serving versions on held-out QA records.

The index is compared by retrieval hit@k and extractive answer F1; a reader adapter by its answers on held-out
citizen records and by the rehearsal guard (forgetting); an LLM adapter by the LLM's answers when the strategy is
generative, else by its validation loss against the serving adapter's. Every comparison says ``better_or_equal``
(within ``RETRAIN_TOLERANCE``); :mod:`pipeline.loop.nightly` promotes what is not worse.

Example::

    from pipeline.loop.compare import evaluate
    result = evaluate(settings, candidate_index, adapter_meta, records)
    result["index"]["better_or_equal"], result.get("adapter", {}).get("better_or_equal")
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.answering.answer import Answerer
from pipeline.answering.reader import SpanReader, load_serving_reader
from pipeline.llm.local import LocalLLM, load_llm
from pipeline.loop.evaluate import heldout_records, score_answerer
from pipeline.loop.reader_job import MIN_FEEDBACK_TO_HOLD_OUT, guard_f1, rehearsal_guard
from pipeline.search.index import OFFLINE_GENERATOR, questions_to_index
from pipeline.search.store import current_version
from pipeline.search.retrieve import RetrievalOptions, Retriever
from pipeline.serving.versions import serving_adapter
from pipeline.settings import Settings
from pipeline.training.merge import load_adapter_model
from pipeline.training.reader_train import load_rehearsal


def _load_llm(settings: Settings, adapter_dir: Path | None):
    if adapter_dir is None:
        return load_llm(settings.llm_model, backend="transformers", models_dir=settings.models_dir)
    from transformers import AutoTokenizer

    metadata = json.loads((adapter_dir / "metadata.json").read_text(encoding="utf-8"))
    return LocalLLM(load_adapter_model(adapter_dir, metadata).merge_and_unload(),
                    AutoTokenizer.from_pretrained(str(adapter_dir)), version=adapter_dir.name)


def evaluate(settings: Settings, candidate_index, adapter_meta: dict | None, records: list[dict]) -> dict:
    """Candidate vs serving on held-out records; ``{"index": {...}, "adapter": {...}}`` with ``better_or_equal``."""
    heldout = heldout_records(records, settings.retrain_eval_questions)
    options = RetrievalOptions.from_settings(settings)
    result: dict = {"heldout": len(heldout)}
    serving_retriever = None
    if current_version(settings.index_dir) is not None:
        serving_retriever = Retriever.from_settings(settings)
    candidate_retriever = Retriever.load(Path(candidate_index.path).parents[1],
                                         embedding_model=settings.embedding_model, options=options,
                                         embedding_dtype=settings.embedding_dtype)
    result["index"] = _compare_indexes(settings, heldout, candidate_retriever, serving_retriever)
    if adapter_meta is not None and adapter_meta.get("kind") == "reader":
        result["adapter"] = _compare_readers(settings, heldout, candidate_retriever, adapter_meta)
    elif adapter_meta is not None:
        result["adapter"] = _compare_llm_adapters(settings, heldout, candidate_retriever, adapter_meta)
    return result


def _compare_indexes(settings: Settings, heldout: list[dict], candidate_retriever: Retriever,
                     serving_retriever: Retriever | None) -> dict:
    """The candidate index vs the serving one (when there is one), both answering extractively."""
    tol = settings.retrain_tolerance
    extractive = settings.model_copy(update={"answer_strategy": "extractive"})
    # Only the records whose questions the candidate indexes are compared: a serving index built with the offline
    # template questions (INDEX_GENERATED_QUESTIONS, or before it existed) would win on its own entries for them.
    compared = questions_to_index(heldout, generated=settings.index_generated_questions)
    # A 👍 record's answer is the one the serving version gave: its F1 would favour serving by construction.
    # Answers are compared on the other records (generated, hand-written); retrieval on all of them.
    unbiased = [r for r in compared if r.get("generator") != "feedback"]
    cand = score_answerer(Answerer(extractive, retriever=candidate_retriever), compared, top_k=settings.top_k,
                          f1_on=unbiased)
    serv = (score_answerer(Answerer(extractive, retriever=serving_retriever), compared, top_k=settings.top_k,
                           f1_on=unbiased) if serving_retriever is not None else None)
    ok = serv is None or ((cand["f1"] is None or cand["f1"] >= serv["f1"] - tol)
                          and cand["hit_at_k"] >= serv["hit_at_k"] - tol)
    return {"candidate": cand, "serving": serv, "better_or_equal": ok}


def _compare_readers(settings: Settings, heldout: list[dict], candidate_retriever: Retriever,
                     adapter_meta: dict) -> dict:
    """The candidate span reader vs the serving one, on held-out citizen records and on the rehearsal guard."""
    tol = settings.retrain_tolerance
    reader_settings = settings.model_copy(update={"answer_strategy": "reader"})
    candidate = SpanReader.load(settings.reader_model, Path(adapter_meta["adapter_dir"]),
                                cache_dir=settings.model_cache_dir)

    # Held-out records are never trained on; the 👍 ones among them are the serving reader's own answers, so
    # a candidate must at least keep them (conservative). QA pairs generated offline are no yardstick for a
    # span reader: their answers are whole clauses, and a reader that answers shorter lost to serving there
    # while answering citizens better. Forgetting is checked on the rehearsal sample's guard part, which
    # nightly runs never train on: the candidate must read those passages as well as serving does.
    serving_reader = load_serving_reader(settings)
    sample = [r for r in heldout if r.get("generator") != OFFLINE_GENERATOR]
    cand_r = (score_answerer(Answerer(reader_settings, retriever=candidate_retriever, reader=candidate),
                             sample, top_k=settings.top_k) if sample else {"f1": None})
    serv_r = (score_answerer(Answerer(reader_settings, retriever=candidate_retriever, reader=serving_reader),
                             sample, top_k=settings.top_k) if sample else {"f1": None})
    guard = rehearsal_guard(load_rehearsal(Path(adapter_meta["adapter_dir"])))
    cand_g, serv_g = guard_f1(candidate, guard), guard_f1(serving_reader, guard)
    # a handful of held-out votes (below MIN_FEEDBACK_TO_HOLD_OUT) says nothing: one changed answer in three
    # is -0.33; then the guard alone decides
    kept = (cand_r["f1"] is None or len(sample) < MIN_FEEDBACK_TO_HOLD_OUT
            or cand_r["f1"] >= serv_r["f1"] - tol)
    remembers = cand_g is None or cand_g >= serv_g - tol
    return {"by": "reader_f1", "candidate": cand_r["f1"], "serving": serv_r["f1"], "n": len(sample),
            "guard_candidate": cand_g, "guard_serving": serv_g, "n_guard": len(guard),
            "better_or_equal": kept and remembers}


def _compare_llm_adapters(settings: Settings, heldout: list[dict], candidate_retriever: Retriever,
                          adapter_meta: dict) -> dict:
    """The candidate LLM adapter vs the serving one: by generated answers, else by validation loss."""
    tol = settings.retrain_tolerance
    adapter_dir = Path(adapter_meta["adapter_dir"])
    current = serving_adapter(settings)
    if settings.answer_strategy == "generative" and settings.retrain_eval_generative:
        sample = heldout[:settings.retrain_eval_generative]
        generative = settings.model_copy(update={"answer_strategy": "generative"})
        cand_a = score_answerer(Answerer(generative, retriever=candidate_retriever,
                                         llm=_load_llm(settings, adapter_dir)), sample, top_k=settings.top_k)
        serv_a = score_answerer(Answerer(generative, retriever=candidate_retriever,
                                         llm=_load_llm(settings, current)), sample, top_k=settings.top_k)
        return {"by": "generative_f1", "candidate": cand_a["f1"], "serving": serv_a["f1"],
                "better_or_equal": (cand_a["f1"] or 0.0) >= (serv_a["f1"] or 0.0) - tol}
    # the extractive default does not use the adapter: a sanity check on its validation loss
    val = (adapter_meta.get("metrics") or {}).get("val_loss")
    old = None
    if current is not None:
        old = (json.loads((current / "metadata.json").read_text(encoding="utf-8")).get("metrics") or {}
               ).get("val_loss")
    fine = val is not None and val == val and (old is None or val <= old * (1 + tol) + 1e-9)
    return {"by": "val_loss", "candidate": val, "serving": old, "better_or_equal": fine}
