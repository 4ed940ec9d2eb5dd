"""Optional OCR of PDF pages without a text layer (scans), with Tesseract and its Portuguese model.

Off by default (``DOCUMENTS_OCR=false``): a scan is then skipped as "needs OCR". On, each page without text is
rendered at 300 dpi with pypdfium2 (already installed with pdfplumber) and read by the ``tesseract`` program
(Apache-2.0, offline, from the system's packages: ``apt-get install tesseract-ocr tesseract-ocr-por``), called
as a subprocess with the image on its standard input; no Python package is added. Tesseract's lines become
paragraphs as the PDF reader's do (markers keep their line, hyphenated words are joined).

Example::

    >>> from pipeline.documents.ingest.ocr import ocr_missing
    >>> ocr_missing() in (None,
    ...                   "the tesseract program is not installed (apt-get install tesseract-ocr tesseract-ocr-por)")
    True
"""

from __future__ import annotations

import functools
import io
import re
import shutil
import subprocess

from pipeline.documents.ingest.layout import join_lines

LANGUAGE = "por"
DPI = 300
TIMEOUT_S = 120  # one page
_MARKER = re.compile(r"(?:Art\.?\s*\d|Artigo\s+\d|§|Par[áa]grafo\s+[úu]nico|[IVXLC]{1,6}\s*[-–—)]\s|[a-z]\)\s"
                     r"|\d{1,2}(?:\.\d{1,2})+\.?\s|[•▪●◦*-]\s)")


@functools.lru_cache(maxsize=1)
def ocr_missing() -> str | None:
    """``None`` when Tesseract with Portuguese can run here, else what is missing."""
    program = shutil.which("tesseract")
    if program is None:
        return "the tesseract program is not installed (apt-get install tesseract-ocr tesseract-ocr-por)"
    try:
        listed = subprocess.run([program, "--list-langs"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"tesseract does not run ({exc})"
    if LANGUAGE not in listed.stdout.split():
        return "Tesseract has no Portuguese model (apt-get install tesseract-ocr-por)"
    return None


def _paragraphs(text: str) -> str:
    out = []
    for block in re.split(r"\n\s*\n", text):
        groups: list[list[str]] = []
        for line in (raw.strip() for raw in block.splitlines()):
            if not line:
                continue
            if not groups or _MARKER.match(line):
                groups.append([line])
            else:
                groups[-1].append(line)
        if groups:
            out.append("\n".join(join_lines(group) for group in groups))
    return "\n\n".join(out)


def ocr_pages(data: bytes, pages: list[int]) -> dict[int, str]:
    """The text Tesseract reads on the given 1-based ``pages`` of the PDF ``data`` (pages it finds nothing on are
    left out). Call only when :func:`ocr_missing` is ``None``."""
    import pypdfium2

    program = shutil.which("tesseract")
    found: dict[int, str] = {}
    document = pypdfium2.PdfDocument(data)
    try:
        for number in pages:
            image = document[number - 1].render(scale=DPI / 72).to_pil()
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            result = subprocess.run([program, "stdin", "stdout", "-l", LANGUAGE, "--psm", "3"],
                                    input=buffer.getvalue(), capture_output=True, timeout=TIMEOUT_S, check=False)
            text = _paragraphs(result.stdout.decode("utf-8", "replace"))
            if result.returncode == 0 and any(c.isalnum() for c in text):
                found[number] = text
    finally:
        document.close()
    return found
