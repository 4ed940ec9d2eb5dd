"""The documents folder as a library admins change: add a file (checked, stored, indexed), list, remove.

:func:`add_document` checks the size and the type (by content), reads the file *before* anything is written
(a broken PDF or a scan leaves the folder as it was), stores it under the documents folder with a safe name
(``Edital nº 12-2025 (final).PDF`` -> ``Edital_no_12-2025_final.pdf``) in one atomic step, then runs the
usual QA generation and index build (only the changed document is asked and embedded) and reports pages,
chunks, QA pairs and the time taken. :func:`remove_document` moves a file out of the folder (into
``DATA_DIR/removed/``, so it can be brought back) and rebuilds the index without it.

Example::

    from pipeline.loop.library import add_document, list_documents, remove_document
    report = add_document(settings, open("edital.pdf", "rb").read(), "Edital 12-2025.pdf")
    report.name, report.pages, report.chunks, report.qa_pairs, report.seconds
    [entry.file for entry in list_documents(settings)]
    remove_document(settings, report.name)
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
import shutil
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from pipeline.core.files import atomic_file
from pipeline.documents.chunking import chunk_document
from pipeline.documents.ingest import KINDS, extract, remember, sniff, to_document, unsupported_reason
from pipeline.documents.ingest.layout import ExtractionError
from pipeline.documents.load import load_documents, sample_corpus_dir, scan_documents
from pipeline.documents.text import Document, decode_bytes, normalise_text, title_from_name, title_from_text
from pipeline.loop import jobs
from pipeline.settings import Settings

log = logging.getLogger(__name__)

REMOVED_DIR = "removed"
MAX_STEM_CHARS = 80


@dataclass
class AddReport:
    """What adding a document did."""

    name: str  # the document's name (its file stem): what /remover takes
    file: str  # the stored file's name
    title: str
    kind: str
    pages: int = 0  # pages read (0 for formats without pages)
    pages_without_text: list[int] = field(default_factory=list)
    ocr_pages: list[int] = field(default_factory=list)  # read by Tesseract (DOCUMENTS_OCR)
    tables: int = 0
    chunks: int = 0
    qa_pairs: int = 0
    replaced: bool = False  # a file of the same name was there and is now this one
    unchanged: bool = False  # the very same content was already there: nothing to do
    index_version: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class DocumentEntry:
    name: str
    title: str
    file: str  # path relative to the documents folder
    kind: str
    modified: datetime
    pages: int


class LibraryError(Exception):
    """A change to the library that cannot be made (read-only sample corpus, unknown document)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code  # read_only | not_found


def safe_stem(filename: str) -> str:
    """A file stem safe on every system and in a document name: ASCII letters, digits, ``_`` and ``-``."""
    stem = Path(str(filename).replace("\\", "/").split("/")[-1]).stem
    ascii_ = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", ascii_).strip("_-")
    cleaned = re.sub(r"_{2,}", "_", cleaned)[:MAX_STEM_CHARS].strip("_-")
    return cleaned or "documento"


def _documents_dir(settings: Settings) -> Path:
    folder = Path(settings.documents_dir)
    if folder.resolve() == sample_corpus_dir().resolve():
        raise LibraryError("read_only", "DOCUMENTS_DIR=sample is the bundled sample corpus: it cannot be changed "
                                        "(set DOCUMENTS_DIR to a folder of your own)")
    return folder


def read_upload(data: bytes, filename: str, *, max_bytes: int, ocr: bool = False):
    """``(document, extracted or None)`` of an uploaded file, checked by size and by content (``None`` for
    plain text); :class:`ExtractionError` when it cannot become a document. Nothing is written."""
    if len(data) > max_bytes:
        raise ExtractionError("too_large", f"file of {len(data)} bytes, above the limit of {max_bytes}")
    if not data.strip():
        raise ExtractionError("empty", "empty file")
    kind = sniff(data)
    if kind is None:
        raise ExtractionError("unsupported", unsupported_reason(data))
    stem = safe_stem(filename)
    path = Path(stem + KINDS[kind])
    if kind == "txt":
        decoded = decode_bytes(data)
        text = normalise_text(decoded[0]) if decoded else ""
        if not text.strip():
            raise ExtractionError("empty", "empty file")
        doc = Document(name=stem, title=title_from_text(text) or title_from_name(stem), text=text, path=path,
                       sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())
        return doc, None
    extracted = extract(data, kind, ocr=ocr)
    return to_document(extracted, name=stem, path=path), extracted


def _place(folder: Path, stem: str, suffix: str, data: bytes) -> tuple[Path, bool, bool]:
    """``(target, replaced, unchanged)``: where the file goes. The same name and type replaces the old file (a
    new version); the same name with another type gets a number (``edital-2.pdf`` beside ``edital.txt``)."""
    existing = {p.name.lower(): p for p in folder.iterdir() if p.is_file()} if folder.is_dir() else {}
    for n in range(1, 1000):
        candidate = stem if n == 1 else f"{stem}-{n}"
        same_type = existing.get(f"{candidate}{suffix}".lower())
        other_type = [p for name, p in existing.items() if Path(name).stem == candidate.lower()
                      and p.suffix.lower() in KINDS.values() and p != same_type]
        if same_type is not None and not other_type:
            return same_type, True, same_type.read_bytes() == data
        if same_type is None and not other_type:
            return folder / f"{candidate}{suffix}", False, False
    raise LibraryError("not_found", f"too many documents named {stem}")


