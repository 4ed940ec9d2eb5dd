"""Question-answer pairs from documents: offline templates or any OpenAI-compatible chat server, validated.

The pairs feed the index (a question is one more way to reach its chunk) and LoRA training. For each document
``<qa_dir>/<document>.jsonl`` holds the valid pairs and ``<document>.invalid.jsonl`` the rejected ones with their
``reasons``; ``manifest.json`` remembers, per document, the content hash, generator, counts, tokens and the chunks
that failed. A record (shared with the feedback export)::

    {"id", "question", "answer", "document", "chunk_id", "span": [start, end], "tags": [...],
     "generator": "offline" | "openai:<model>" | "feedback" | "human", "created_at": ISO-8601 UTC}

``span`` is where the answer's supporting text lies in ``Document.text``. Runs are incremental and resumable: an
unchanged document is not sent again, a document with failed chunks asks again only for those, the manifest is
rewritten after every document, and every file is replaced atomically (never half-written after a kill).
Any other ``*.jsonl`` in ``qa_dir`` is taken for hand-written pairs and checked by
:func:`pipeline.qa.records.load_qa_records` (reading records back lives in :mod:`pipeline.qa.records`).

Example::

    >>> from pathlib import Path
    >>> from pipeline.documents.load import load_documents
    >>> from pipeline.qa.generate import generate_qa
    >>> from pipeline.qa.records import load_qa_records
    >>> summary = generate_qa(load_documents(None), out_dir=Path("/tmp/oraculo_qa"), generator="offline")
    >>> print(summary.format())                                   # doctest: +SKIP
    >>> records = load_qa_records(Path("/tmp/oraculo_qa"))        # valid pairs only, generated or hand-written
    >>> sorted(records[0])
    ['answer', 'chunk_id', 'created_at', 'document', 'generator', 'id', 'question', 'span', 'tags']
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Protocol

from pipeline.documents.chunking import Chunk, chunk_document, split_sentences
from pipeline.documents.text import Document
from pipeline.qa.openai_compat import ChunkResult, OpenAIQAGenerator, parse_pairs_json  # noqa: F401 (re-exported)
from pipeline.qa.records import INVALID_SUFFIX, RECORD_KEYS, read_jsonl_quietly
from pipeline.qa.structure import _ARTICLE, _PARAGRAPH, section_at, structure_items, table_spans
from pipeline.qa.summary import GenerationSummary, add_usage
from pipeline.qa.templates import questions_for_sentence
from pipeline.qa.validate import content_tokens, document_type, pair_tags, validate_records
from pipeline.core.files import atomic_write_text, write_jsonl_atomic

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MAX_OFFLINE_PER_CHUNK = 6  # sentence-template questions per chunk
MAX_STRUCTURE_PER_CHUNK = 40  # article/table-row questions per chunk (a fee table is worth every row)


@dataclass
class QAPair:
    """One question with its answer and where the answer comes from."""

    id: str
    question: str
    answer: str
    document: str
    chunk_id: str
    span: tuple[int, int]
    tags: list[str] = field(default_factory=list)
    generator: str = "offline"
    created_at: str = ""

    def to_record(self) -> dict:
        record = asdict(self)
        record["span"] = [int(self.span[0]), int(self.span[1])]
        return record


class QAGenerator(Protocol):
    name: str
    concurrency: int

    def generate_chunk(self, doc: Document, chunk: Chunk) -> ChunkResult: ...


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _pair_id(document: str, question: str, span: tuple[int, int]) -> str:
    digest = hashlib.sha1(f"{question}|{span[0]}|{span[1]}".encode()).hexdigest()[:12]
    return f"{document}:{digest}"


# --- offline --------------------------------------------------------------------------------------------------

class OfflineQAGenerator:
    """Template questions from structure (articles, § and table rows) and sentences (definitions, dates,
    deadlines, quantities, money, who, where); the answer is the supporting line or sentence, never the chunk."""

    name = "offline"
    concurrency = 1

    def __init__(self) -> None:
        self._cache: dict[str, tuple] = {}

    def _structure(self, doc: Document) -> tuple:
        if doc.sha256 not in self._cache:
            kind = document_type(doc.name, doc.text)
            self._cache = {doc.sha256: (structure_items(doc.text, doc_type=kind), table_spans(doc.text))}
        return self._cache[doc.sha256]

    def generate_chunk(self, doc: Document, chunk: Chunk) -> ChunkResult:
        items_in_doc, tables = self._structure(doc)
        items = [{"question": it.question, "answer": doc.text[it.start:it.end], "span": [it.start, it.end],
                  "kind": it.kind, "in_table": it.in_table}
                 for it in items_in_doc if chunk.start <= it.start and it.end <= chunk.end][:MAX_STRUCTURE_PER_CHUNK]
        n_sentence = 0
        for start, end in split_sentences(doc.text, chunk.start, chunk.end):
            if any(s < end and start < e for s, e in tables):
                continue  # table rows have their own questions
            sentence = doc.text[start:end]
            label = _ARTICLE.match(sentence) or _PARAGRAPH.match(sentence)
            for kind, question in questions_for_sentence(label["body"] if label else sentence):
                if n_sentence < MAX_OFFLINE_PER_CHUNK:
                    items.append({"question": question, "answer": sentence, "span": [start, end], "kind": kind})
                    n_sentence += 1
        return ChunkResult(chunk_id=chunk.id, items=items)


def generate_offline(doc: Document, chunks: list[Chunk]) -> list[QAPair]:
    """Offline pairs of ``chunks`` (not yet validated); ``span`` is exact in ``doc.text``."""
    gen = OfflineQAGenerator()
    return [p for c in chunks for p in pairs_from_result(doc, c, gen.generate_chunk(doc, c), gen.name)]


# --- turning raw items into pairs ------------------------------------------------------------------------------

def locate_answer(doc_text: str, chunk: Chunk, answer: str) -> tuple[tuple[int, int], bool]:
    """Span of ``answer`` inside the chunk: exact, then ignoring case and spacing, then the sentence (or two
    consecutive sentences) sharing most of its words. Returns ``(span, found)``; ``found`` means literal."""
    answer = answer.strip()
    pos = doc_text.find(answer, chunk.start, chunk.end) if answer else -1
    if pos >= 0:
        return (pos, pos + len(answer)), True
    words = [re.escape(w) for w in answer.split()]
    if words:
        match = re.compile(r"\s+".join(words), flags=re.IGNORECASE).search(doc_text, chunk.start, chunk.end)
        if match:
            return (match.start(), match.end()), True
    wanted = set(content_tokens(answer))
    sentences = split_sentences(doc_text, chunk.start, chunk.end)
    windows = sentences + [(a[0], b[1]) for a, b in zip(sentences, sentences[1:])]
    best, best_score = (chunk.start, chunk.end), -1.0
    for start, end in windows:  # shortest window wins a tie: single sentences come first
        score = len(wanted & set(content_tokens(doc_text[start:end]))) / max(1, len(wanted))
        if score > best_score + 1e-9:
            best, best_score = (start, end), score
    return best, False


def pairs_from_result(doc: Document, chunk: Chunk, result: ChunkResult, generator: str,
                      tables: list[tuple[int, int]] | None = None) -> list[QAPair]:
    """Raw items of one chunk -> :class:`QAPair` with an exact span and tags (doc type, dates, money, section)."""
    doc_type = document_type(doc.name, doc.text)
    tables = table_spans(doc.text) if tables is None else tables
    created_at = _now()
    pairs = []
    for item in result.items:
        question = " ".join(item["question"].split())
        if item.get("span"):
            span, answer = (int(item["span"][0]), int(item["span"][1])), item["answer"]
        else:
            span, found = locate_answer(doc.text, chunk, item["answer"])
            answer = doc.text[span[0]:span[1]] if found else " ".join(item["answer"].split())
        in_table = item.get("in_table", any(s < span[1] and span[0] < e for s, e in tables))
        section = section_at(doc.text, span[0]) or chunk.section
        tags = pair_tags(kind=item.get("kind", "llm"), doc_type=doc_type, section=section, answer=answer,
                         in_table=in_table)
        pairs.append(QAPair(id=_pair_id(doc.name, question, span), question=question, answer=answer,
                            document=doc.name, chunk_id=chunk.id, span=span, tags=tags, generator=generator,
                            created_at=created_at))
    return pairs


# --- files ----------------------------------------------------------------------------------------------------

def write_jsonl(path: Path, records: Iterable[dict]) -> None:
    write_jsonl_atomic(path, records, sort_keys=False)  # keep the id/question/answer order people read


def _read_manifest(out_dir: Path) -> dict:
    try:
        data = json.loads((out_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, json.JSONDecodeError):
        return {}


def _finish_document(doc: Document, chunks: list[Chunk], results: dict[str, ChunkResult], kept: list[dict],
                     gen_name: str, out_dir: Path, entry_base: dict, missing: list[str]) -> dict:
    """Validate and write one document's pairs (valid and invalid files); the manifest entry."""
    tables = table_spans(doc.text)
    by_id = {c.id: c for c in chunks}
    records = list(kept)
    failed, usage = list(missing), dict(entry_base.get("usage") or {"prompt_tokens": 0, "completion_tokens": 0,
                                                                     "total_tokens": 0})
    errors = []
    for chunk in chunks:
        result = results.get(chunk.id)
        if result is None:
            continue
        add_usage(usage, result.usage)
        if result.error:
            failed.append(chunk.id)
            errors.append({"document": doc.name, "chunk_id": chunk.id, "error": result.error})
        records += [p.to_record() for p in pairs_from_result(doc, by_id[chunk.id], result, gen_name, tables)]
    order = {c.id: i for i, c in enumerate(chunks)}
    records.sort(key=lambda r: (order.get(r.get("chunk_id"), len(order)), r["span"][0]))
    valid, invalid = [], []
    for record, reasons in validate_records(records, doc.text):
        (invalid if reasons else valid).append({**{k: record[k] for k in RECORD_KEYS},
                                                **({"reasons": reasons} if reasons else {})})
    write_jsonl(out_dir / f"{doc.name}.jsonl", valid)
    invalid_path = out_dir / f"{doc.name}{INVALID_SUFFIX}"
    if invalid:
        write_jsonl(invalid_path, invalid)
    else:
        invalid_path.unlink(missing_ok=True)
    return {**entry_base, "n_valid": len(valid), "n_invalid": len(invalid), "usage": usage,
            "failed_chunks": sorted(set(failed), key=lambda cid: order.get(cid, 0)), "errors": errors,
            "updated_at": _now()}


