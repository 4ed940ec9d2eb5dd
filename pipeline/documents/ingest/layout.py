"""Text helpers shared by the PDF, DOCX and HTML extractors: tables as rows, hyphens, running headers.

What every extractor returns is an :class:`Extracted`: the text of each page (one page for formats without
pages), the title the file declares (metadata, first heading), and the pages that had no text layer.
:func:`pipeline.documents.ingest.to_document` turns it into a :class:`pipeline.documents.load.Document` whose
``page_starts`` give the offset where each page begins, so that every chunk knows its page.

Example::

    >>> table_lines([["Cargo", "Vagas"], ["Motorista", "4"], ["Vigia", None]])
    ['Cargo | Vagas', 'Motorista | 4', 'Vigia | —']
    >>> join_lines(["As inscrições serão fei-", "tas pela internet; para inscrever-", "se, pague a taxa."])
    'As inscrições serão feitas pela internet; para inscrever-se, pague a taxa.'
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

EMPTY_CELL = "—"  # chunking counts cells per row: an empty cell must still be one
# Portuguese clitic pronouns: "inscrever-" + "se" at a line break is "inscrever-se", not "inscreverse".
_CLITICS = {"se", "me", "te", "lhe", "lhes", "o", "a", "os", "as", "lo", "la", "los", "las", "no", "na", "nos",
            "nas", "vos", "mo", "ma", "to", "ta"}
_HYPHENATED = re.compile(r"(\w)[-\u00ad]$")
# A line that is only a page number: "4", "- 4 -", "Página 4", "Pág. 4 de 12", "4/12", "p. 4".
PAGE_NUMBER = re.compile(r"^[-–—\s]*(?:p[áa]g(?:ina)?\.?|p\.)?\s*\d{1,4}\s*(?:(?:/|de|of)\s*\d{1,4})?[-–—\s]*$",
                         re.IGNORECASE)


@dataclass
class Extracted:
    """What an extractor read: ``pages`` of text (in reading order), a declared ``title`` and what it skipped."""

    kind: str  # pdf | docx | html
    pages: list[str]
    title: str = ""
    pages_without_text: list[int] = field(default_factory=list)  # 1-based
    n_tables: int = 0
    paged: bool = True  # the pages are real pages (a citation may name them)
    ocr_pages: list[int] = field(default_factory=list)  # 1-based pages read by OCR (DOCUMENTS_OCR)


class ExtractionError(Exception):
    """A file that cannot become a document; ``code`` says why (for a message in the admin's language)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code  # no_text | broken | encrypted | empty | unsupported | too_large


def clean_cell(value: object) -> str:
    text = " ".join(str(value or "").split()).replace("|", "/")
    return text or EMPTY_CELL


def table_lines(rows: list[list[object]]) -> list[str]:
    """A table as one line per row, cells split by `` | ``: chunking keeps such a block whole or repeats its
    header line in every piece. Rows with no content at all are dropped; short rows are padded."""
    rows = [[clean_cell(c) for c in row] for row in rows if any(str(c or "").strip() for c in row)]
    if not rows:
        return []
    width = max(len(r) for r in rows)
    # Columns empty in every row (merged cells) add nothing.
    keep = [i for i in range(width) if any(i < len(r) and r[i] != EMPTY_CELL for r in rows)]
    return [" | ".join(r[i] if i < len(r) else EMPTY_CELL for i in keep) for r in rows]


def join_hyphen(left: str, right: str) -> str | None:
    """``left + right`` when ``left`` ends with a word broken by a hyphen at a line end, else ``None``."""
    if not _HYPHENATED.search(left) or not right[:1].islower():
        return None
    if left.endswith("\u00ad"):  # a soft hyphen only ever marks a break
        return left[:-1] + right
    word = re.match(r"\w+", right)
    if word and word.group().lower() in _CLITICS:  # a verb with its pronoun keeps the hyphen
        return left + right
    return left[:-1] + right


def join_lines(lines: list[str]) -> str:
    """The lines of one paragraph as one line: words broken at a line end are joined."""
    out = ""
    for line in (" ".join(raw.split()) for raw in lines):
        if not line:
            continue
        if not out:
            out = line
            continue
        joined = join_hyphen(out, line)
        out = joined if joined is not None else f"{out} {line}"
    return out


def shape(line: str) -> str:
    """A line with its digits masked: "Página 3 de 9" and "Página 4 de 9" are the same running footer."""
    return re.sub(r"\d+", "#", " ".join(line.split()).casefold())


def running_lines(page_edges: list[list[str]], *, min_share: float = 0.5) -> set[str]:
    """Shapes of the lines that recur at the top or bottom of many pages (running headers and footers).

    ``page_edges`` holds, for each page, its first and last few lines. A shape counts when it is on at least
    ``min_share`` of the pages and on two or more of them.
    """
    if len(page_edges) < 2:
        return set()
    counts = Counter(s for edges in page_edges for s in {shape(line) for line in edges if line.strip()})
    needed = max(2, int(len(page_edges) * min_share + 0.999))
    return {s for s, n in counts.items() if n >= needed}


def is_page_number(line: str) -> bool:
    return bool(PAGE_NUMBER.match(line.strip())) and any(c.isdigit() for c in line)
