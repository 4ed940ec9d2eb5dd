"""The nightly learning loop: citizens' feedback in, better answers out (scheduled, /retrain, `oraculo retrain`).

Seven steps; nothing that serves changes before step 5, so any failure leaves the serving index and adapter
as they were (the run is recorded with its error, and the caller tells the admins):

1. export — validated feedback (at least one 👍 and no 👎, answered from a source) to
   ``exports/feedback_validated.jsonl``; every 👎 to ``exports/feedback_review.jsonl`` (for people, never a
   positive example);
2. index — a *candidate* index of the documents (new and changed ones re-embedded only) and of every QA record,
   the 👍 question/answer pairs included (``pipeline.serving.promote.build_candidate_index``, built aside);
3. train — the LoRA adapter, on the records frozen into ``retrain/<run>/train_data.jsonl``, in a *separate
   process* (``python -m pipeline.loop.nightly train-worker``, lower CPU priority), so the bot keeps answering;
4. evaluate — candidate vs serving on held-out QA records (a stable fifth of them, by hash of their id):
   retrieval hit@k on all of them, answer token F1 on those not from feedback (a 👍 answer is the serving
   version's own, it would favour serving by construction); the adapter by the LLM's answers when the
   strategy is generative, else by its validation loss against the serving adapter's;
5. promote — whatever is not worse (within ``RETRAIN_TOLERANCE``) becomes serving, atomically
   (``pipeline.serving.promote``); running bots reload on their next question;
6. publish — load a promoted LLM adapter into the answer engine when ``ENGINE_PUBLISH`` is set
   (``pipeline.serving.engine``: vLLM's adapter endpoints or a command; on failure the engine keeps the previous
   adapter and the admins get the error), then merge and push it to the Hub when ``HF_REPO_ID`` and
   ``HF_TOKEN`` are set;
7. record — ``retrain/runs/<run>.json`` (steps, timings, metrics, cost; the training run is also a
   ``training_runs`` row) and a summary the bot sends to the admins.

One run at a time per data directory (an ``flock`` on ``DATA_DIR/retrain.lock``, across processes): a second
caller gets :class:`RetrainBusy`. What the job does *not* do: the 👍 fast path and the 👎 memory act from the
vote on (``pipeline.feedback.memory``); the job makes them durable (index, adapter) and general (paraphrases).

Example::

    from pipeline.settings import Settings
    from pipeline.loop.nightly import retrain_job
    report = retrain_job(Settings(RETRAIN_MAX_STEPS=5), trigger="manual")
    print(report.promoted, report.reason, [(s.name, s.seconds) for s in report.steps])
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from pydantic import SecretStr

from pipeline.answering.answer import Answerer
from pipeline.answering.reader import SpanReader, load_serving_reader
from pipeline.documents.chunking import chunk_document
from pipeline.documents.load import load_configured, load_documents
from pipeline.llm.local import LocalLLM, load_llm
from pipeline.loop import jobs
from pipeline.loop.evaluate import heldout_records, score_answerer
from pipeline.loop.reader_job import (
    MIN_FEEDBACK_TO_HOLD_OUT,
    ReaderRunArgs,
    build_examples,
    guard_f1,
    read_review,
    rehearsal_guard,
    train_reader_run,
    training_exclusions,
)
from pipeline.qa.records import qa_records
from pipeline.search.index import OFFLINE_GENERATOR, current_version, questions_to_index
from pipeline.search.retrieve import RetrievalOptions, Retriever
from pipeline.serving.engine import EngineError, publish_adapter
from pipeline.serving.promote import build_candidate_index, promote
from pipeline.serving.versions import published_adapter, serving_adapter, serving_versions
from pipeline.settings import Settings
from pipeline.training.merge import load_adapter_model
from pipeline.training.publish import push_run
from pipeline.training.reader_train import load_rehearsal
from pipeline.training.train import TrainArgs, main

log = logging.getLogger(__name__)

LOCK_FILE = "retrain.lock"


class RetrainBusy(RuntimeError):
    """Another run holds the lock."""


class RetrainFailed(RuntimeError):
    """A step failed; ``report`` says which and what the run had done."""

    def __init__(self, report: "RetrainReport") -> None:
        super().__init__(report.error)
        self.report = report


@dataclass
class StepResult:
    name: str          # export | index | train | evaluate | promote | publish | record
    seconds: float
    detail: dict = field(default_factory=dict)


@dataclass
class RetrainReport:
    run_id: str
    trigger: str
    started_at: str
    ok: bool = False
    duration_s: float = 0.0
    steps: list[StepResult] = field(default_factory=list)
    promoted: dict = field(default_factory=dict)     # {"index": bool, "adapter": bool}
    reason: str = ""
    serving_before: dict = field(default_factory=dict)
    serving_after: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    cost: dict = field(default_factory=dict)
    error: str | None = None
    failed_step: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


# --- lock ---------------------------------------------------------------------------------------------

@contextmanager
def run_lock(settings: Settings):
    """Hold the data directory's retrain lock; :class:`RetrainBusy` at once when another run holds it."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(settings.data_dir / LOCK_FILE, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RetrainBusy("a retraining run is already in progress") from None
        yield
    finally:
        handle.close()  # closing releases the lock


