"""Read a PDF into text in reading order, page by page, with pdfplumber (MIT; pdfminer.six underneath).

Per page: ruled tables are found (``find_tables``) and written as rows (``Cargo | Vagas | Salário``); the words
outside them are grouped into lines, and a line whose words are split by wide gaps is a row of a table without
rules (``Prova objetiva | 20 de abril de 2025``); a vertical gutter that no line crosses makes the page two columns,
read left then right, with full-width lines (a title, a table) between column blocks kept in place. Lines become
paragraphs by vertical gaps and font size (a bigger font is a heading); an article, paragraph sign or item at
the start of a line keeps its own line, so chunking still sees the structure; words broken by a hyphen at a
line end are joined. Lines that recur at the top or bottom of most pages (running headers and footers, with
their numbers masked) and lone page numbers are dropped. A page without any text (a scan) is reported; a PDF
without text at all is refused with ``ExtractionError("no_text")``.

Example::

    >>> from pipeline.documents.ingest.pdf_text import extract_pdf
    >>> extracted = extract_pdf(open("edital.pdf", "rb").read())       # doctest: +SKIP
    >>> extracted.title, len(extracted.pages)                          # doctest: +SKIP
    ('Edital nº 12/2025 – Concurso Público', 3)
"""

from __future__ import annotations

import io
import logging
import re
import statistics
from dataclasses import dataclass

import numpy as np

from pipeline.documents.ingest.layout import (
    Extracted,
    ExtractionError,
    is_page_number,
    join_lines,
    running_lines,
    shape,
    table_lines,
)
from pipeline.documents.ingest import ocr as tesseract  # a module: tests replace its functions

logger = logging.getLogger(__name__)

EDGE_LINES = 2  # lines at the top and at the bottom of a page that may be a running header or footer
HEADING_SIZE = 1.15  # a line this much bigger than the body text is a heading
PARAGRAPH_GAP = 0.8  # a vertical gap above this share of the line height starts a paragraph
GUTTER_MIN_ROWS = 3
WORD_SPACE = 0.8  # of the font size: wider than a justified line's spaces, narrower than a column gutter
CELL_GAP = 2.0  # of the font size: a gap this wide inside a line separates the cells of a table without rules
LEFT_FULL = 0.6  # in two columns the left one's lines reach at least this share of the way to the gutter
GUTTER_MIN_SHARE = 0.6  # of the lines reaching across a candidate gutter, this share must not cross it
_LINE_START = re.compile(r"(?:Art\.?\s*\d|Artigo\s+\d|§|Par[áa]grafo\s+[úu]nico|[IVXLC]{1,6}\s*[-–—)]\s|[a-z]\)\s"
                         r"|\d{1,2}(?:\.\d{1,2})+\.?\s|[•▪●◦*-]\s|CAP[ÍI]TULO\b|SE[ÇC][ÃA]O\b|ANEXO\b)")
_BAD_TITLE = re.compile(r"^(microsoft word|untitled|sem t[íi]tulo|document|documento\d*$)|\.(docx?|pdf|odt|rtf)$",
                        re.IGNORECASE)


@dataclass
class _Line:
    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    size: float
    bold: bool
    cells: int = 1  # groups of words split by wide gaps: 2 or more is a row of a table without rules


@dataclass
class _Table:
    top: float
    lines: list[str]


def good_title(value: object) -> str:
    """A declared title worth showing (not empty, not a file name or a word processor's placeholder), or ''."""
    title = " ".join(str(value or "").split())
    if not title or len(title) > 200 or not any(c.isalpha() for c in title) or _BAD_TITLE.search(title):
        return ""
    return title


def _rows(words: list[dict]) -> list[list[dict]]:
    """Words grouped into rows by their vertical position, each row left to right."""
    rows: list[list[dict]] = []
    for word in sorted(words, key=lambda w: (w["top"], w["x0"])):
        if rows and abs(word["top"] - rows[-1][0]["top"]) <= max(2.0, 0.4 * float(word["size"])):
            rows[-1].append(word)
        else:
            rows.append([word])
    return [sorted(row, key=lambda w: w["x0"]) for row in rows]


def _reach(word: dict) -> float:
    """Where a word's influence ends: its right edge plus a wide word space, so that a gutter is wider than
    any space between two words of one line."""
    return float(word["x1"]) + WORD_SPACE * float(word["size"])


