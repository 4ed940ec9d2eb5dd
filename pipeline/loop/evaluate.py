"""What the nightly loop measures a candidate on: a stable held-out fifth of the QA records, and one answerer's score.

The held-out records are the same night after night (a hash of their id), and the reader's nightly training
never trains on them (:mod:`pipeline.loop.reader_job`), so candidate and serving versions are compared on
questions neither learned from.

Example::

    >>> from pipeline.loop.evaluate import heldout_records
    >>> records = [{"id": str(i), "question": "q", "answer": "a"} for i in range(100)]
    >>> held = heldout_records(records, 10 ** 9)
    >>> 10 <= len(held) <= 30 and held == heldout_records(records, 10 ** 9)
    True
"""

from __future__ import annotations

import hashlib

from pipeline.core.text import token_f1

HELDOUT_MODULUS = 5  # one QA record in five (stable hash of its id) is held out for the evaluation


def heldout_records(records: list[dict], limit: int) -> list[dict]:
    """A stable fifth of the QA records (by hash of their id, so it is the same set night after night)."""
    def digest(record: dict) -> int:
        key = str(record.get("id") or record.get("question"))
        return int(hashlib.md5(key.encode("utf-8")).hexdigest(), 16)

    chosen = [r for r in records if r.get("answer") and r.get("question") and digest(r) % HELDOUT_MODULUS == 0]
    return sorted(chosen, key=digest)[:limit]


def score_answerer(answerer, records: list[dict], *, top_k: int, f1_on: list[dict] | None = None) -> dict:
    """Retrieval hit@k on ``records`` (the record's chunk, else its document, among the hits) and answer token
    F1 on ``f1_on`` (default: the same records; ``None`` in the result when that list is empty)."""
    hits = 0.0
    for record in records:
        found = answerer.retriever.search(record["question"], top_k)
        chunk_id, document = record.get("chunk_id"), record.get("document")
        hits += any((h.chunk.id == chunk_id) if chunk_id else (h.chunk.document == document) for h in found)
    f1_on = records if f1_on is None else f1_on
    f1 = 0.0
    for record in f1_on:
        answer = answerer.answer(record["question"])
        f1 += token_f1(answer.text, [record["answer"]]) if not answer.abstained else 0.0
    return {"hit_at_k": round(hits / max(len(records), 1), 4),
            "f1": round(f1 / len(f1_on), 4) if f1_on else None, "n": len(records), "n_f1": len(f1_on)}
