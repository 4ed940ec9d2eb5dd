"""Where an answer sits: the sentence (or table row) that supports it and the exact label of that place.

A reader's span is an offset range inside a chunk. The citizen sees, under the short answer, the supporting
sentence quoted from the document and *its* place — the article, paragraph, inciso, alínea or item of the line
the sentence is on (not the chunk's first one), under the chunk's heading — and, for a table, the header line
and the row that holds the answer.

Example::

    >>> from pipeline.documents.chunking import Chunk
    >>> text = "Art. 5º A inscrição custa R$ 80,00.\\n§ 1º Isentos pagam zero.\\n§ 2º O prazo é de 10 dias."
    >>> chunk = Chunk(id="d:0-90", document="d", title="Edital", text=text, start=0, end=len(text),
    ...               section="Das Inscrições > Art. 5º")
    >>> at = text.index("10 dias")
    >>> q = supporting_quote(chunk, at, at + 7)
    >>> q.text, q.section
    ('§ 2º O prazo é de 10 dias.', 'Das Inscrições > Art. 5º > § 2º')
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.documents.chunking import (PATH_ORDER, _lines, _marked_levels, _marker, _table_rows, section_titles,
                                         split_sentences, title_name)

MAX_HEADING_CHARS = 80
MAX_QUOTE_CHARS = 400
_LEVEL_OF_LABEL = (("alínea ", "ali"), ("inciso ", "inc"), ("item ", "item"), ("§", "par"), ("parágrafo", "par"),
                   ("art", "art"))


@dataclass(frozen=True)
class Quote:
    text: str
    start: int       # offsets in the chunk text
    end: int
    section: str     # the label of the quoted place ("" when the chunk has none)
    table_row: bool  # the quote is a table's header + the row of the answer


def _section_parts(section: str) -> tuple[str, dict[str, str]]:
    """The chunk's ``section`` path split into its heading and its structural levels."""
    heading, levels = "", {}
    for part in (p.strip() for p in section.split(" > ") if p.strip()):
        level = next((lv for prefix, lv in _LEVEL_OF_LABEL if part.lower().startswith(prefix)), None)
        if level is None and not levels:
            heading = part
        elif level is not None:
            levels[level] = part
    return heading, levels


def _clip_heading(heading: str, title: str = "") -> str:
    """The heading part of a label: without the document's own title (the citation names it already), its
    last two levels ("CAPÍTULO II — Do Benefício"), at most MAX_HEADING_CHARS."""
    parts = [" ".join(p.split()) for p in heading.split(" — ") if p.strip()]
    parts = [p for p in parts if p.casefold() != " ".join(title.split()).casefold()] or parts[-1:]
    heading = " — ".join(parts[-2:])
    if len(heading) <= MAX_HEADING_CHARS:
        return heading
    cut = heading[:MAX_HEADING_CHARS].rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:—-") + "…"


def section_at(chunk, offset: int) -> str:
    """The label of the place of ``offset`` (chunk-relative): the chunk's own path, updated by every
    structural marker on the lines before it, under the chunk's heading (clipped)."""
    heading, levels = _section_parts(chunk.section or "")
    heading = getattr(chunk, "section_title", "") or heading  # the section's own title, where the document has one
    text = chunk.text
    titles, title_end = dict(section_titles(text)), -1
    for s, e in _lines(text, 0, len(text)):
        if s > offset:
            break
        if s < title_end:  # a later line of the title just read
            continue
        if s in titles:  # "8. DA MATRÍCULA" above its items: the section from here on
            heading, levels, title_end = title_name(text, s, titles[s]), {}, titles[s]
            continue
        marker = _marker(text, s, e)
        if marker is not None:
            levels = _marked_levels(levels, *marker)
    clipped = _clip_heading(heading, getattr(chunk, "title", "")) if heading else ""
    parts = [clipped] if clipped else []
    parts += [levels[k] for k in PATH_ORDER if k in levels]
    return " > ".join(parts)


def heading_lines(chunk) -> list[tuple[int, int]]:
    """The chunk's leading heading lines (those its section's heading was made of): never an answer."""
    heading, _ = _section_parts(chunk.section or "")
    out = []
    for s, e in _lines(chunk.text, 0, len(chunk.text)):
        line = chunk.text[s:e].lstrip("#").strip()
        if heading and line and line in heading and _marker(chunk.text, s, e) is None:
            out.append((s, e))
        else:
            break
    return out


def table_header_lines(chunk) -> list[tuple[int, int]]:
    """The header row of the chunk's table, if it holds one: a column label is never an answer (the value is
    in a row under it)."""
    lines = _lines(chunk.text, 0, len(chunk.text))
    table = _table_rows(chunk.text, lines)
    return [lines[table[0]]] if table is not None else []


def _table_quote(chunk, start: int) -> tuple[int, int, int, int] | None:
    """``(header_start, header_end, row_start, row_end)`` when ``start`` is in a row of a table."""
    text = chunk.text
    lines = _lines(text, 0, len(text))
    table = _table_rows(text, lines)
    header = None
    if table is not None:
        rows = lines[table[0]:table[1] + 1]
        header = rows[0]
    elif chunk.context:  # a table split by rows: its header travels in the context
        rows = lines
        header = None
    else:
        return None
    for s, e in rows:
        if s <= start < e + 1:
            if header is not None and (s, e) == header:
                return None  # the answer is in the header itself: quote it as a sentence
            if header is None:
                return (-1, -1, s, e)
            return (*header, s, e)
    return None


def supporting_quote(chunk, start: int, end: int) -> Quote:
    """The quote for an answer at ``[start, end)`` of ``chunk.text``: its table header + row, or the
    sentence(s) holding it; clipped around the answer when very long."""
    text = chunk.text
    table = _table_quote(chunk, start)
    if table is not None:
        hs, he, rs, re_ = table
        header = chunk.context.splitlines()[0] if hs < 0 and chunk.context else text[hs:he]
        quoted = f"{header.strip()}\n{text[rs:re_].strip()}" if header else text[rs:re_].strip()
        return Quote(quoted, rs, re_, section_at(chunk, rs), True)
    sentences = split_sentences(text, 0, len(text)) or [(0, len(text))]
    first = next((s for s, e in sentences if s <= start < e), sentences[0][0])
    last = next((e for s, e in sentences if s < end <= e), sentences[-1][1])
    qs, qe = min(first, start), max(last, end)
    if qe - qs > MAX_QUOTE_CHARS:  # keep the answer and what is around it
        room = max(0, MAX_QUOTE_CHARS - (end - start)) // 2
        qs, qe = max(qs, start - room), min(qe, end + room)
    quoted = text[qs:qe].strip()
    if qs > first:
        quoted = "…" + quoted
    if qe < last:
        quoted += "…"
    return Quote(" ".join(quoted.split()), qs, qe, section_at(chunk, qs), False)
