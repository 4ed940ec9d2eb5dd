"""Load the public documents Oráculo answers from: one file per document (.txt, .pdf, .docx, .html/.htm).

Every ``.txt``, ``.pdf``, ``.docx``, ``.html`` and ``.htm`` file of the folder and its subfolders counts,
whatever the case of the extension (``.TXT``, ``.Pdf``). PDF, DOCX and HTML files are read by
:mod:`pipeline.documents.ingest` (told by their content; tables as rows, running headers dropped, pages kept in
``Document.page_starts``); a PDF without a text layer is skipped with the reason "needs OCR".

Symbolic links and hidden files or folders (names starting with ``.``) are not read unless the caller allows
it (settings ``DOCUMENTS_FOLLOW_SYMLINKS``, ``DOCUMENTS_INCLUDE_HIDDEN``): a link to ``/etc/passwd`` or a stray
``.env`` must never reach the index. A document in a subfolder is named by its
path (``editais/2025/EDITAL`` -> ``editais__2025__EDITAL``), one at the top by its stem.

Files are read as UTF-8, or UTF-16/UTF-32 when they start with a byte-order mark (a UTF-8 BOM is dropped);
files that are not valid UTF-8 are decoded as CP1252 or, when that fails, Latin-1 (the encodings Brazilian
government offices still export). A few stray NUL bytes are dropped; a file with many is binary. Line
endings become ``\\n`` and the text is put in Unicode NFC, so every character offset later stored (chunk
spans, QA spans) refers to ``Document.text`` as loaded here. A document's title is its first line when that
line is a heading (short, not a sentence), else made from the file name. Every file skipped is logged with
its path and the reason, and listed by :func:`scan_documents`.

A folder that is missing or holds no readable document is an error naming it (:class:`DocumentsError`): the
bundled sample corpus is only read when asked for, ``load_documents(None)`` or ``DOCUMENTS_DIR=sample``.

Example::

    >>> from pipeline.documents.load import load_documents
    >>> docs = load_documents(None)            # the bundled sample corpus, asked for
    >>> docs[0].name, docs[0].title
    ('ANALISE_DE_SISTEMAS', 'Analise de Sistemas')
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from pipeline.documents.ingest import read_rich
from pipeline.documents.text import (Document, decode_bytes, normalise_text, read_file, title_from_name,
                                     title_from_text)

logger = logging.getLogger(__name__)

DOCUMENT_SUFFIXES = (".txt", ".pdf", ".docx", ".html", ".htm")  # read by name; the content decides the reader


class DocumentsError(Exception):
    """No usable document where documents were expected (the message names the folder and what was skipped)."""


@dataclass(frozen=True)
class SkippedFile:
    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class DocumentScan:
    """What a documents folder held: the documents read, and every file left out with the reason."""

    folder: Path
    documents: list["Document"] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


def sample_corpus_dir() -> Path:
    """The folder of the sample corpus shipped as package data (FaQuAD's documents, CC BY 4.0)."""
    return Path(str(resources.files("pipeline") / "sample_corpus"))


def _read(path: Path, name: str, *, ocr: bool = False) -> "Document | str":
    """The document at ``path``, or the reason it cannot be one (``ocr``: scanned PDF pages through Tesseract)."""
    if path.suffix.lower() != ".txt":
        return read_rich(path, name, ocr=ocr)
    raw = read_file(path)
    if isinstance(raw, str):
        return raw
    decoded = decode_bytes(raw)
    if decoded is None:
        return "looks binary"
    text, encoding = decoded
    text = normalise_text(text)
    if not text.strip():
        return "empty"
    if encoding != "utf-8":
        logger.info("%s decoded as %s", path, encoding)
    return Document(name=name, title=title_from_text(text) or title_from_name(name.split("__")[-1]),
                    text=text, path=path, sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())


def read_document(path: Path) -> Document | None:
    """Read one file; ``None`` (and a log line with the reason) when it is empty, binary or unreadable."""
    result = _read(Path(path), Path(path).stem)
    if isinstance(result, str):
        logger.warning("skipping %s: %s", path, result)
        return None
    return result


def _document_name(relative: Path) -> str:
    # One flat name per document (it names the data_qa/<name>.jsonl file and every chunk id).
    return "__".join([*relative.parent.parts, relative.stem])


def _find_files(root: Path, *, follow_symlinks: bool, include_hidden: bool) -> tuple[list[Path], list[SkippedFile]]:
    files: list[Path] = []
    skipped: list[SkippedFile] = []
    seen_dirs = {root.resolve()}
    for current, dirs, names in os.walk(root, followlinks=follow_symlinks):
        here = Path(current)
        keep = []
        for d in sorted(dirs):
            path = here / d
            if d.startswith(".") and not include_hidden:
                skipped.append(SkippedFile(path, "hidden folder (DOCUMENTS_INCLUDE_HIDDEN=false)"))
            elif path.is_symlink() and not follow_symlinks:
                skipped.append(SkippedFile(path, "symbolic link (DOCUMENTS_FOLLOW_SYMLINKS=false)"))
            elif path.resolve() in seen_dirs:  # a link back up the tree
                skipped.append(SkippedFile(path, "folder already read (symbolic link loop)"))
            else:
                seen_dirs.add(path.resolve())
                keep.append(d)
        dirs[:] = keep
        for n in sorted(names):
            path = here / n
            if n.startswith(".") and not include_hidden:
                reason = "hidden file (DOCUMENTS_INCLUDE_HIDDEN=false)"
            elif path.is_symlink() and not follow_symlinks:
                reason = "symbolic link (DOCUMENTS_FOLLOW_SYMLINKS=false)"
            elif path.suffix.lower() not in DOCUMENT_SUFFIXES:
                reason = "not a .txt, .pdf, .docx or .html file"
            elif not path.is_file():
                reason = "not a regular file"
            else:
                files.append(path)
                continue
            skipped.append(SkippedFile(path, reason))
    return sorted(files, key=lambda f: _document_name(f.relative_to(root))), skipped


def scan_documents(folder: Path, *, follow_symlinks: bool = False, include_hidden: bool = False,
                   ocr: bool = False) -> DocumentScan:
    """Every readable document (``.txt``, ``.pdf``, ``.docx``, ``.html``, any case) under ``folder``, recursively,
    and every file skipped with the reason.

    Raises :class:`DocumentsError` when ``folder`` is missing or not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DocumentsError(f"documents folder {folder} {'is not a folder' if folder.exists() else 'does not exist'}"
                             " (set DOCUMENTS_DIR, or DOCUMENTS_DIR=sample for the bundled sample corpus)")
    files, skipped = _find_files(folder, follow_symlinks=follow_symlinks, include_hidden=include_hidden)
    scan = DocumentScan(folder=folder, skipped=skipped)
    names: dict[str, Path] = {}
    for path in files:
        name = _document_name(path.relative_to(folder))
        if name in names:  # EDITAL.txt and EDITAL.TXT side by side
            scan.skipped.append(SkippedFile(path, f"same document name {name!r} as {names[name]}"))
            continue
        result = _read(path, name, ocr=ocr)
        if isinstance(result, str):
            scan.skipped.append(SkippedFile(path, result))
        else:
            names[name] = path
            scan.documents.append(result)
    for skip in scan.skipped:  # other files (a PDF, a README) are worth a line, not a warning
        logger.log(logging.INFO if skip.reason.startswith("not a .txt") else logging.WARNING, "skipping %s", skip)
    return scan


def require_documents(scan: DocumentScan) -> DocumentScan:
    """``scan`` itself; :class:`DocumentsError` naming the folder and every file skipped when it found no document."""
    if not scan.documents:
        detail = "".join(f"\n  skipped {skip}" for skip in scan.skipped)
        raise DocumentsError(f"no readable document (.txt, .pdf, .docx, .html) in {scan.folder}{detail}\n(set "
                             "DOCUMENTS_DIR to the "
                             "folder of your documents, or DOCUMENTS_DIR=sample for the bundled sample corpus)")
    return scan


def load_documents(folder: Path | None, *, follow_symlinks: bool = False,
                   include_hidden: bool = False, ocr: bool = False) -> list[Document]:
    """The documents under ``folder`` (see :func:`scan_documents`); ``None`` asks for the bundled sample corpus.

    Raises :class:`DocumentsError`, naming the folder and every file skipped, when there is no usable document.
    """
    scan = scan_documents(sample_corpus_dir() if folder is None else folder, follow_symlinks=follow_symlinks,
                          include_hidden=include_hidden, ocr=ocr)
    return require_documents(scan).documents


def scan_configured(settings, folder: Path | None = None) -> DocumentScan:
    """The documents folder (``DOCUMENTS_DIR``, or ``folder``) read with the settings' rules (symlinks, hidden
    files, OCR); :class:`DocumentsError` naming it when it holds no document."""
    folder = Path(folder) if folder else Path(settings.documents_dir)
    return require_documents(scan_documents(folder, follow_symlinks=settings.documents_follow_symlinks,
                                            include_hidden=settings.documents_include_hidden,
                                            ocr=settings.documents_ocr))


def load_configured(settings, folder: Path | None = None) -> list[Document]:
    """The documents of :func:`scan_configured`."""
    return scan_configured(settings, folder).documents
