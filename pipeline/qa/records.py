"""The QA record contract: read, validate, gather every record that indexing and training learn from.

Generated and hand-written records sit in ``DATA_DIR/data_qa`` (hand-written files go through the generation
rules, checked against the documents' text); validated feedback (👍 answers) in the export
``DATA_DIR/exports/feedback_validated.jsonl`` (:mod:`pipeline.feedback.export`). A record (see
:mod:`pipeline.qa.generate`) has the keys :data:`RECORD_KEYS`; a ``*.invalid.jsonl`` holds rejected ones.

Example::

    from pipeline.qa.records import qa_records
    records = qa_records(settings)   # [{"id", "question", "answer", "document", "chunk_id", "span", ...}, ...]
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pipeline.documents.load import load_configured
from pipeline.feedback.export import VALIDATED_FILENAME
from pipeline.qa.validate import check_record, find_answer_span, validate_records
from pipeline.settings import Settings

logger = logging.getLogger(__name__)

INVALID_SUFFIX = ".invalid.jsonl"
RECORD_KEYS = ("id", "question", "answer", "document", "chunk_id", "span", "tags", "generator", "created_at")


def read_jsonl_quietly(path: Path) -> list[dict]:
    """The JSON objects of a jsonl file, skipping damaged lines (``[]`` when the file is missing)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").split("\n"):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def read_qa_records(qa_dir: Path, *, documents: dict[str, str] | None = None) -> tuple[list[dict], list[str]]:
    """Valid records of every ``*.jsonl`` in ``qa_dir`` (not the ``*.invalid.jsonl``) and the problems found.

    Every line goes through the rules of generation (:func:`pipeline.qa.validate.check_record`; with
    ``documents`` = ``{name: text}`` also support by the source and a known document) and near-duplicates are
    dropped; each problem is ``"<file>:<line>: <reason>"``. ``qa_dir`` may be one ``.jsonl`` file. Lines must
    be UTF-8: one that is not (a file saved as Latin-1) is a problem, never read with replacement characters.
    With ``documents``, a record without ``span`` gets the place where its answer occurs in the text, so the
    index can put its question next to the right passage; one whose answer does not occur there is a problem.
    """
    qa_dir = Path(qa_dir)
    if qa_dir.is_file():
        files = [qa_dir]
    elif qa_dir.is_dir():
        files = sorted(p for p in qa_dir.glob("*.jsonl") if not p.name.endswith(INVALID_SUFFIX))
    else:
        return [], []
    records, problems = [], []
    seen: dict[str, list] = {}
    for path in files:
        for lineno, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
            record, problem = _record_of_line(raw, lineno, documents, seen)
            if problem is not None:
                problems.append(f"{path}:{lineno}: {problem}")
            elif record is not None:
                records.append(record)
    return records, problems


def _record_of_line(raw: bytes, lineno: int, documents: dict[str, str] | None,
                    seen: dict[str, list]) -> tuple[dict | None, str | None]:
    """One line of a QA file: ``(record, None)`` when valid, ``(None, problem)`` when not, ``(None, None)`` when
    blank. ``seen`` (document -> questions kept so far) is where near-duplicates are looked for."""
    try:
        line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        return None, (f"not UTF-8 (byte 0x{raw[exc.start]:02x} at column "
                      f"{exc.start + 1}; the file looks saved as Latin-1/CP1252: save it as UTF-8)")
    if not line.strip():
        return None, None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON ({exc.msg})"
    if not isinstance(record, dict):
        return None, "not a JSON object"
    document = record.get("document")
    if not isinstance(document, str) or not document.strip():
        return None, "missing or empty 'document'"
    if documents is not None and document not in documents:
        return None, f"unknown document {document!r}"
    text = documents[document] if documents is not None else None
    reasons = check_record(record, text)
    if not reasons and text is not None and record.get("span") is None:
        place = find_answer_span(record["answer"], text)
        if place is None:
            reasons = ["no 'span', and the answer does not occur as written in the document "
                       "(copy it from the text, or give \"span\": [start, end])"]
        else:
            record = {**record, "span": list(place)}
    if not reasons:
        (_, reasons), = validate_records([record], text, seen.setdefault(document, []))
    if reasons:
        return None, "; ".join(reasons)
    return record, None


def load_qa_records(qa_dir: Path, *, documents: dict[str, str] | None = None) -> list[dict]:
    """:func:`read_qa_records`, with every problem logged as a warning (file and line) and skipped."""
    records, problems = read_qa_records(qa_dir, documents=documents)
    for problem in problems:
        logger.warning("%s, skipped", problem)
    return records


def qa_records(settings: Settings) -> list[dict]:
    """Every QA record indexing and training learn from: generated, hand-written and validated feedback.

    The 👎 review file stays out: it is for people to read, never a positive example.
    """
    # Hand-written files in data_qa go through the generation rules, checked against the documents' text.
    texts = {doc.name: doc.text for doc in load_configured(settings)} if settings.qa_dir.exists() else {}
    records = load_qa_records(settings.qa_dir, documents=texts) if settings.qa_dir.exists() else []
    validated = settings.exports_dir / VALIDATED_FILENAME
    if validated.exists():
        records += load_qa_records(validated)
    return records
