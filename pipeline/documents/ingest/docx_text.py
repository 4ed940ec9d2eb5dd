"""Read a DOCX (Word) document with python-docx (MIT): paragraphs and tables in document order.

Headings (styles ``Title``, ``Heading n``/``Título n``) become paragraphs of their own; body paragraphs are
lines of one block, so chunking sees each as a unit and its structural markers (``Art. 5º``, ``§ 1º``); a table
becomes one row per line with its cells split by `` | `` (merged cells once). Page headers and footers live in
other parts of the file and are never read. Pages are known only where Word recorded them (its rendered page
breaks and hard page breaks); without them the document has no page numbers rather than wrong ones.

Example::

    >>> from pipeline.documents.ingest.docx_text import extract_docx
    >>> extract_docx(open("portaria.docx", "rb").read()).title                # doctest: +SKIP
    'Portaria nº 45/2025 — Calendário de Vacinação'
"""

from __future__ import annotations

import io
import zipfile

from pipeline.documents.ingest.layout import ExtractionError, Extracted, table_lines
from pipeline.documents.ingest.pdf_text import good_title

_HEADING_STYLES = ("title", "heading", "título", "titulo", "subtitle")
_PAGE_BREAK = ".//w:lastRenderedPageBreak | .//w:br[@w:type='page']"


def _is_heading(paragraph) -> bool:
    name = (paragraph.style.name if paragraph.style is not None else "") or ""
    return name.lower().startswith(_HEADING_STYLES)


def _table_rows(table) -> list[list[str]]:
    rows = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:  # a cell merged across columns comes once per column: keep it once
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            cells.append(cell.text)
        rows.append(cells)
    return rows


def extract_docx(data: bytes) -> Extracted:
    """The text of a DOCX; ``ExtractionError("broken")`` when it is not a readable Word document."""
    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ExtractionError("broken", f"broken DOCX ({type(exc).__name__}: {exc})") from exc
    except Exception as exc:  # noqa: BLE001  (lxml and python-docx raise their own kinds on damaged XML)
        raise ExtractionError("broken", f"broken DOCX ({type(exc).__name__}: {exc})") from exc

    pages: list[list[str]] = [[]]  # blocks of each page
    body: list[str] = []  # body paragraphs waiting to become one block
    first_heading = ""
    n_tables = 0

    def end_body() -> None:
        if body:
            pages[-1].append("\n".join(body))
            body.clear()

    for item in document.iter_inner_content():
        if isinstance(item, Table):
            end_body()
            lines = table_lines(_table_rows(item))
            if lines:
                pages[-1].append("\n".join(lines))
                n_tables += 1
            continue
        if item._p.xpath(_PAGE_BREAK) and (body or pages[-1]):
            end_body()
            pages.append([])
        text = " ".join(item.text.split())
        if not text:
            end_body()  # an empty paragraph is the author's blank line
        elif _is_heading(item):
            end_body()
            pages[-1].append(text)
            first_heading = first_heading or text
        else:
            body.append(text)
    end_body()
    texts = ["\n\n".join(blocks) for blocks in pages]
    if not any(t.strip() for t in texts):
        raise ExtractionError("empty", "DOCX without text")
    title = good_title(document.core_properties.title) or good_title(first_heading)
    return Extracted(kind="docx", pages=texts, title=title, n_tables=n_tables,
                     paged=len(texts) > 1)