_Planned = tuple[Document, list[Chunk], list[Chunk], list[dict], dict]  # doc, chunks, to ask, kept records, entry


def _plan(documents: list[Document], manifest: dict, out_dir: Path, gen_name: str, max_chars: int,
          summary: GenerationSummary) -> list[_Planned]:
    """What to ask per document (unchanged ones are added to ``summary.skipped``)."""
    plan: list[_Planned] = []
    for doc in documents:
        entry = manifest.get(doc.name, {})
        path = out_dir / f"{doc.name}.jsonl"
        same = (entry.get("sha256") == doc.sha256 and entry.get("generator") == gen_name
                and entry.get("max_chars") == max_chars and path.exists())
        if same and not entry.get("failed_chunks"):
            summary.skipped.append(doc.name)
            continue
        chunks = chunk_document(doc, max_chars=max_chars)
        base = {"sha256": doc.sha256, "generator": gen_name, "max_chars": max_chars}
        kept: list[dict] = []
        todo = chunks
        if same:  # only the chunks that failed (or were interrupted) are asked again
            failed = set(entry["failed_chunks"])
            todo = [c for c in chunks if c.id in failed]
            kept = [r for r in read_jsonl_quietly(path) + read_jsonl_quietly(out_dir / f"{doc.name}{INVALID_SUFFIX}")
                    if r.get("chunk_id") not in failed and all(k in r for k in RECORD_KEYS)]
            base["usage"] = entry.get("usage")
        plan.append((doc, chunks, todo, kept, base))
    return plan


