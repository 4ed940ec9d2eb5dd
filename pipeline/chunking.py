"""Cut documents into retrievable chunks whose spans point exactly into the document text.

Paragraphs (separated by blank lines) are the units; consecutive short paragraphs are packed together up to
``max_chars``; a paragraph longer than that is split at sentence ends, and a sentence longer than that at a
space. A short single-line paragraph without final punctuation (``CAPÍTULO II``, ``Das Inscrições``) is taken
for a heading: it starts a new chunk and names the ``section`` of the chunks that follow it.

Invariant: ``doc.text[chunk.start:chunk.end] == chunk.text`` and ``chunk.id == f"{doc.name}:{start}-{end}"``.

Example::

    >>> from pipeline.documents import load_documents
    >>> from pipeline.chunking import chunk_document
    >>> doc = load_documents(None)[0]
    >>> chunks = chunk_document(doc, max_chars=900)
    >>> all(doc.text[c.start:c.end] == c.text for c in chunks)
    True
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.documents import Document

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


@dataclass(frozen=True)
class Chunk:
    """A slice of a document: ``text == document_text[start:end]``."""

    id: str
    document: str  # Document.name
    title: str
    text: str
    start: int
    end: int
    section: str = ""


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


def _units(text: str, max_chars: int) -> list[tuple[int, int, bool]]:
    """Paragraphs, split when longer than ``max_chars``; the flag marks headings."""
    units = []
    for start, end in split_paragraphs(text):
        if _is_heading(text, start, end):
            units.append((start, end, True))
        elif end - start <= max_chars:
            units.append((start, end, False))
        else:
            for s_start, s_end in split_sentences(text, start, end):
                units.extend((a, b, False) for a, b in _hard_split(text, s_start, s_end, max_chars))
    return units


def chunk_document(doc: Document, *, max_chars: int = 900) -> list[Chunk]:
    """Paragraph-aware chunks of ``doc``, at most ``max_chars`` long plus, at most, the heading lines that open them."""
    if max_chars < 20:
        raise ValueError("max_chars must be at least 20")
    text = doc.text
    chunks: list[Chunk] = []
    section = ""
    current: list[int] | None = None  # [start, end] of the chunk being packed
    current_section = ""
    heading_start: int | None = None  # start of the headings waiting for their first paragraph

    def flush() -> None:
        nonlocal current
        if current is not None:
            s, e = current
            chunks.append(Chunk(id=f"{doc.name}:{s}-{e}", document=doc.name, title=doc.title,
                                text=text[s:e], start=s, end=e, section=current_section))
        current = None

    for start, end, heading in _units(text, max_chars):
        if heading:
            flush()
            name = text[start:end].lstrip("#").strip()
            # Consecutive headings ("CAPÍTULO II" then "Das Bolsas") name one section together.
            section = f"{section} — {name}" if heading_start is not None else name
            heading_start = start if heading_start is None else heading_start
            continue
        if heading_start is not None:  # headings open the next chunk: their words help retrieval
            current, current_section, heading_start = [heading_start, end], section, None
        elif current is not None and end - current[0] <= max_chars:
            current[1] = end
        else:
            flush()
            current, current_section = [start, end], section
    flush()
    if heading_start is not None:  # headings at the very end of the document
        current, current_section = [heading_start, len(text.rstrip())], section
        flush()
    return chunks