def _gutter(rows: list[list[dict]], width: float) -> float | None:
    """The x of a column gutter: a vertical line in the middle of the page that most rows reaching across it
    do not cross (their words stop before it and start after it), or ``None`` for a single column."""
    lo, hi = int(width * 0.3), int(width * 0.7)
    if hi <= lo or len(rows) < GUTTER_MIN_ROWS:
        return None
    xs = np.arange(lo, hi)
    crossing = np.zeros(len(xs), dtype=int)
    split = np.zeros(len(xs), dtype=int)
    for row in rows:
        spans = (xs > row[0]["x0"]) & (xs < row[-1]["x1"])
        if len(_cell_groups(row)) >= 3:  # a row of a table without rules: its gaps are not a gutter
            crossing += spans
            continue
        crosses = np.zeros(len(xs), dtype=bool)
        for w in row:
            crosses |= (xs > w["x0"]) & (xs < _reach(w))
        crossing += crosses & spans
        split += ~crosses & spans
    total = crossing + split
    share = np.where(total > 0, split / np.maximum(total, 1), 0.0)
    good = (split >= GUTTER_MIN_ROWS) & (share >= GUTTER_MIN_SHARE)
    if not good.any():
        return None
    best = np.flatnonzero(good & (split == split[good].max()))
    gutter = float(xs[best[len(best) // 2]])  # the middle of the widest clear band
    # Text in columns fills the left column; a two-cell table ("Etapa   Data") leaves it mostly empty.
    margin = min(float(row[0]["x0"]) for row in rows)
    reach = [max(float(w["x1"]) for w in row if w["x1"] <= gutter) for row in rows
             if row[0]["x1"] <= gutter and any(w["x0"] >= gutter for w in row)]
    if not reach or statistics.median(reach) - margin < LEFT_FULL * (gutter - margin):
        return None
    return gutter


def _cell_groups(words: list[dict]) -> list[list[dict]]:
    """The words of a row in groups split by gaps wider than ``CELL_GAP`` font sizes (table cells)."""
    groups = [[words[0]]]
    for before, word in zip(words, words[1:]):
        if float(word["x0"]) - float(before["x1"]) > CELL_GAP * float(word["size"]):
            groups.append([word])
        else:
            groups[-1].append(word)
    return groups


def _line(words: list[dict]) -> _Line:
    sizes = [float(w["size"]) for w in words]
    bold = sum("bold" in str(w.get("fontname", "")).lower() for w in words) > len(words) / 2
    groups = _cell_groups(words)
    text = " | ".join(" ".join(w["text"].replace("|", "/") for w in group) for group in groups) \
        if len(groups) > 1 else " ".join(w["text"] for w in words)
    return _Line(text, min(w["x0"] for w in words), max(w["x1"] for w in words), min(w["top"] for w in words),
                 max(w["bottom"] for w in words), max(sizes), bold, cells=len(groups))


def _page_items(page) -> tuple[list[_Line | _Table], int]:
    """The page's lines and tables in reading order, and how many tables it has."""
    tables = [t for t in page.find_tables() if len(t.rows) >= 2]
    blocks: list[_Table] = []
    boxes = []
    for table in tables:
        lines = table_lines(table.extract())
        if len(lines) >= 2:
            blocks.append(_Table(table.bbox[1], lines))
            boxes.append(table.bbox)

    def outside(word: dict) -> bool:
        cx, cy = (word["x0"] + word["x1"]) / 2, (word["top"] + word["bottom"]) / 2
        return not any(x0 <= cx <= x1 and top <= cy <= bottom for x0, top, x1, bottom in boxes)

    words = [w for w in page.extract_words(extra_attrs=["size", "fontname"]) if outside(w)]
    rows = _rows(words)
    gutter = _gutter(rows, float(page.width))
    items: list[_Line | _Table] = []
    left: list[_Line] = []
    right: list[_Line] = []
    pending = sorted(blocks, key=lambda b: b.top)

    def flush() -> None:
        items.extend(left)
        items.extend(right)
        left.clear()
        right.clear()

    for row in rows:
        while pending and pending[0].top <= row[0]["top"]:
            flush()
            items.append(pending.pop(0))
        if gutter is None or any(w["x0"] < gutter < _reach(w) for w in row):
            flush()
            items.append(_line(row))
            continue
        lw = [w for w in row if w["x1"] <= gutter]
        rw = [w for w in row if w["x0"] >= gutter]
        if lw:
            left.append(_line(lw))
        if rw:
            right.append(_line(rw))
    flush()
    items.extend(pending)
    return items, len(blocks)


def _paragraphs(items: list[_Line | _Table], body_size: float) -> str:
    """Lines joined into paragraphs (blank line between), tables as blocks of rows."""
    out: list[str] = []
    para: list[list[str]] = []  # lines of the paragraph, each a list of raw lines joined at hyphens
    prev: _Line | None = None
    heights = [i.bottom - i.top for i in items if isinstance(i, _Line)]
    line_height = statistics.median(heights) if heights else body_size
    # The full width of a line in its column (lines starting near the same x): a shorter one may end a paragraph.
    widest: dict[int, float] = {}
    for line in (i for i in items if isinstance(i, _Line)):
        key = round(line.x0 / 30)
        widest[key] = max(widest.get(key, 0.0), line.x1 - line.x0)

    def end_paragraph() -> None:
        if para:
            out.append("\n".join(join_lines(group) for group in para))
            para.clear()

    for item in items:
        if isinstance(item, _Table):
            end_paragraph()
            out.append("\n".join(item.lines))
            prev = None
            continue
        heading = item.size >= body_size * HEADING_SIZE
        if prev is None:
            new_paragraph = True
        else:
            gap = item.top - prev.bottom
            prev_heading = prev.size >= body_size * HEADING_SIZE
            new_paragraph = (gap > PARAGRAPH_GAP * line_height or gap < -line_height  # a jump back up: new column
                             or heading != prev_heading or abs(item.size - prev.size) > 0.15 * body_size)
        if new_paragraph:
            end_paragraph()
            para.append([item.text])
        elif item.cells > 1 or prev.cells > 1:  # a row of a table without rules stays a line of its own
            para.append([item.text])
        elif heading:
            para[-1].append(item.text)
        elif _LINE_START.match(item.text) or (prev.text.rstrip()[-1:] in ".:;!?"
                                              and prev.x1 - prev.x0 < 0.8 * widest[round(prev.x0 / 30)]):
            para.append([item.text])  # a structural marker, or the line after a short closing one
        else:
            para[-1].append(item.text)
        prev = item
    end_paragraph()
    return "\n\n".join(p for p in out if p.strip())


def _edges(items: list[_Line | _Table]) -> list[_Line]:
    lines = sorted((i for i in items if isinstance(i, _Line)), key=lambda line: line.top)
    return lines[:EDGE_LINES] + lines[-EDGE_LINES:] if len(lines) > EDGE_LINES else lines


def _title(first_page: list[_Line | _Table], body_size: float) -> str:
    """The biggest text at the top of the first page (consecutive lines of that size), when bigger than the body."""
    lines = [i for i in first_page if isinstance(i, _Line)]
    if not lines:
        return ""
    biggest = max(line.size for line in lines)
    if biggest < body_size * HEADING_SIZE:
        return ""
    start = next(i for i, line in enumerate(lines) if line.size >= biggest - 0.5)
    parts = [lines[start].text]
    for line in lines[start + 1:]:
        if line.size < biggest - 0.5 or line.top - lines[start].bottom > 3 * line.size:
            break
        parts.append(line.text)
    return good_title(join_lines(parts))


def extract_pdf(data: bytes, *, ocr: bool = False) -> Extracted:
    """The text of a PDF's pages in reading order; ``ExtractionError`` when it is broken, locked or has no text.

    ``ocr``: pages without a text layer are read by Tesseract when it is installed
    (:mod:`pipeline.documents.ingest.ocr`).
    """
    import pdfplumber
    from pdfplumber.utils.exceptions import PdfminerException

    try:
        pdf = pdfplumber.open(io.BytesIO(data))
    except PdfminerException as exc:
        cause = exc.args[0] if exc.args else exc
        if "password" in type(cause).__name__.lower() or "encrypt" in type(cause).__name__.lower():
            raise ExtractionError("encrypted", "PDF protected by a password") from exc
        raise ExtractionError("broken", f"broken PDF ({type(cause).__name__}: {cause})") from exc
    with pdf:
        try:
            pages = [(_page_items(page), page) for page in pdf.pages]
            metadata_title = good_title(pdf.metadata.get("Title"))
        except Exception as exc:  # noqa: BLE001  (pdfminer raises many kinds on damaged files)
            raise ExtractionError("broken", f"broken PDF ({type(exc).__name__}: {exc})") from exc
        if not pages:
            raise ExtractionError("empty", "PDF without pages")
        items_by_page = [items for (items, _), _ in pages]
        n_tables = sum(n for (_, n), _ in pages)
    sizes = [i.size for items in items_by_page for i in items if isinstance(i, _Line)]
    without_text = [n for n, items in enumerate(items_by_page, start=1) if not items]
    ocr_text: dict[int, str] = {}
    missing = ""
    if without_text and ocr:
        missing = tesseract.ocr_missing() or ""
        if missing:
            logger.warning("DOCUMENTS_OCR is on but OCR cannot run: %s", missing)
        else:
            ocr_text = tesseract.ocr_pages(data, without_text)
    if not sizes and not n_tables and not ocr_text:
        raise ExtractionError("no_text", "no text layer (a scanned document?): needs OCR"
                              + (f" ({missing})" if missing else ""))
    body_size = statistics.median(sizes) if sizes else 10.0
    title = metadata_title or _title(items_by_page[0], body_size)

    running = running_lines([[line.text for line in _edges(items)] for items in items_by_page if items])
    texts = []
    for number, items in enumerate(items_by_page, start=1):
        if number in ocr_text:
            texts.append(ocr_text[number])
            continue
        edges = {id(line) for line in _edges(items)}
        kept = [i for i in items if not (id(i) in edges and (shape(i.text) in running or is_page_number(i.text)))]
        texts.append(_paragraphs(kept, body_size))
    without_text = [n for n in without_text if n not in ocr_text]
    if without_text:
        logger.warning("PDF pages without a text layer (scanned? need OCR): %s", without_text)
    return Extracted(kind="pdf", pages=texts, title=title, pages_without_text=without_text, n_tables=n_tables,
                     ocr_pages=sorted(ocr_text))