def _write_manifest(out_dir: Path, manifest: dict) -> None:
    atomic_write_text(out_dir / MANIFEST_NAME, json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True))


def _finish_planned(planned: _Planned, futures: dict[str, Future], *, interrupted: bool, gen_name: str,
                    out_dir: Path, manifest: dict, summary: GenerationSummary) -> None:
    """Collect one document's answered chunks, write its files and manifest entry, add it to ``summary``."""
    doc, chunks, todo, kept, base = planned
    results, missing = {}, []
    for chunk_id, fut in futures.items():
        exc = fut.exception() if fut.done() and not fut.cancelled() else KeyboardInterrupt()
        if exc is None:
            results[chunk_id] = fut.result()
        elif isinstance(exc, Exception):  # a generator bug: record it, keep the run going
            results[chunk_id] = ChunkResult(chunk_id=chunk_id, error=f"{type(exc).__name__}: {exc}")
        else:  # not answered (interrupted): asked on the next run
            missing.append(chunk_id)
    if interrupted and not results:
        return
    entry = _finish_document(doc, chunks, results, kept, gen_name, out_dir, base, missing)
    manifest[doc.name] = entry
    _write_manifest(out_dir, manifest)
    summary.generated.append(doc.name)
    summary.n_valid += entry["n_valid"]
    summary.n_invalid += entry["n_invalid"]
    summary.chunks_asked += len(results)
    for result in results.values():
        add_usage(summary.usage, result.usage)
    summary.errors.extend(entry["errors"])


