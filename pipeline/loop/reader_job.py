"""One training run of the reader's adapter from what citizens taught: `oraculo train` and the nightly job.

Examples come from the QA records the loop already keeps (``pipeline.qa.records.qa_records``):

- validated 👍 answers (``generator == "feedback"``): the question over the passage it was answered from, the
  answer at its recorded ``span`` — positives;
- every 👎 answer of the review file (``exports/feedback_review.jsonl``): the question over its passage, the
  rejected span as a *negative* (unlikelihood, :func:`pipeline.training.reader_train.reader_loss`), never a positive;
- a rehearsal sample: ``replay`` examples per feedback example drawn from the first training's mix, kept
  beside the adapter (``rehearsal.jsonl``, :func:`pipeline.training.reader_train.load_rehearsal`), so that one night's
  few votes do not pull the reader away from everything else (without it, F1 fell on the documents nobody
  voted on); hand-written QA records (``generator == "human"``) join the votes as positives. QA pairs
  generated offline are not trained on: their answers are whole clauses, and the reader learnt to answer
  longer (exact match fell on every document).

Records held out for the evaluation (:func:`pipeline.loop.evaluate.heldout_records`) are never trained on. The run
continues the serving reader adapter (else the shipped one), is recorded as a ``training_runs`` row with its
cost, and writes ``DATA_DIR/models/adapters/<version>/`` (adapter + ``metadata.json`` with ``kind: reader``)
atomically; promotion and hot reload are ``pipeline.serving.promote``'s.

Example::

    from pipeline.loop.reader_job import ReaderRunArgs, train_reader_run
    metadata = train_reader_run(settings, ReaderRunArgs(max_steps=40))
    metadata["adapter_dir"], metadata["metrics"]["examples"]
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from pipeline.answering.answerability import FILE, load_for
from pipeline.answering.reader import SHIPPED_ADAPTER, SpanReader
from pipeline.core.text import token_f1
from pipeline.documents.load import load_configured
from pipeline.llm.adapters import adapter_kind
from pipeline.loop.evaluate import heldout_records
from pipeline.qa.records import qa_records
from pipeline.serving.versions import serving_adapter
from pipeline.settings import EMBEDDED, Settings
from pipeline.training.cost import run_cost
from pipeline.training.reader_train import REHEARSAL_FILE, QAExample, ReaderTrainArgs, load_rehearsal, locate_answer
from pipeline.training.reader_train import main as train_main
from pipeline.training.runs import Heartbeat
from storage import repository

log = logging.getLogger(__name__)

REVIEW_FILE = "feedback_review.jsonl"
# Below this many feedback records, all of them train (holding one of three out would leave nothing to learn
# from); the candidate is then checked on the held-out generated / hand-written records only.
MIN_FEEDBACK_TO_HOLD_OUT = 5
CARRIED_FILES = (REHEARSAL_FILE, "abstention.json")
TAUGHT_BY_PEOPLE = ("feedback", "human")  # QA records that are positives: validated 👍 and hand-written pairs
_CHUNK_SPAN = re.compile(r":(\d+)-(\d+)$")


@dataclass
class ReaderRunArgs:
    max_steps: int = 60          # optimiser steps at most (a night's votes are few)
    epochs: float = 2.0          # passes over the votes and their rehearsal sample, capped by max_steps; 3 passes
    batch_size: int = 8          # at lr 2e-4 moved the reader so much that the nightly evaluation refused it
    lr: float = 1e-4             # a fifth of the first training's: the adapter is refined, not relearned
    replay: int = 3              # rehearsal examples (the first training's mix) per feedback example
    seed: int = 0
    precision: str = "auto"


def _chunk_offsets(chunk_id: str) -> tuple[int, int] | None:
    match = _CHUNK_SPAN.search(chunk_id or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def _context(record_or_source: dict, documents: dict[str, str]) -> tuple[str, int] | None:
    """The passage text (as it is today) and its offset in the document, from a chunk id."""
    chunk_id = str(record_or_source.get("chunk_id") or "")
    offsets = _chunk_offsets(chunk_id)
    document = str(record_or_source.get("document") or chunk_id.rsplit(":", 1)[0])
    text = documents.get(document)
    if offsets is None or text is None or offsets[1] > len(text):
        return None
    return text[offsets[0]:offsets[1]], offsets[0]


def _located(answer: str, context: str, offset: int, span) -> int | None:
    if isinstance(span, (list, tuple)) and len(span) == 2 and context[span[0] - offset:span[1] - offset] == answer:
        return span[0] - offset
    return locate_answer(context, answer, None)


def positive_examples(records: list[dict], documents: dict[str, str]) -> list[QAExample]:
    out = []
    for record in records:
        found = _context(record, documents)
        answer = str(record.get("answer") or "").strip()
        if found is None or not answer or not record.get("question"):
            continue
        context, offset = found
        start = _located(answer, context, offset, record.get("span"))
        if start is not None:
            out.append(QAExample(record["question"], context, start, context[start:start + len(answer)]))
    return out


def negative_examples(review: list[dict], documents: dict[str, str]) -> list[QAExample]:
    """The 👎 answers (more 👎 than 👍) as rejected spans in their passage."""
    out = []
    for record in review:
        if record.get("abstained") or (record.get("down") or 0) <= (record.get("up") or 0):
            continue
        sources = record.get("sources") or []
        answer = str(record.get("answer") or "").strip()
        if not sources or not answer or not record.get("question"):
            continue
        found = _context(sources[0], documents)
        if found is None:
            continue
        context, offset = found
        start = _located(answer, context, offset, sources[0].get("span"))
        if start is not None:
            out.append(QAExample(record["question"], context, rejected=(start, start + len(answer))))
    return out


def read_review(settings: Settings) -> list[dict]:
    path = settings.exports_dir / REVIEW_FILE
    if not path.is_file():
        return []
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                log.warning("%s:%d: not JSON, skipped", path, number)
    return out


REHEARSAL_GUARD = 150  # the last examples of the rehearsal sample: never trained on at night, they check forgetting


def nightly_train_args(args: ReaderRunArgs, output_dir: Path, examples: Sequence[QAExample], *, base: str,
                       init_adapter: Path | None, cache_dir: Path | None = None) -> ReaderTrainArgs:
    """The trainer's arguments for one run of ``args`` on ``examples``: ``args.epochs`` passes, capped by
    ``args.max_steps``."""
    per_epoch = max(1, -(-len(examples) // args.batch_size))
    return ReaderTrainArgs(output_dir=output_dir, examples=examples, base=base, init_adapter=init_adapter,
                           cache_dir=cache_dir, epochs=min(args.epochs, args.max_steps / per_epoch),
                           max_steps=args.max_steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                           precision=args.precision, log_every=10)

def split_rehearsal(rehearsal: Sequence[QAExample]) -> tuple[list[QAExample], list[QAExample]]:
    """``(trained on at night, guard)``: the guard is the sample's last REHEARSAL_GUARD examples, kept only
    when the sample is large enough to spare them (else everything trains and there is no guard)."""
    rehearsal = list(rehearsal)
    if len(rehearsal) <= 2 * REHEARSAL_GUARD:
        return rehearsal, []
    return rehearsal[:-REHEARSAL_GUARD], rehearsal[-REHEARSAL_GUARD:]


def training_rehearsal(rehearsal: Sequence[QAExample]) -> list[QAExample]:
    """The part of the rehearsal sample nightly runs train on (all but the guard)."""
    return split_rehearsal(rehearsal)[0]


def rehearsal_guard(rehearsal: Sequence[QAExample]) -> list[QAExample]:
    """The answerable examples of the guard part: the candidate must read them as well as the serving reader."""
    return [e for e in split_rehearsal(rehearsal)[1] if e.answer_start is not None]


def best_span_f1(reader, items: Sequence[tuple[str, str, Sequence[str]]]) -> float | None:
    """Mean token F1 of ``reader``'s best span on each ``(question, passage, gold answers)``'s own passage
    (``None`` without items)."""
    if not items:
        return None
    total = 0.0
    for question, passage, answers in items:
        spans = reader.read(question, [passage], top=1)
        total += token_f1(spans[0].text, list(answers)) if spans else 0.0
    return round(total / len(items), 4)


def guard_f1(reader, examples: Sequence[QAExample]) -> float | None:
    """Mean token F1 of ``reader``'s best span on each example's own passage (``None`` without examples)."""
    return best_span_f1(reader, [(e.question, e.context, [e.answer_text]) for e in examples])


def recalibrated_abstention(model, serving, candidate, guard: Sequence[QAExample]):
    """The abstention model of ``serving`` moved to ``candidate``'s scale: a nightly run shifts the reader's
    scores (its margins fell after learning from 👎), and the same threshold then refuses answers it gave before.
    The decision is linear in the margin, the span score and the no-answer score, so its expected shift on the
    guard passages (never trained on) is the coefficients times the mean change of each; threshold and bold
    move by it. ``(model, shift)``; the model unchanged without a guard."""
    from dataclasses import replace

    reading = [name for name in ("margin", "score", "null") if name in model.features]
    if not guard or not reading:
        return model, 0.0
    changes = {name: 0.0 for name in reading}
    read = 0  # pairs where both readers found a span: the mean change is over those only
    for example in guard:
        old = serving.read(example.question, [example.context], top=1)
        new = candidate.read(example.question, [example.context], top=1)
        if old and new:
            read += 1
            for name in reading:
                changes[name] += getattr(new[0], name) - getattr(old[0], name)
    if not read:
        return model, 0.0
    changes = {name: total / read for name, total in changes.items()}
    shift = 0.0
    for name in reading:
        i = model.features.index(name)
        shift += model.coef[i] * changes[name] / model.scale[i]
    shift = round(shift, 4)
    return replace(model, threshold=round(model.threshold + shift, 4),
                   confident=round(model.confident + shift, 4)), shift


def build_examples(records: list[dict], review: list[dict], documents: dict[str, str], *, heldout_ids: set,
                   replay: int, seed: int, rehearsal: Sequence[QAExample] = ()) -> tuple[list[QAExample], dict]:
    """Positives (👍 and hand-written pairs), negatives (👎) and ``replay`` rehearsal examples per feedback
    example; held-out records never enter."""
    train = [r for r in records if str(r.get("id") or r.get("question")) not in heldout_ids]
    taught = [r for r in train if r.get("generator") in TAUGHT_BY_PEOPLE]
    positives = positive_examples(taught, documents)
    negatives = negative_examples(review, documents)
    examples, replayed = with_rehearsal(positives + negatives, rehearsal, replay=replay, rng=random.Random(seed))
    return examples, {"positives": len(positives), "negatives": len(negatives), "replay": replayed}


def with_rehearsal(taught: Sequence[QAExample], rehearsal: Sequence[QAExample], *, replay: int,
                   rng: random.Random) -> tuple[list[QAExample], int]:
    """``taught`` with ``replay`` examples per taught one drawn from the trainable part of ``rehearsal``, shuffled;
    and how many were drawn."""
    trainable = training_rehearsal(rehearsal)
    replayed = rng.sample(trainable, min(replay * max(len(taught), 1), len(trainable)))
    examples = list(taught) + replayed
    rng.shuffle(examples)
    return examples, len(replayed)


def training_exclusions(records: list[dict]) -> set[str]:
    """The ids of the records the evaluation holds out (never trained on); see MIN_FEEDBACK_TO_HOLD_OUT."""
    held = heldout_records(records, 10 ** 9)
    if sum(r.get("generator") == "feedback" for r in records) < MIN_FEEDBACK_TO_HOLD_OUT:
        held = [r for r in held if r.get("generator") != "feedback"]
    return {str(r.get("id") or r.get("question")) for r in held}


def initial_adapter(settings: Settings) -> Path | None:
    """What the run continues: the serving reader adapter, else the configured one."""
    serving = serving_adapter(settings)
    if serving is not None and adapter_kind(serving) == "reader":
        return serving
    if settings.reader_adapter == "none":
        return None
    if settings.reader_adapter == "shipped":
        return SHIPPED_ADAPTER if (SHIPPED_ADAPTER / "adapter_config.json").is_file() else None
    return Path(settings.reader_adapter)


def rehearsal_source(settings: Settings, init: Path | None) -> Path | None:
    """The adapter folder whose rehearsal sample (and abstention model) the run carries on: the one it
    continues, else the shipped one when the base is the embedded model it was trained for."""
    if init is not None and (Path(init) / REHEARSAL_FILE).is_file():
        return Path(init)
    if settings.reader_model == EMBEDDED and (SHIPPED_ADAPTER / REHEARSAL_FILE).is_file():
        return SHIPPED_ADAPTER
    return Path(init) if init is not None else None


def _recalibrate(settings: Settings, init: Path | None, staging: Path) -> float | None:
    """Move the abstention model carried into ``staging`` to the new adapter's scale (see
    :func:`recalibrated_abstention`); the shift applied, ``None`` when there is no model to move."""
    model = load_for(staging)
    _, guard = split_rehearsal(load_rehearsal(staging))  # answerable and unanswerable guard examples alike
    if model is None or not guard or init is None:
        return None
    serving = SpanReader.load(settings.reader_model, init, cache_dir=settings.model_cache_dir)
    candidate = SpanReader.load(settings.reader_model, staging, cache_dir=settings.model_cache_dir)
    moved, shift = recalibrated_abstention(model, serving, candidate, guard)
    moved.save(staging / FILE)
    log.info("abstention threshold moved by %+.3f to the new adapter's scale", shift)
    return shift


def _night_examples(settings: Settings, args: ReaderRunArgs, records: list[dict] | None,
                    review: list[dict] | None) -> tuple[list, dict, Path | None, Path | None]:
    """The night's examples (👍, 👎 and the rehearsal replayed), their counts, the adapter to start from and the
    folder the rehearsal comes from; ``ValueError`` when no vote can be learned from."""
    records = qa_records(settings) if records is None else records
    review = read_review(settings) if review is None else review
    documents = {doc.name: doc.text for doc in load_configured(settings)}
    init = initial_adapter(settings)
    rehearsal_from = rehearsal_source(settings, init)
    examples, counts = build_examples(records, review, documents, heldout_ids=training_exclusions(records),
                                      replay=args.replay, seed=args.seed, rehearsal=load_rehearsal(rehearsal_from))
    if counts["positives"] + counts["negatives"] == 0:
        raise ValueError("no citizen feedback to learn from yet (no 👍 or 👎 answer located in its passage)")
    return examples, counts, init, rehearsal_from


def _put_in_place(settings: Settings, staging: Path, final: Path, metadata: dict, *, init: Path | None,
                  rehearsal_from: Path | None) -> None:
    """Complete the trained adapter in ``staging`` (the files the next night needs, the recalibrated abstention,
    its metadata) and rename it to ``final`` in one step."""
    for name in CARRIED_FILES:  # what the next night (and the abstention) needs, passed along
        if rehearsal_from is not None and (Path(rehearsal_from) / name).is_file():
            shutil.copyfile(Path(rehearsal_from) / name, staging / name)
    metadata["metrics"]["abstention_shift"] = _recalibrate(settings, init, staging)
    (staging / "metadata.json").write_text(json.dumps(metadata, ensure_ascii=False, indent=2), encoding="utf-8")
    staging.rename(final)
    metadata["adapter_dir"] = str(final)


def train_reader_run(settings: Settings, args: ReaderRunArgs | None = None, *, records: list[dict] | None = None,
                     review: list[dict] | None = None) -> dict:
    """Train, record and save one reader adapter; its metadata (``adapter_dir`` included). ``ValueError``
    when there is no feedback to learn from."""
    from storage.db import migrated

    args = args or ReaderRunArgs()
    started = time.perf_counter()
    examples, counts, init, rehearsal_from = _night_examples(settings, args, records, review)
    digest = hashlib.sha256(json.dumps([asdict(e) for e in examples], sort_keys=True,
                                       default=str).encode()).hexdigest()[:16]
    with migrated(settings.database_url) as database:  # migrated first, disposed at the end
        with database.session() as session:
            run_id = repository.create_training_run(session, base_model=f"reader:{settings.reader_model}",
                                                    data_hash=digest, n_examples=len(examples),
                                                    gpu_hourly_usd=settings.gpu_hourly_usd).id
        version = f"reader-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-run{run_id}"
        final = settings.models_dir / "adapters" / version
        staging = final.with_name(f".{version}.tmp")  # renamed into place with its metadata: never half an adapter

        heartbeat = Heartbeat(database, run_id).start()  # a killed run is found and costed to its last beat
        try:
            report = train_main(nightly_train_args(args, staging, examples, base=settings.reader_model,
                                                   init_adapter=init, cache_dir=settings.model_cache_dir))
            wall = time.perf_counter() - started
            cost = run_cost(settings, seconds=wall)
            metrics = {"examples": len(examples), **counts, "steps": report.steps, "train_loss_last": report.final_loss,
                       "train_s": report.seconds, "precision": report.precision}
            metadata = {"kind": "reader", "version": version, "run_id": run_id, "base_model": settings.reader_model,
                        "init_adapter": str(init) if init else None, "data": {"hash": digest},
                        "hyperparameters": asdict(args), "metrics": metrics, "timings": {"wall_s": wall},
                        "cost": cost.as_dict(), "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            _put_in_place(settings, staging, final, metadata, init=init, rehearsal_from=rehearsal_from)
            with database.session() as session:
                repository.finish_training_run(session, run_id=run_id, status="succeeded", adapter_path=str(final),
                                               metrics=metrics, n_examples=len(examples),
                                               usd_brl=cost.quote.rate if cost.quote else None,
                                               usd_brl_at=cost.quote.at if cost.quote else None,
                                               cost_usd=cost.usd, cost_brl=cost.brl)
            log.info("reader run %s: adapter %s (%s)", run_id, final, counts)
            return metadata
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            with database.session() as session:
                repository.finish_training_run(session, run_id=run_id, status="failed",
                                               error=f"{type(exc).__name__}: {exc}"[:2000])
            raise
        finally:
            heartbeat.stop()
