"""Structure of a legal or administrative text for offline QA: articles, paragraphs (§) and tables.

Pure string work over ``Document.text``; every item carries the exact span of its supporting text, so a question
about a table row is answered by that row and a question about an article by its opening sentence.

- Articles: a line opening with ``Art. 5º`` / ``Artigo 12`` gives "O que estabelece o Art. 5º do edital?"; its
  ``§ 1º`` and ``Parágrafo único`` lines give "O que diz o § 1º do Art. 5º?".
- Tables: three or more consecutive lines with the same number (>= 2) of cells, split by ``|``, tabs or runs of
  two or more spaces; the first line is the header. Each row gives questions by column kind: money ("Qual é o
  valor da taxa de inscrição para Professor Adjunto?"), counts ("Quantas vagas há para ...?"), anything else
  ("Qual é o local de prova para ...?").

Example::

    >>> from pipeline.qa.structure import structure_items
    >>> text = "Cargo | Vagas | Taxa de inscrição\\nProfessor | 3 | R$ 150,00\\nTécnico | 5 | R$ 90,00\\n"
    >>> [item.question for item in structure_items(text, doc_type="edital")][:2]
    ['Quantas vagas há para Professor?', 'Qual é o valor da taxa de inscrição para Professor?']
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache

from pipeline.qa.validate import MONEY_RE, DATE_RE

_ARTICLE = re.compile(r"^(?:Art\.?|Artigo)\s*(?P<n>\d+)\s*(?:º|°|o\b)?\.?\s*[-–—.]?\s*(?P<body>\S.*)$")
_PARAGRAPH = re.compile(r"^(?:§\s*(?P<n>\d+)\s*(?:º|°|o\b)?|(?P<unico>Parágrafo único))\.?\s*[-–—.:]?"
                        r"\s*(?P<body>\S.*)$",
                        flags=re.IGNORECASE)
_CELL_SPLIT = re.compile(r"\s*\|\s*|\t+|\s{2,}")
_SEPARATOR_ROW = re.compile(r"^[\s|:+-]+$")
_DE_TYPE = {"edital": "do edital", "portaria": "da portaria", "tabela": "da tabela", "regulamento": "do regulamento"}
_MASCULINE_A = {"dia", "mapa", "programa", "sistema", "problema", "tema", "clima", "idioma"}
_FEMININE_COUNT = {"vagas", "horas", "bolsas", "parcelas", "turmas", "etapas", "provas", "questões", "cotas",
                   "inscrições", "aulas", "semanas", "vezes"}
MAX_QUESTIONS_PER_ROW = 3


@dataclass(frozen=True)
class StructureItem:
    """One question about a stretch of the text: ``text[start:end]`` is the answer."""

    kind: str  # article, paragraph, table
    question: str
    start: int
    end: int
    in_table: bool = False


def _ordinal(n: str) -> str:
    """Brazilian legal style: ordinals up to nine (Art. 5º), cardinals after (Art. 10)."""
    return f"{int(n)}º" if int(n) < 10 else str(int(n))


def _lines(text: str) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for line in text.split("\n"):
        start, end = pos, pos + len(line)
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        spans.append((start, end))
        pos += len(line) + 1
    return spans


def article_items(text: str, doc_type: str | None) -> list[StructureItem]:
    items: list[StructureItem] = []
    article = ""
    suffix = f" {_DE_TYPE[doc_type]}" if doc_type in _DE_TYPE else ""
    for start, end in _lines(text):
        line = text[start:end]
        match = _ARTICLE.match(line)
        if match:
            article = f"Art. {_ordinal(match['n'])}"
            items.append(StructureItem("article", f"O que estabelece o {article}{suffix}?", start, end))
            continue
        match = _PARAGRAPH.match(line)
        if match and article:
            name = "o parágrafo único" if match["unico"] else f"o § {_ordinal(match['n'])}"
            items.append(StructureItem("paragraph", f"O que diz {name} do {article}{suffix}?", start, end))
    return items


def _cells(line: str) -> list[str]:
    return [c.strip() for c in _CELL_SPLIT.split(line.strip().strip("|")) if c.strip()]


def _tables(text: str) -> list[tuple[list[str], list[tuple[int, int, list[str]]]]]:
    """``(header, rows)`` of each table; a row is ``(start, end, cells)``."""
    tables, block = [], []

    def close() -> None:
        if len(block) >= 3:
            header = block[0][2]
            tables.append((header, [row for row in block[1:]]))

    for start, end in _lines(text):
        line = text[start:end]
        if line and _SEPARATOR_ROW.match(line) and "-" in line:
            continue  # Markdown's |---|---|
        cells = _cells(line) if line else []
        if len(cells) >= 2 and (not block or len(cells) == len(block[0][2])):
            block.append((start, end, cells))
            continue
        close()
        block = [(start, end, cells)] if len(cells) >= 2 else []
    close()
    return tables


def _article_for(noun: str) -> str:
    first = noun.split()[0].lower()
    plural = first.endswith("s") and len(first) > 3
    feminine = (first.endswith(("a", "ção", "são", "dade", "gem", "as", "ções")) and first not in _MASCULINE_A)
    return ("as" if feminine else "os") if plural else ("a" if feminine else "o")


def _de(article: str) -> str:
    return {"o": "do", "a": "da", "os": "dos", "as": "das"}[article]


def _row_questions(header: list[str], cells: list[str]) -> list[str]:
    label = cells[0]
    if not re.search(r"[A-Za-zÀ-ú]", label) or len(label) > 80:
        return []
    questions = []
    for name, value in zip(header[1:], cells[1:]):
        noun = " ".join(re.sub(r"\([^)]*\)", " ", name).split()).strip(" :")
        if not noun or not re.search(r"[A-Za-zÀ-ú]", noun):
            continue
        low = noun[0].lower() + noun[1:] if not noun[:2].isupper() else noun
        art = _article_for(noun)
        if MONEY_RE.search(value) or re.fullmatch(r"\d[\d.]*,\d{2}", value):
            what = low if low.lower().startswith("valor") else f"valor {_de(art)} {low}"
            questions.append(f"Qual é o {what} para {label}?")
        elif re.fullmatch(r"\d+", value):
            many = "Quantas" if low.split()[0].lower() in _FEMININE_COUNT or art in {"a", "as"} else "Quantos"
            questions.append(f"{many} {low} há para {label}?")
        elif DATE_RE.search(value):
            questions.append(f"Qual é {art} {low} para {label}?" if art in {"o", "a"}
                             else f"Quais são {art} {low} para {label}?")
        elif art in {"o", "a"}:
            questions.append(f"Qual é {art} {low} para {label}?")
        else:
            questions.append(f"Quais são {art} {low} para {label}?")
    return questions[:MAX_QUESTIONS_PER_ROW]


def table_items(text: str) -> list[StructureItem]:
    items = []
    for header, rows in _tables(text):
        for start, end, cells in rows:
            items.extend(StructureItem("table", q, start, end, in_table=True) for q in _row_questions(header, cells))
    return items


def table_spans(text: str) -> list[tuple[int, int]]:
    """Spans of the lines (header and rows) of every table, for tagging and for keeping sentence templates out."""
    spans = []
    for header, rows in _tables(text):
        spans.extend((s, e) for s, e, _ in rows)
    return spans


_HEADING = re.compile(r"^(?:(?:CAPÍTULO|TÍTULO|SEÇÃO|SUBSEÇÃO|ANEXO|"
                      r"Capítulo|Título|Seção|Subseção|Anexo)\s+[IVXLC\d]+\b.*"
                      r"|(?:Do|Da|Dos|Das)\s+[A-ZÀ-Ú][^.;:]{2,80})$")


@lru_cache(maxsize=8)
def _sections(text: str) -> tuple[list[int], list[str]]:
    """Where each section starts and its name; consecutive heading lines name one section together."""
    starts: list[int] = []
    names: list[str] = []
    last_end, current = -2, []
    for start, end in _lines(text):
        line = text[start:end]
        if line and len(line) <= 90 and _HEADING.match(line):
            current = current + [line] if start <= last_end + 2 and current else [line]
            last_end = end
            starts.append(start)
            names.append(" — ".join(current[-2:]))
    return starts, names


def section_at(text: str, pos: int) -> str:
    """The heading ("CAPÍTULO II — Das Inscrições") of the part of ``text`` where ``pos`` lies; "" when none."""
    starts, names = _sections(text)
    i = bisect_right(starts, pos) - 1
    return names[i] if i >= 0 else ""


def structure_items(text: str, *, doc_type: str | None) -> list[StructureItem]:
    """Every article, paragraph and table-row question of ``text``, in text order."""
    return sorted(article_items(text, doc_type) + table_items(text), key=lambda item: item.start)