def store_document(settings: Settings, data: bytes, filename: str) -> AddReport:
    """Check and store an uploaded file under the documents folder (atomically); no indexing."""
    folder = _documents_dir(settings)
    max_bytes = int(settings.document_max_mb * 1024 * 1024)
    doc, extracted = read_upload(data, filename, max_bytes=max_bytes, ocr=settings.documents_ocr)
    kind = doc.kind if extracted is not None else "txt"
    target, replaced, unchanged = _place(folder, safe_stem(filename), KINDS[kind], data)
    if not unchanged:
        with atomic_file(target, binary=True) as handle:
            handle.write(data)
        if kind != "txt":  # the scans that index it will not extract it again
            remember(dataclasses.replace(doc, name=target.stem, path=target), ocr=settings.documents_ocr)
        log.info("document stored: %s (%s, %d bytes%s)", target, kind, len(data), ", replacing" if replaced else "")
    report = AddReport(name=target.stem, file=target.name, title=doc.title, kind=kind,
                       replaced=replaced and not unchanged, unchanged=unchanged)
    if extracted is not None:
        report.pages = len(extracted.pages) if extracted.paged else 0
        report.pages_without_text, report.ocr_pages = extracted.pages_without_text, extracted.ocr_pages
        report.tables = extracted.n_tables
    return report


def _qa_pairs(settings: Settings, name: str) -> int:
    path = settings.qa_dir / f"{name}.jsonl"
    if not path.is_file():
        return 0
    with path.open(encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def reindex(settings: Settings):
    """QA generation for new or changed documents, then the index (unchanged entries keep their vectors)."""
    jobs.generate_qa_job(settings)
    return jobs.index_job(settings)


def add_document(settings: Settings, data: bytes, filename: str) -> AddReport:
    """Check, store and index a document; the report says what it became and how long it took."""
    started = time.perf_counter()
    report = store_document(settings, data, filename)
    info = reindex(settings)
    doc = next((d for d in load_documents(Path(settings.documents_dir)) if d.name == report.name), None)
    report.chunks = len(chunk_document(doc)) if doc is not None else 0
    report.qa_pairs = _qa_pairs(settings, report.name)
    report.index_version = info.version
    report.seconds = round(time.perf_counter() - started, 2)
    log.info("document %s added: %d pages, %d chunks, %d QA pairs, index %s, %.1fs", report.name, report.pages,
             report.chunks, report.qa_pairs, info.version, report.seconds)
    return report


def list_documents(settings: Settings) -> list[DocumentEntry]:
    """Every document of the folder with its file, type, date and pages (the folder's reading rules)."""
    folder = Path(settings.documents_dir)
    if not folder.is_dir():
        return []
    scan = scan_documents(folder, follow_symlinks=settings.documents_follow_symlinks,
                          include_hidden=settings.documents_include_hidden, ocr=settings.documents_ocr)
    entries = []
    for doc in scan.documents:
        modified = datetime.fromtimestamp(doc.path.stat().st_mtime, tz=timezone.utc)
        entries.append(DocumentEntry(name=doc.name, title=doc.title, file=str(doc.path.relative_to(folder)),
                                     kind=doc.kind, modified=modified, pages=len(doc.page_starts)))
    return entries


def find_document(settings: Settings, wanted: str) -> DocumentEntry:
    """The document named ``wanted`` (its name, its file name or its title, in any case)."""
    wanted_key = " ".join(wanted.split()).casefold()
    entries = list_documents(settings)
    for entry in entries:
        if wanted_key in {entry.name.casefold(), entry.file.casefold(), entry.title.casefold()}:
            return entry
    raise LibraryError("not_found", f"no document named {wanted!r}")


def remove_document(settings: Settings, wanted: str) -> tuple[DocumentEntry, Path, object]:
    """Move the document out of the folder into ``DATA_DIR/removed/`` and rebuild the index without it.

    Returns the entry removed, where the file now is, and the new index info. The index needs at least one
    document: removing the last one is refused.
    """
    folder = _documents_dir(settings)
    entry = find_document(settings, wanted)
    if len(list_documents(settings)) <= 1:
        raise LibraryError("last", "the index needs at least one document: add another before removing this one")
    removed = settings.data_dir / REMOVED_DIR
    removed.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = removed / f"{stamp}__{entry.file.replace('/', '__')}"
    try:
        os.replace(folder / entry.file, target)  # one rename: the document is in one place or the other
    except OSError:  # another file system: copy, then remove (shutil.move)
        shutil.move(str(folder / entry.file), target)
    log.info("document %s removed from the library (kept in %s)", entry.name, target)
    return entry, target, reindex(settings)