def _remove_gone(documents: list[Document], manifest: dict, out_dir: Path, summary: GenerationSummary) -> None:
    """Delete the generated files of documents no longer given; write the manifest when it changed or is missing."""
    present = {doc.name for doc in documents}
    for name in sorted(set(manifest) - present):
        (out_dir / f"{name}.jsonl").unlink(missing_ok=True)  # only files this function wrote are listed
        (out_dir / f"{name}{INVALID_SUFFIX}").unlink(missing_ok=True)
        del manifest[name]
        summary.removed.append(name)
    if summary.removed or not (out_dir / MANIFEST_NAME).exists():
        _write_manifest(out_dir, manifest)


def generate_qa(documents: list[Document], *, out_dir: Path, generator: QAGenerator | str = "offline",
                max_chars: int = 900, progress: bool = False) -> GenerationSummary:
    """Write ``out_dir/<doc>.jsonl`` (+ ``.invalid.jsonl``) for every document that is new, changed or unfinished.

    ``generator`` is ``"offline"`` or an object with ``name``, ``concurrency`` and ``generate_chunk(doc, chunk)``
    (an :class:`OpenAIQAGenerator`). Chunks are asked with at most ``generator.concurrency`` in flight. Ctrl-C
    keeps the chunks already answered; the next run asks for the rest.
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    gen: QAGenerator = OfflineQAGenerator() if generator == "offline" else generator  # type: ignore[assignment]
    if isinstance(gen, str):
        raise ValueError(f"unknown generator {gen!r}")
    manifest = _read_manifest(out_dir)
    summary = GenerationSummary(generator=gen.name, documents=len(documents))
    plan = _plan(documents, manifest, out_dir, gen.name, max_chars, summary)

    total = sum(len(todo) for _, _, todo, _, _ in plan)
    bar = tqdm(total=total, unit="chunk", desc=f"QA {gen.name}", disable=not progress)
    pool = ThreadPoolExecutor(max_workers=max(1, int(getattr(gen, "concurrency", 1))))
    futures: list[dict[str, Future]] = []
    for doc, _, todo, _, _ in plan:
        futures.append({c.id: pool.submit(gen.generate_chunk, doc, c) for c in todo})
    for fs in futures:
        for f in fs.values():
            f.add_done_callback(lambda _f: bar.update(1))
    finished = 0

    def finish(i: int, *, interrupted: bool) -> None:
        _finish_planned(plan[i], futures[i], interrupted=interrupted, gen_name=gen.name, out_dir=out_dir,
                        manifest=manifest, summary=summary)

    try:
        for i in range(len(plan)):
            for fut in futures[i].values():
                try:
                    fut.result()
                except Exception:  # noqa: BLE001 (handled in finish)
                    pass
            finish(i, interrupted=False)
            finished = i + 1
    except KeyboardInterrupt:
        summary.interrupted = True
        pool.shutdown(wait=False, cancel_futures=True)
        for i in range(finished, len(plan)):
            finish(i, interrupted=True)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
        summary.n_pairs = summary.n_valid + summary.n_invalid

    _remove_gone(documents, manifest, out_dir, summary)
    logger.info("QA generation (%s): %d generated, %d unchanged, %d removed, %d pairs (%d valid), %d tokens, %d errors",
                gen.name, len(summary.generated), len(summary.skipped), len(summary.removed), summary.n_pairs,
                summary.n_valid, summary.usage["total_tokens"], len(summary.errors))
    return summary
