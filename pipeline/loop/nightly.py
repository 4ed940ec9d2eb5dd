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
   strategy is generative, else by its validation loss against the serving adapter's (``pipeline.loop.compare``);
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

from pipeline.core.files import atomic_write_text, write_jsonl_atomic
from pipeline.documents.chunking import chunk_document
from pipeline.documents.load import load_configured, load_documents
from pipeline.loop import jobs
from pipeline.loop.compare import evaluate
from pipeline.loop.reader_job import ReaderRunArgs, build_examples, read_review, train_reader_run, training_exclusions
from pipeline.qa.records import qa_records
from pipeline.serving.engine import EngineError, publish_adapter
from pipeline.serving.promote import build_candidate_index, promote
from pipeline.serving.versions import published_adapter, serving_versions
from pipeline.settings import Settings
from pipeline.training.publish import push_run
from pipeline.training.args import TrainArgs
from pipeline.training.train import main

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



# --- the job ------------------------------------------------------------------------------------------

def _default_chunks(settings: Settings) -> list:
    return [c for doc in load_documents(Path(settings.documents_dir)) for c in chunk_document(doc)]


def runs_dir(settings: Settings) -> Path:
    return settings.data_dir / "retrain" / "runs"


@dataclass
class _Night:
    """One run of the job: its report, its folder, and what each step hands to the next ones."""

    settings: Settings
    report: RetrainReport
    run_dir: Path
    chunks: Callable[[], list] | None = None
    generate_qa: bool | None = None
    records: list[dict] = field(default_factory=list)  # the QA records (index step), trained and evaluated on
    candidate_index: object = None                      # the candidate index built aside (index step)
    adapter: dict | None = None                         # the trained adapter's metadata (train step)
    evaluation: dict | None = None                      # candidate vs serving (evaluate step)

    def run(self) -> None:
        """The steps in order; a failing step raises (after :meth:`step` recorded it), publish's failure does not."""
        self.step("export", self.export)
        self.step("index", self.index)
        self.step("train", self.train)
        self.step("evaluate", self.evaluate)
        self.step("promote", self.promote)
        if self.settings.engine_publish != "none":
            self.step("engine", self.engine)
        try:
            self.step("publish", self.publish)
        except Exception:  # the promoted versions are better: keep them, tell the admins the push failed
            log.exception("retrain %s: publish failed", self.report.run_id)

    def step(self, name: str, fn: Callable[[], dict]) -> dict:
        report = self.report
        t0 = time.perf_counter()
        try:
            detail = fn() or {}
        except Exception as exc:
            report.failed_step, report.error = name, f"{name}: {type(exc).__name__}: {exc}"[:1000]
            raise
        report.steps.append(StepResult(name, round(time.perf_counter() - t0, 2), detail))
        log.info("retrain %s: %s done in %.1fs", report.run_id, name, time.perf_counter() - t0)
        return detail

    def export(self) -> dict:
        result = jobs.export_feedback_job(self.settings)
        return {"validated": result.validated, "review": result.review, "passages": result.passages}

    def index(self) -> dict:
        settings, chunks = self.settings, self.chunks
        if self.generate_qa if self.generate_qa is not None else chunks is None:
            jobs.generate_qa_job(settings)
        self.records = records = qa_records(settings)
        info = build_candidate_index(settings, chunks() if chunks else _default_chunks(settings),
                                     records + jobs.confirmed_passage_questions(settings))
        self.candidate_index = info
        return {"version": info.version, "n_chunks": info.n_chunks, "n_questions": info.n_questions,
                "n_embedded": info.n_embedded, "feedback_records": sum(
                    r.get("generator") == "feedback" for r in records)}

    def train(self) -> dict:
        if not self.settings.retrain_train:
            return {"skipped": "RETRAIN_TRAIN=false"}
        if self.settings.answer_strategy == "reader":  # the model that answers is the model that learns
            return self._train_reader()
        return self._train_llm()

    def _train_reader(self) -> dict:
        settings = self.settings
        documents = {doc.name: doc.text for doc in load_configured(settings)}
        held = training_exclusions(self.records)
        _, counts = build_examples(self.records, read_review(settings), documents, heldout_ids=held,
                                   replay=0, seed=0)
        if counts["positives"] + counts["negatives"] == 0:
            return {"skipped": "no citizen feedback to learn from yet"}
        meta = train_in_subprocess(settings, ReaderRunArgs(max_steps=settings.retrain_max_steps),
                                   self.run_dir, kind="reader")
        self.adapter = meta
        metrics = meta.get("metrics") or {}
        return {"adapter": meta.get("version"), "run": meta.get("run_id"), "kind": "reader",
                "positives": metrics.get("positives"), "negatives": metrics.get("negatives"),
                "replay": metrics.get("replay"), "steps": metrics.get("steps"),
                "train_s": (meta.get("timings") or {}).get("wall_s"), "cost": meta.get("cost")}

    def _train_llm(self) -> dict:
        settings = self.settings
        data = self.run_dir / "train_data.jsonl"
        write_jsonl_atomic(data, self.records, sort_keys=False)
        args = TrainArgs(model=settings.llm_model, data=str(data), max_steps=settings.retrain_max_steps,
                         batch_size=settings.retrain_batch_size, max_train_examples=settings.retrain_max_examples,
                         max_val_examples=settings.retrain_max_examples,
                         eval_every=settings.retrain_max_steps, save_every=10 ** 9, patience=0)
        meta = train_in_subprocess(settings, args, self.run_dir)
        self.adapter = meta
        metrics = meta.get("metrics") or {}
        return {"adapter": meta.get("version"), "run": meta.get("run_id"), "records": len(self.records),
                "val_loss": metrics.get("val_loss"), "steps": metrics.get("steps"),
                "train_s": (meta.get("timings") or {}).get("wall_s"), "cost": meta.get("cost")}

    def evaluate(self) -> dict:
        self.evaluation = result = evaluate(self.settings, self.candidate_index, self.adapter, self.records)
        return result

    def promote(self) -> dict:
        result, report = self.evaluation, self.report
        index_ok = result["index"]["better_or_equal"]
        adapter_ok = bool(result.get("adapter", {}).get("better_or_equal"))
        reasons = []
        if not index_ok:
            reasons.append("index: candidate worse than serving on held-out questions")
        if self.adapter is not None and not adapter_ok:
            reasons.append(f"adapter: candidate worse by {result['adapter']['by']}")
        adapter_dir = Path(self.adapter["adapter_dir"]) if adapter_ok else None
        if index_ok or adapter_dir is not None:
            promote(self.settings, index=self.candidate_index if index_ok else None, adapter_dir=adapter_dir)
        report.promoted = {"index": index_ok, "adapter": adapter_dir is not None}
        report.reason = "; ".join(reasons) or "candidate not worse than serving: promoted"
        return {"promoted": report.promoted, "reason": report.reason}

    def engine(self) -> dict:
        meta, report = self.adapter or {}, self.report
        if not report.promoted.get("adapter") or meta.get("kind", "llm") != "llm":
            return {"skipped": "no new LLM adapter"}
        try:
            return publish_adapter(self.settings, Path(meta["adapter_dir"]))
        except EngineError as exc:  # nothing moved on the engine: the previous adapter keeps answering
            kept = published_adapter(self.settings)
            report.failed_step, report.error = "engine", f"engine: {exc}"[:1000]
            log.error("retrain %s: engine publication failed, %s keeps serving: %s", report.run_id,
                      kept["name"] if kept else "the base model", exc)
            return {"failed": str(exc)[:300], "kept": kept["name"] if kept else None}

    def publish(self) -> dict:
        if not self.report.promoted.get("adapter"):
            return {"skipped": "no new adapter"}
        if not (self.settings.hf_repo_id and self.settings.hf_token):
            return {"skipped": "HF_REPO_ID/HF_TOKEN not set"}
        return {"url": push_run(self.settings, self.adapter["version"], what="both")}


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
        night = _Night(settings, report, run_dir, chunks=chunks, generate_qa=generate_qa)
        try:
            night.run()
            report.ok = report.error is None
        except Exception:
            log.exception("retrain %s failed at %s", report.run_id, report.failed_step)
        finally:
            shutil.rmtree(settings.data_dir / "index_staging", ignore_errors=True)
            report.duration_s = round(time.perf_counter() - started, 2)
            report.serving_after = serving_versions(settings)
            report.metrics = {k: v for k, v in (night.evaluation or {}).items()}
            report.cost = (night.adapter or {}).get("cost") or {}
            record(settings, report)
        if report.failed_step and report.failed_step not in ("publish", "engine"):
            raise RetrainFailed(report)
        return report


def record(settings: Settings, report: RetrainReport) -> Path:
    """Write the run's record (atomically) under ``DATA_DIR/retrain/runs``."""
    path = runs_dir(settings) / f"{report.run_id}.json"
    report.steps.append(StepResult("record", 0.0, {"path": str(path)}))
    atomic_write_text(path, json.dumps(report.as_dict(), ensure_ascii=False, indent=1, default=str))
    return path


def last_runs(settings: Settings, limit: int = 5) -> list[dict]:
    folder = runs_dir(settings)
    paths = sorted(folder.glob("*.json"), reverse=True)[:limit] if folder.is_dir() else []
    return [json.loads(p.read_text(encoding="utf-8")) for p in paths]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "train-worker":
        sys.exit(_train_worker(sys.argv[2]))
    sys.exit("usage: python -m pipeline.loop.nightly train-worker SPEC.json  (the job itself: oraculo retrain)")
