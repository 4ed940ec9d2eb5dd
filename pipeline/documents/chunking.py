"""Cut documents into retrievable chunks whose spans point exactly into the document text.

Paragraphs (separated by blank lines) are the units; consecutive short paragraphs are packed together up to
``max_chars``; a paragraph longer than that is split at sentence ends, and a sentence longer than that at a
space. A short single-line paragraph without final punctuation (``CAPÍTULO II``, ``Das Inscrições``) is taken
for a heading: it starts a new chunk and names the ``section`` of the chunks that follow it.

Official documents: a line opening with ``Art. 5º``, ``§ 2º``/``Parágrafo único``, an inciso (``IV -``), an
alínea (``b)``) or a numbered item of an edital (``5.2.1``) starts a unit even without a blank line; each
article starts a new chunk (so does a new page of a PDF: ``Chunk.page`` is the page a citation names), and the
``section`` of a chunk is its path, e.g.
``CAPÍTULO II — Das Inscrições > Art. 5º > § 2º``, so an answer can cite it. Tables (three or more lines of
cells split by ``|``, tabs or runs of spaces) are kept whole, or split by rows with the header line(s) repeated
in ``context`` (indexed with the chunk, not part of its span).

Invariant: ``doc.text[chunk.start:chunk.end] == chunk.text`` and ``chunk.id == f"{doc.name}:{start}-{end}"``.

Example::

    >>> from pipeline.documents.load import load_documents
    >>> from pipeline.documents.chunking import chunk_document
    >>> doc = load_documents(None)[0]
    >>> chunks = chunk_document(doc, max_chars=900)
    >>> all(doc.text[c.start:c.end] == c.text for c in chunks)
    True
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.documents.text import Document

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
# A candidate sentence end: terminal punctuation (maybe closed by a quote/bracket), then space, then something
# that can open a sentence.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-ZÁÉÍÓÚÂÊÔÃÕÀÇ0-9§•\-–])|\n")
_ABBREVIATIONS = {
    "art", "arts", "inc", "incs", "par", "al", "alín", "cap", "sr", "sra", "srs", "dr", "dra", "drs", "prof",
    "profa", "profs", "exmo", "exma", "ilmo", "ilma", "n", "nº", "no", "nos", "núm", "p", "pp", "pág", "fl",
    "fls", "ex", "obs", "cf", "av", "tel", "ltda", "s.a", "ref", "vol", "ed", "min", "máx", "aprox", "séc",
}
_HEADING_MAX_CHARS = 90
# Structural markers at the start of a line, most specific first; the group name is the level.
_MARKER = re.compile(
    r"(?P<art>(?:Art\.?|Artigo)\s*\d+\s*(?:º|°|o\b)?(?:-[A-Z]\b)?)"
    r"|(?P<par>§\s*\d+\s*(?:º|°|o\b)?|Par[áa]grafo\s+[úu]nico)"
    r"|(?P<inc>[IVXLC]{1,6})\s*[-–—)]\s"
    r"|(?P<ali>[a-z])\)\s"
    r"|(?P<item>\d{1,2}(?:\.\d{1,2})+)\.?\s")
_LEVELS = ("art", "par", "inc", "ali")  # an item of an edital sits beside this hierarchy, not in it
# a label names the item first: an item starts its own numbering (it clears the article's levels), so the incisos
# and alíneas found with it are the item's own ("item 8.1 > inciso IV")
PATH_ORDER = ("item", *_LEVELS)
_CELLS = re.compile(r"\s*\|\s*|\t+|\s{2,}")
_SEPARATOR_ROW = re.compile(r"^[\s|:+=-]+$")


@dataclass(frozen=True)
class Chunk:
    """A slice of a document: ``text == document_text[start:end]``."""

    id: str
    document: str  # Document.name
    title: str
    text: str
    start: int
    end: int
    section: str = ""  # path: heading > Art. > § > inciso > alínea (or item of an edital)
    context: str = ""  # indexed before the text but outside the span: a split table's repeated header
    page: int = 0  # page the chunk starts on (PDF, paged DOCX), for citations ("p. 4"); 0: no pages
    # the title in capitals of the section the chunk starts in, where a document writes it right above the
    # section's items ("8. DA MATRÍCULA" / "8.1. Para a matrícula…"): for citations only, not indexed
    section_title: str = ""


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def split_paragraphs(text: str) -> list[tuple[int, int]]:
    """Spans of the non-blank paragraphs of ``text`` (trimmed of surrounding whitespace)."""
    spans, pos = [], 0
    for match in _PARAGRAPH_BREAK.finditer(text):
        spans.append(_trimmed(text, pos, match.start()))
        pos = match.end()
    spans.append(_trimmed(text, pos, len(text)))
    return [(s, e) for s, e in spans if e > s]


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Spans of the sentences of ``text[start:end]`` (absolute offsets, trimmed), Portuguese abbreviations kept."""
    end = len(text) if end is None else end
    spans, pos = [], start
    for match in _SENTENCE_END.finditer(text, start, end):
        if match.group() != "\n":
            word = re.search(r"([\wº.]+)\.*$", text[pos:match.start()] + ".")
            stem = word.group(1).rstrip(".").lower() if word else ""
            if stem in _ABBREVIATIONS or (len(stem) == 1 and stem.isalpha()):
                continue  # "art. 5", "Prof. Silva", initials
        spans.append(_trimmed(text, pos, match.end()))
        pos = match.end()
    spans.append(_trimmed(text, pos, end))
    return [(s, e) for s, e in spans if e > s]


