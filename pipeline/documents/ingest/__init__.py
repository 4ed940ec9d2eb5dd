"""Documents as they come: PDF, DOCX and HTML turned into a :class:`pipeline.documents.load.Document` with pages.

The type is told by the content, never by the name (:func:`sniff`): ``%PDF-`` in the first KB, a ZIP holding
``word/document.xml``, text that opens as HTML, else plain text. Each format has its extractor
(``pdf_text``, ``docx_text``, ``html_text``); :func:`to_document` joins their pages with a blank line and keeps
where each page starts (``Document.page_starts``), so every chunk knows its page. A file that cannot be read
raises :class:`ExtractionError` with a ``code`` (``no_text``: a scan without text layer, needs OCR — read by
Tesseract when ``ocr=True`` and it is installed, :mod:`pipeline.documents.ingest.ocr`; ``broken``; ``encrypted``;
``empty``; ``unsupported``).

Example::

    >>> from pipeline.documents.ingest import extract_document, sniff
    >>> sniff(b"%PDF-1.7 ...")
    'pdf'
    >>> doc = extract_document(open("edital.pdf", "rb").read(), name="edital")   # doctest: +SKIP
    >>> doc.title, doc.page_at(doc.text.index("Motorista"))                        # doctest: +SKIP
    ('Edital nº 12/2025 – Concurso Público', 2)
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import zipfile
from collections import OrderedDict
from pathlib import Path

from pipeline.documents.ingest.docx_text import extract_docx
from pipeline.documents.ingest.html_text import extract_html
from pipeline.documents.ingest.layout import Extracted, ExtractionError
from pipeline.documents.ingest.pdf_text import extract_pdf
from pipeline.documents.text import (Document, decode_bytes, normalise_text, read_file, title_from_name,
                                     title_from_text)

__all__ = ["ExtractionError", "Extracted", "KINDS", "SUFFIXES", "extract", "extract_document", "read_rich",
           "remember", "sniff", "to_document"]

SUFFIXES = {".txt": "txt", ".pdf": "pdf", ".docx": "docx", ".html": "html", ".htm": "html"}
KINDS = {"txt": ".txt", "pdf": ".pdf", "docx": ".docx", "html": ".html"}
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body|meta|title)[\s>]",
                         re.IGNORECASE | re.DOTALL)
_CACHE_SIZE = 256  # documents kept extracted in memory (by path, size and modification time)
_cache: OrderedDict[tuple, object] = OrderedDict()
_cache_lock = threading.Lock()


def sniff(data: bytes) -> str | None:
    """``"pdf"``, ``"docx"``, ``"html"`` or ``"txt"`` from the bytes themselves; ``None`` for anything else."""
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                return "docx" if "word/document.xml" in archive.namelist() else None
        except zipfile.BadZipFile:
            return None
    if data.startswith(b"\xd0\xcf\x11\xe0"):  # OLE2: a legacy .doc or .xls
        return None
    head = data[:4096].lstrip(b"\xef\xbb\xbf")
    if _HTML_START.match(head):
        return "html"
    decoded = decode_bytes(data)
    if decoded is None:
        return None
    return "html" if _HTML_START.match(decoded[0][:4096].encode("utf-8", "ignore")) else "txt"


def unsupported_reason(data: bytes) -> str:
    """Why :func:`sniff` refused ``data``, for the log and the admin."""
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        return "a legacy Word/Excel file (.doc/.xls): save it as .docx or PDF"
    if data.startswith(b"PK\x03\x04"):
        return "a ZIP archive that is not a Word document (.xlsx, .odt, .zip…)"
    return "not a PDF, DOCX, HTML or text file"


def extract(data: bytes, kind: str, *, ocr: bool = False) -> Extracted:
    """The pages of ``data`` read as ``kind`` (``pdf``, ``docx`` or ``html``); ``ocr``: scanned PDF pages are
    read by Tesseract when it is installed."""
    if kind == "pdf":
        return extract_pdf(data, ocr=ocr)
    if kind == "docx":
        return extract_docx(data)
    if kind == "html":
        return extract_html(data)
    raise ExtractionError("unsupported", f"no extractor for {kind!r}")


def to_document(extracted: Extracted, *, name: str, path: Path):
    """A :class:`~pipeline.documents.load.Document` of the extracted pages (blank line between pages)."""
    text, starts = "", []
    for page in extracted.pages:
        page = normalise_text(page).strip()
        if page and text:
            text += "\n\n"
        starts.append(len(text))  # an empty page starts where the next one does: it never owns an offset
        text += page
    if not text.strip():
        raise ExtractionError("empty", "no text")
    title = normalise_text(extracted.title) if extracted.title else ""
    return Document(name=name, title=title or title_from_text(text) or title_from_name(name.split("__")[-1]),
                    text=text, path=Path(path), sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
                    page_starts=tuple(starts) if extracted.paged else (), kind=extracted.kind)


def extract_document(data: bytes, *, name: str, path: Path | None = None, ocr: bool = False):
    """``data`` (PDF, DOCX or HTML, told by content) as a Document; :class:`ExtractionError` when it cannot be."""
    kind = sniff(data)
    if kind is None or kind == "txt":
        raise ExtractionError("unsupported", unsupported_reason(data) if kind is None else "plain text")
    return to_document(extract(data, kind, ocr=ocr), name=name, path=path or Path(name + KINDS[kind]))


def _cache_key(path: Path, name: str, ocr: bool) -> tuple:
    stat = path.stat()
    return (str(path), name, stat.st_size, stat.st_mtime_ns, ocr)


def _cache_put(key: tuple, result: object) -> None:
    with _cache_lock:
        _cache[key] = result
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)


def remember(document, *, ocr: bool = False) -> None:
    """Keep a Document just extracted from the file now at ``document.path`` (an upload just stored), so the
    folder scans that index it do not read the file again."""
    _cache_put(_cache_key(Path(document.path), document.name, ocr), document)


def read_rich(path: Path, name: str, *, ocr: bool = False):
    """The Document in the PDF/DOCX/HTML file at ``path``, or the reason it cannot be one (a string).

    Extractions are kept in memory by path, size and modification time: the bot lists and re-indexes the
    same files many times.
    """
    try:
        key = _cache_key(path, name, ocr)
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    data = read_file(path)
    if isinstance(data, str):
        return data
    kind = sniff(data)
    if kind is None:
        result: object = unsupported_reason(data)
    elif kind == "txt":
        result = f"plain text in a {path.suffix} file (rename it to .txt)"
    else:
        try:
            result = to_document(extract(data, kind, ocr=ocr), name=name, path=path)
        except ExtractionError as exc:
            result = str(exc)
    _cache_put(key, result)
    return result