def is_running(settings: Settings) -> bool:
    try:
        with run_lock(settings):
            return False
    except RetrainBusy:
        return True


# --- training in a separate process -------------------------------------------------------------------

def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as environment variables for a child process (secrets are not passed: training needs none)."""
    env = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None or isinstance(value, SecretStr):
            continue
        env[name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def train_in_subprocess(settings: Settings, args, run_dir: Path, *, kind: str = "llm") -> dict:
    """Run ``pipeline.training.train.main(args)`` (``kind="llm"``) or ``pipeline.loop.reader_job.train_reader_run``
    (``kind="reader"``) in a child process at lower priority; its metadata, or RuntimeError."""
    spec, out, logfile = run_dir / "train_spec.json", run_dir / "train_result.json", run_dir / "train.log"
    spec.write_text(json.dumps({"kind": kind, "args": asdict(args), "out": str(out)}), encoding="utf-8")
    env = {**os.environ, **settings_env(settings)}
    with logfile.open("w", encoding="utf-8") as log_handle:
        code = subprocess.call([sys.executable, "-m", "pipeline.loop.nightly", "train-worker", str(spec)],
                               stdout=log_handle, stderr=subprocess.STDOUT, env=env,
                               cwd=str(Path(__file__).resolve().parents[2]), preexec_fn=lambda: os.nice(10))
    if code != 0 or not out.is_file():
        lines = [ln for ln in logfile.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
        raise RuntimeError(f"training process exited with {code}: {lines[-1][:300] if lines else 'no output'}")
    return json.loads(out.read_text(encoding="utf-8"))


def _train_worker(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if spec.get("kind") == "reader":
        result = train_reader_run(Settings(), ReaderRunArgs(**spec["args"]))
    else:
        result = main(TrainArgs(**spec["args"]), settings=Settings())
    Path(spec["out"]).write_text(json.dumps(result, ensure_ascii=False, default=str), encoding="utf-8")
    return 0


# --- evaluation ---------------------------------------------------------------------------------------

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
    tol = settings.retrain_tolerance
    result: dict = {"heldout": len(heldout)}
    serving_retriever = None
    if current_version(settings.index_dir) is not None:
        serving_retriever = Retriever.from_settings(settings)
    candidate_retriever = Retriever.load(Path(candidate_index.path).parents[1], embedding_model=settings.embedding_model,
                                         options=options, embedding_dtype=settings.embedding_dtype)
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
    result["index"] = {"candidate": cand, "serving": serv, "better_or_equal": ok}

    if adapter_meta is not None and adapter_meta.get("kind") == "reader":
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
        result["adapter"] = {"by": "reader_f1", "candidate": cand_r["f1"], "serving": serv_r["f1"], "n": len(sample),
                             "guard_candidate": cand_g, "guard_serving": serv_g, "n_guard": len(guard),
                             "better_or_equal": kept and remembers}
    elif adapter_meta is not None:
        adapter_dir = Path(adapter_meta["adapter_dir"])
        current = serving_adapter(settings)
        if settings.answer_strategy == "generative" and settings.retrain_eval_generative:
            sample = heldout[:settings.retrain_eval_generative]
            generative = settings.model_copy(update={"answer_strategy": "generative"})
            cand_a = score_answerer(Answerer(generative, retriever=candidate_retriever,
                                             llm=_load_llm(settings, adapter_dir)), sample, top_k=settings.top_k)
            serv_a = score_answerer(Answerer(generative, retriever=candidate_retriever,
                                             llm=_load_llm(settings, current)), sample, top_k=settings.top_k)
            result["adapter"] = {"by": "generative_f1", "candidate": cand_a["f1"], "serving": serv_a["f1"],
                                 "better_or_equal": (cand_a["f1"] or 0.0) >= (serv_a["f1"] or 0.0) - tol}
        else:  # the extractive default does not use the adapter: a sanity check on its validation loss
            val = (adapter_meta.get("metrics") or {}).get("val_loss")
            old = None
            if current is not None:
                old = (json.loads((current / "metadata.json").read_text(encoding="utf-8")).get("metrics") or {}
                       ).get("val_loss")
            fine = val is not None and val == val and (old is None or val <= old * (1 + tol) + 1e-9)
            result["adapter"] = {"by": "val_loss", "candidate": val, "serving": old, "better_or_equal": fine}
    return result


# --- the job ------------------------------------------------------------------------------------------

def _default_chunks(settings: Settings) -> list:
    return [c for doc in load_documents(Path(settings.documents_dir)) for c in chunk_document(doc)]


def _write_jsonl(path: Path, records: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def runs_dir(settings: Settings) -> Path:
    return settings.data_dir / "retrain" / "runs"


def retrain_job(settings: Settings, *, trigger: str = "manual", chunks: Callable[[], list] | None = None,
                generate_qa: bool | None = None) -> RetrainReport:
    """Run the seven steps once (see the module docstring); :class:`RetrainBusy` when a run is in progress,
    :class:`RetrainFailed` (with the recorded report) when a step failed. ``chunks`` replaces the documents
    folder as the source of passages (benchmarks); QA generation runs for the documents folder only."""

    with run_lock(settings):
        started = time.perf_counter()
        now = datetime.now(timezone.utc)
        report = RetrainReport(run_id=f"{now:%Y%m%dT%H%M%SZ}", trigger=trigger,
                               started_at=now.isoformat(timespec="seconds"),
                               serving_before=serving_versions(settings))
        run_dir = settings.data_dir / "retrain" / report.run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        state: dict = {}

        def step(name: str, fn: Callable[[], dict]) -> dict:
            t0 = time.perf_counter()
            try:
                detail = fn() or {}
            except Exception as exc:
                report.failed_step, report.error = name, f"{name}: {type(exc).__name__}: {exc}"[:1000]
                raise
            report.steps.append(StepResult(name, round(time.perf_counter() - t0, 2), detail))
            log.info("retrain %s: %s done in %.1fs", report.run_id, name, time.perf_counter() - t0)
            return detail

        def export() -> dict:
            result = jobs.export_feedback_job(settings)
            return {"validated": result.validated, "review": result.review, "passages": result.passages}

        def index() -> dict:
            if generate_qa if generate_qa is not None else chunks is None:
                jobs.generate_qa_job(settings)
            state["records"] = records = qa_records(settings)
            info = build_candidate_index(settings, chunks() if chunks else _default_chunks(settings),
                                         records + jobs.confirmed_passage_questions(settings))
            state["index"] = info
            return {"version": info.version, "n_chunks": info.n_chunks, "n_questions": info.n_questions,
                    "n_embedded": info.n_embedded, "feedback_records": sum(
                        r.get("generator") == "feedback" for r in records)}

        def train() -> dict:
            if not settings.retrain_train:
                return {"skipped": "RETRAIN_TRAIN=false"}
            if settings.answer_strategy == "reader":  # the model that answers is the model that learns

                documents = {doc.name: doc.text for doc in load_configured(settings)}
                held = training_exclusions(state["records"])
                _, counts = build_examples(state["records"], read_review(settings), documents, heldout_ids=held,
                                           replay=0, seed=0)
                if counts["positives"] + counts["negatives"] == 0:
                    return {"skipped": "no citizen feedback to learn from yet"}
                meta = train_in_subprocess(settings, ReaderRunArgs(max_steps=settings.retrain_max_steps),
                                           run_dir, kind="reader")
                state["adapter"] = meta
                metrics = meta.get("metrics") or {}
                return {"adapter": meta.get("version"), "run": meta.get("run_id"), "kind": "reader",
                        "positives": metrics.get("positives"), "negatives": metrics.get("negatives"),
                        "replay": metrics.get("replay"), "steps": metrics.get("steps"),
                        "train_s": (meta.get("timings") or {}).get("wall_s"), "cost": meta.get("cost")}
            data = run_dir / "train_data.jsonl"
            _write_jsonl(data, state["records"])
            args = TrainArgs(model=settings.llm_model, data=str(data), max_steps=settings.retrain_max_steps,
                             batch_size=settings.retrain_batch_size, max_train_examples=settings.retrain_max_examples,
                             max_val_examples=settings.retrain_max_examples,
                             eval_every=settings.retrain_max_steps, save_every=10 ** 9, patience=0)
            meta = train_in_subprocess(settings, args, run_dir)
            state["adapter"] = meta
            metrics = meta.get("metrics") or {}
            return {"adapter": meta.get("version"), "run": meta.get("run_id"), "records": len(state["records"]),
                    "val_loss": metrics.get("val_loss"), "steps": metrics.get("steps"),
                    "train_s": (meta.get("timings") or {}).get("wall_s"), "cost": meta.get("cost")}

        def evaluate_step() -> dict:
            state["eval"] = result = evaluate(settings, state["index"], state.get("adapter"), state["records"])
            return result

        def promote_step() -> dict:
            result = state["eval"]
            index_ok = result["index"]["better_or_equal"]
            adapter_ok = bool(result.get("adapter", {}).get("better_or_equal"))
            reasons = []
            if not index_ok:
                reasons.append("index: candidate worse than serving on held-out questions")
            if state.get("adapter") is not None and not adapter_ok:
                reasons.append(f"adapter: candidate worse by {result['adapter']['by']}")
            adapter_dir = Path(state["adapter"]["adapter_dir"]) if adapter_ok else None
            if index_ok or adapter_dir is not None:
                promote(settings, index=state["index"] if index_ok else None, adapter_dir=adapter_dir)
            report.promoted = {"index": index_ok, "adapter": adapter_dir is not None}
            report.reason = "; ".join(reasons) or "candidate not worse than serving: promoted"
            return {"promoted": report.promoted, "reason": report.reason}

        def engine() -> dict:
            meta = state.get("adapter") or {}
            if not report.promoted.get("adapter") or meta.get("kind", "llm") != "llm":
                return {"skipped": "no new LLM adapter"}
            try:
                return publish_adapter(settings, Path(meta["adapter_dir"]))
            except EngineError as exc:  # nothing moved on the engine: the previous adapter keeps answering
                kept = published_adapter(settings)
                report.failed_step, report.error = "engine", f"engine: {exc}"[:1000]
                log.error("retrain %s: engine publication failed, %s keeps serving: %s", report.run_id,
                          kept["name"] if kept else "the base model", exc)
                return {"failed": str(exc)[:300], "kept": kept["name"] if kept else None}

        def publish() -> dict:
            if not report.promoted.get("adapter"):
                return {"skipped": "no new adapter"}
            if not (settings.hf_repo_id and settings.hf_token):
                return {"skipped": "HF_REPO_ID/HF_TOKEN not set"}

            return {"url": push_run(settings, state["adapter"]["version"], what="both")}

        try:
            step("export", export)
            step("index", index)
            step("train", train)
            step("evaluate", evaluate_step)
            step("promote", promote_step)
            if settings.engine_publish != "none":
                step("engine", engine)
            try:
                step("publish", publish)
            except Exception:  # the promoted versions are better: keep them, tell the admins the push failed
                log.exception("retrain %s: publish failed", report.run_id)
            report.ok = report.error is None
        except Exception:
            log.exception("retrain %s failed at %s", report.run_id, report.failed_step)
        finally:
            shutil.rmtree(settings.data_dir / "index_staging", ignore_errors=True)
            report.duration_s = round(time.perf_counter() - started, 2)
            report.serving_after = serving_versions(settings)
            report.metrics = {k: v for k, v in (state.get("eval") or {}).items()}
            report.cost = (state.get("adapter") or {}).get("cost") or {}
            record(settings, report)
        if report.failed_step and report.failed_step not in ("publish", "engine"):
            raise RetrainFailed(report)
        return report


def record(settings: Settings, report: RetrainReport) -> Path:
    """Write the run's record (atomically) under ``DATA_DIR/retrain/runs``."""
    folder = runs_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{report.run_id}.json"
    tmp = path.with_suffix(".tmp")
    report.steps.append(StepResult("record", 0.0, {"path": str(path)}))
    tmp.write_text(json.dumps(report.as_dict(), ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)
    return path


def last_runs(settings: Settings, limit: int = 5) -> list[dict]:
    folder = runs_dir(settings)
    paths = sorted(folder.glob("*.json"), reverse=True)[:limit] if folder.is_dir() else []
    return [json.loads(p.read_text(encoding="utf-8")) for p in paths]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "train-worker":
        sys.exit(_train_worker(sys.argv[2]))
    sys.exit("usage: python -m pipeline.loop.nightly train-worker SPEC.json  (the job itself: oraculo retrain)")