def _hard_split(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Split an over-long span at the last space before ``max_chars`` (or exactly there when none)."""
    pieces = []
    while end - start > max_chars:
        cut = text.rfind(" ", start + 1, start + max_chars + 1)
        cut = cut if cut > start else start + max_chars
        pieces.append(_trimmed(text, start, cut))
        start = _trimmed(text, cut, end)[0]
    pieces.append((start, end))
    return [(s, e) for s, e in pieces if e > s]


def _is_heading(text: str, start: int, end: int) -> bool:
    line = text[start:end]
    if "\n" in line or len(line) > _HEADING_MAX_CHARS:
        return False
    line = line.lstrip("#").strip()
    return bool(line) and line[-1] not in ".;:,!?" and any(c.isalpha() for c in line)


def _marker(text: str, start: int, end: int) -> tuple[str, str] | None:
    """``(level, label)`` of a structural marker opening ``text[start:end]``, e.g. ``("par", "§ 2º")``."""
    match = _MARKER.match(text, start, end)
    if match is None:
        return None
    level = match.lastgroup
    label = " ".join(match.group(level).split())
    return level, {"inc": f"inciso {label}", "ali": f"alínea {label}", "item": f"item {label}"}.get(level, label)


def _lines(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans, pos = [], start
    while pos < end:
        stop = text.find("\n", pos, end)
        stop = end if stop < 0 else stop
        s, e = _trimmed(text, pos, stop)
        if e > s:
            spans.append((s, e))
        pos = stop + 1
    return spans


def _cells(line: str) -> int:
    return len([c for c in _CELLS.split(line.strip().strip("|")) if c.strip()])


def _table_rows(text: str, lines: list[tuple[int, int]]) -> tuple[int, int] | None:
    """``(first, last)`` line indices of a table in ``lines``: three or more consecutive lines with the same
    number (>= 2) of cells (separator rows included), or ``None``."""
    counts = [-1 if _SEPARATOR_ROW.match(text[s:e]) else _cells(text[s:e]) for s, e in lines]
    best, run_start = None, 0
    for i in range(len(counts) + 1):
        if i < len(counts) and (counts[i] == -1 or (counts[i] >= 2 and all(
                c in (-1, counts[i]) for c in counts[run_start:i]))):
            continue
        rows = [c for c in counts[run_start:i] if c != -1]
        if len(rows) >= 3 and (best is None or i - run_start > best[1] - best[0] + 1):
            best = (run_start, i - 1)
        run_start = i if i < len(counts) and counts[i] >= 2 else i + 1
    return best


def _table_units(text: str, lines: list[tuple[int, int]], max_chars: int) -> list[tuple[int, int, str, str]]:
    """A table whole when it fits, else groups of rows, each after the first with the header as context."""
    start, end = lines[0][0], lines[-1][1]
    if end - start <= max_chars:
        return [(start, end, "table", "")]
    n_header = 2 if len(lines) > 2 and _SEPARATOR_ROW.match(text[lines[1][0]:lines[1][1]]) else 1
    header = "\n".join(text[s:e] for s, e in lines[:n_header])
    budget = max(max_chars - len(header) - 1, 20)
    units, group = [], [lines[0][0], lines[n_header - 1][1]]
    for s, e in lines[n_header:]:
        if e - group[0] > (max_chars if not units else budget) and group[1] > group[0]:
            units.append((group[0], group[1], "table", header if units else ""))
            group = [s, e]
        else:
            group[1] = e
    units.append((group[0], group[1], "table", header if units else ""))
    return [(a, b, kind, ctx) for s, e, kind, ctx in units for a, b in _hard_split(text, s, e, max_chars)]


def _units(text: str, max_chars: int) -> list[tuple[int, int, str, str]]:
    """``(start, end, kind, context)``: kind is heading, table or text; over-long units are split."""
    units: list[tuple[int, int, str, str]] = []
    for start, end in split_paragraphs(text):
        lines = _lines(text, start, end)
        table = _table_rows(text, lines)
        if table is not None:  # the table, and the lines before and after it as paragraphs of their own
            first, last = table
            if first:
                units.extend(_text_units(text, lines[0][0], lines[first - 1][1], lines[:first], max_chars))
            units.extend(_table_units(text, lines[first:last + 1], max_chars))
            if last + 1 < len(lines):
                units.extend(_text_units(text, lines[last + 1][0], end, lines[last + 1:], max_chars))
            continue
        # A heading: one short line without final punctuation, or a few ("CAPÍTULO II" / "Das Inscrições").
        if len(lines) <= 3 and all(_marker(text, s, e) is None and _is_heading(text, s, e) for s, e in lines):
            units.extend((s, e, "heading", "") for s, e in lines)
            continue
        # A title in capitals right above its items ("8. DA MATRÍCULA" over "8.1. Para a matrícula…", no blank
        # line between) names the section from there on, but packs with the text like any line (splitting chunks
        # at every such title made them too short to read, measured on scripts/bench_data/citizen_dev).
        lead = _leading_titles(text, lines)
        if lead:  # one unit, as the lines were before: the chunks are cut where they were without titles
            units.append((lines[0][0], lines[lead - 1][1], "title", ""))
            start, lines = lines[lead][0], lines[lead:]
        units.extend(_text_units(text, start, end, lines, max_chars))
    return units


def _is_title(text: str, start: int, end: int) -> bool:
    """A heading line written in capitals ("8. DA MATRÍCULA", "CAPÍTULO II", "DAS INSCRIÇÕES")."""
    letters = [c for c in text[start:end] if c.isalpha()]
    return (len(letters) >= 3 and all(c.isupper() for c in letters) and _marker(text, start, end) is None
            and _is_heading(text, start, end))


def _leading_titles(text: str, lines: list[tuple[int, int]]) -> int:
    """How many of ``lines``' first lines (at most two) are titles in capitals directly followed by a line
    that opens with a structural marker; 0 when they are not (prose, a signature, a lone title)."""
    lead = 0
    while lead < min(2, len(lines) - 1) and _is_title(text, *lines[lead]):
        lead += 1
    return lead if lead and _marker(text, *lines[lead]) is not None else 0


def section_titles(text: str) -> list[tuple[int, int]]:
    """The spans of ``text`` that :func:`chunk_document` takes for section titles above their items (one span per
    title, its lines together): the same units, so the two never disagree."""
    return [(start, end) for start, end, kind, _ in _units(text, len(text) + 1) if kind == "title"]


def title_name(text: str, start: int, end: int) -> str:
    """The name of the title at ``text[start:end]``, its lines joined ("CAPÍTULO III — DA MATRÍCULA")."""
    return " — ".join(" ".join(line.split()) for line in text[start:end].splitlines() if line.strip())


def _text_units(text: str, start: int, end: int, lines: list[tuple[int, int]], max_chars: int
                ) -> list[tuple[int, int, str, str]]:
    """Structural markers open a unit even without a blank line before them; long units split at sentences."""
    units, pieces, piece_start = [], [], start
    for s, _ in lines[1:]:
        if _marker(text, s, end) is not None:
            pieces.append(_trimmed(text, piece_start, s))
            piece_start = s
    pieces.append(_trimmed(text, piece_start, end))
    for s, e in pieces:
        if e - s <= max_chars:
            units.append((s, e, "text", ""))
        else:
            for s_start, s_end in split_sentences(text, s, e):
                units.extend((a, b, "text", "") for a, b in _hard_split(text, s_start, s_end, max_chars))
    return units


def _path(heading: str, levels: dict[str, str]) -> str:
    return " > ".join(p for p in (heading, *(levels.get(k, "") for k in PATH_ORDER)) if p)


def _marked_levels(levels: dict[str, str], level: str, label: str) -> dict[str, str]:
    """The numbering path (``levels``, updated in place unless it starts over) after a marker of ``level``."""
    if level in _LEVELS:  # a new article clears its §, incisos and alíneas; a § clears its incisos...
        for lower in _LEVELS[_LEVELS.index(level):]:
            levels.pop(lower, None)
    if level in ("art", "item"):  # articles and numbered items are two numbering schemes, not nested
        levels = {level: label}
    levels[level] = label
    return levels


def chunk_document(doc: Document, *, max_chars: int = 900) -> list[Chunk]:
    """Structure-aware chunks of ``doc``, at most ``max_chars`` long plus, at most, the heading lines that open them."""
    if max_chars < 20:
        raise ValueError("max_chars must be at least 20")
    text = doc.text
    chunks: list[Chunk] = []
    heading = ""
    levels: dict[str, str] = {}
    current: list[int] | None = None  # [start, end] of the chunk being packed
    current_section, current_context = "", ""
    heading_start: int | None = None  # start of the headings waiting for their first paragraph
    current_is_table = False
    section_title = current_title = ""

    def flush() -> None:
        nonlocal current
        if current is not None:
            s, e = current
            chunks.append(Chunk(id=f"{doc.name}:{s}-{e}", document=doc.name, title=doc.title, text=text[s:e],
                                start=s, end=e, section=current_section, context=current_context,
                                page=doc.page_at(s), section_title=current_title))
        current = None

    for start, end, kind, context in _units(text, max_chars):
        if kind == "heading":
            flush()
            name = text[start:end].lstrip("#").strip()
            # Consecutive headings ("CAPÍTULO II" then "Das Bolsas") name one section together.
            heading = f"{heading} — {name}" if heading_start is not None else name
            heading_start = start if heading_start is None else heading_start
            levels, current_is_table, section_title = {}, False, ""
            continue
        if kind == "title":  # names the section from here on ("CAPÍTULO II — DAS INSCRIÇÕES"); packed like text
            section_title = title_name(text, start, end)
        marker = _marker(text, start, end) if kind == "text" else None
        if marker is not None:
            levels = _marked_levels(levels, *marker)
        section = _path(heading, levels)
        # Articles and tables start chunks of their own; so does what follows a table.
        new_article = (marker is not None and marker[0] == "art") or kind == "table" or current_is_table
        # A chunk stays on one page (unless one paragraph runs across the break), so its page can be cited.
        new_article = new_article or (current is not None and doc.page_at(start) != doc.page_at(current[0]))
        if heading_start is not None:  # headings open the next chunk: their words help retrieval
            flush()
            current, current_section, current_context, heading_start = [heading_start, end], section, context, None
            current_title = section_title
        elif (current is not None and end - current[0] <= max_chars and not new_article and not context
              and not current_context):
            current[1] = end
        else:
            flush()
            current, current_section, current_context, current_title = [start, end], section, context, section_title
        current_is_table = kind == "table"
    flush()
    if heading_start is not None:  # headings at the very end of the document
        current, current_section, current_context, current_title = [heading_start, len(text.rstrip())], heading, "", ""
        flush()
    return chunks
