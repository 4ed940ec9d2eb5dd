"""Checks and tags for QA pairs: is the answer supported by its source span, is the question new, what is it about.

Pure functions over plain records (the dicts of ``data_qa/*.jsonl``), so generated pairs and pairs people write by
hand go through the same rules. A pair is valid only when

- it has a question (three words to ``MAX_QUESTION_CHARS`` characters) and an answer, and its ``span`` lies
  inside the document (a hand-written pair without one gets the place where its answer occurs, see
  :func:`find_answer_span`);
- its answer is supported by ``document_text[start:end]``: the normalised answer occurs there, or at least
  ``MIN_TOKEN_OVERLAP`` of its content words do;
- its question is not a near-duplicate of an earlier valid question about the same document (token Jaccard >=
  ``NEAR_DUPLICATE_JACCARD``, or >= ``SAME_SPAN_JACCARD`` when both are answered by the same span).

Example::

    >>> from pipeline.qa.validate import check_record, document_type, text_tags
    >>> text = "A taxa de inscrição é de R$ 100,00."
    >>> check_record({"question": "Qual é o valor da taxa?", "answer": "R$ 100,00", "span": [0, 35]}, text)
    []
    >>> check_record({"question": "Qual é o valor da taxa?", "answer": "R$ 90,00", "span": [0, 35]}, text)
    ['answer not supported by its source span (overlap 0.67)']
    >>> document_type("EDITAL_01_2024", "..."), text_tags(text)
    ('edital', ['money'])
"""

from __future__ import annotations

import re

from pipeline.core.text import MONTHS_PATTERN, fold

MIN_TOKEN_OVERLAP = 0.8
NEAR_DUPLICATE_JACCARD = 0.85
SAME_SPAN_JACCARD = 0.6
MIN_QUESTION_WORDS = 3
MAX_QUESTION_CHARS = 500  # citizens' questions are a sentence or two; anything longer is a paste gone wrong
MAX_ANSWER_CHARS = 1500

_STOPWORDS = {"a", "o", "as", "os", "de", "da", "do", "das", "dos", "e", "em", "no", "na", "nos", "nas", "um",
              "uma", "para", "por", "com", "que", "se", "ao", "aos", "ou"}
DATE_RE = re.compile(rf"\b\d{{1,2}}(?:º|°|o)? de (?:{MONTHS_PATTERN})\b|\b\d{{1,2}}/\d{{1,2}}/\d{{2,4}}\b|"
                     rf"\b(?:{MONTHS_PATTERN}) de \d{{4}}\b", flags=re.IGNORECASE)
MONEY_RE = re.compile(r"R\$ ?\d[\d.]*(?:,\d{1,2})?|\b\d[\d.]*(?:,\d{2})? reais\b", flags=re.IGNORECASE)
_DOC_TYPES = (  # first match wins: the name of the file, then the opening of the text
    ("edital", re.compile(r"\bedital\b|\bchamada p[úu]blica\b|\bprocesso seletivo\b", re.IGNORECASE)),
    ("portaria", re.compile(r"\bportaria\b", re.IGNORECASE)),
    ("tabela", re.compile(r"\btabela\b", re.IGNORECASE)),
    ("regulamento", re.compile(r"\bregulamento\b|\bregimento\b|\bresolu[çc][ãa]o\b|\bnormas?\b|\binstru[çc][ãa]o "
                               r"normativa\b|^res\b", re.IGNORECASE)),
)


def normalise(text: str) -> str:
    """Lower case, accents off, punctuation to spaces: 'Inscrição: R$ 100,00' -> 'inscricao r 100 00'."""
    return " ".join(re.sub(r"\W+", " ", fold(text)).split())


def content_tokens(text: str) -> list[str]:
    return [t for t in normalise(text).split() if t not in _STOPWORDS]


def support_score(answer: str, source: str) -> float:
    """1.0 when the normalised answer occurs in the source, else the share of its content tokens found there."""
    norm_answer, norm_source = normalise(answer), normalise(source)
    if norm_answer and f" {norm_answer} " in f" {norm_source} ":
        return 1.0
    tokens = content_tokens(answer)
    if not tokens:
        return 0.0
    available = set(content_tokens(source))
    return sum(t in available for t in tokens) / len(tokens)


def question_key(question: str) -> frozenset[str]:
    return frozenset(content_tokens(question))


def is_near_duplicate(key: frozenset[str], seen: list[tuple[frozenset[str], object]], span: object = None) -> bool:
    """Token Jaccard >= ``NEAR_DUPLICATE_JACCARD`` with a seen question, or >= ``SAME_SPAN_JACCARD`` with one
    answered by the same span ("Qual é o valor da bolsa?" / "Qual é o valor mensal da bolsa?")."""
    for other, other_span in seen:
        union = len(key | other)
        jaccard = len(key & other) / union if union else 1.0
        if jaccard >= NEAR_DUPLICATE_JACCARD or (span is not None and span == other_span
                                                 and jaccard >= SAME_SPAN_JACCARD):
            return True
    return False


def check_record(record: dict, document_text: str | None) -> list[str]:
    """Why ``record`` is not a usable QA pair (``[]`` when it is). Without the document text only the shape is
    checked."""
    reasons: list[str] = []
    question, answer = record.get("question"), record.get("answer")
    if not isinstance(question, str) or not question.strip():
        return ["missing or empty 'question'"]
    if not isinstance(answer, str) or not answer.strip():
        return ["missing or empty 'answer'"]
    if len(question) > MAX_QUESTION_CHARS:
        return [f"question too long ({len(question)} characters, at most {MAX_QUESTION_CHARS})"]
    if len(question.split()) < MIN_QUESTION_WORDS:
        reasons.append(f"question too short ({len(question.split())} words, at least {MIN_QUESTION_WORDS})")
    if len(answer) > MAX_ANSWER_CHARS:
        reasons.append("answer too long")
    if normalise(question) == normalise(answer):
        reasons.append("question repeats the answer")
    span = record.get("span")
    if span is None:
        if document_text is not None and support_score(answer, document_text) < 1.0:
            reasons.append("answer not found in the document")
        return reasons
    if not (isinstance(span, (list, tuple)) and len(span) == 2 and all(isinstance(x, int) for x in span)):
        return reasons + ["'span' must be [start, end]"]
    start, end = span
    if not 0 <= start < end or (document_text is not None and end > len(document_text)):
        return reasons + ["span outside the document"]
    if document_text is not None:
        score = support_score(answer, document_text[start:end])
        if score < MIN_TOKEN_OVERLAP:
            reasons.append(f"answer not supported by its source span (overlap {score:.2f})")
    return reasons


def find_answer_span(answer: str, document_text: str) -> tuple[int, int] | None:
    """Where ``answer`` occurs in the document: exactly, else ignoring case and runs of white space; ``None``."""
    start = document_text.find(answer.strip())
    if answer.strip() and start >= 0:
        return start, start + len(answer.strip())
    words = answer.split()
    if not words:
        return None
    match = re.search(r"\s+".join(re.escape(w) for w in words), document_text, flags=re.IGNORECASE)
    return (match.start(), match.end()) if match else None


def validate_records(records: list[dict], document_text: str | None,
                     seen: list[tuple[frozenset[str], object]] | None = None) -> list[tuple[dict, list[str]]]:
    """``(record, reasons)`` for each record in order; near-duplicates are judged against earlier valid ones.

    ``seen`` (``(question key, span)`` of the pairs already accepted for this document) is extended in place.
    """
    seen = [] if seen is None else seen
    checked = []
    for record in records:
        reasons = check_record(record, document_text)
        if not reasons:
            key, span = question_key(record["question"]), tuple(record.get("span") or ()) or None
            if is_near_duplicate(key, seen, span):
                reasons.append("near-duplicate question")
            else:
                seen.append((key, span))
        checked.append((record, reasons))
    return checked


def document_type(name: str, text: str) -> str | None:
    """edital, portaria, tabela or regulamento, from the file name and then the first lines; ``None`` otherwise."""
    for probe in (name.replace("_", " "), text[:600]):
        for kind, pattern in _DOC_TYPES:
            if pattern.search(probe):
                return kind
    return None


def text_tags(text: str) -> list[str]:
    """'date' and 'money' when the text holds a date or an amount of money."""
    return [tag for tag, pattern in (("date", DATE_RE), ("money", MONEY_RE)) if pattern.search(text)]


def pair_tags(*, kind: str | None, doc_type: str | None, section: str, answer: str, in_table: bool) -> list[str]:
    """The tags of one pair: its kind, the document type, dates, money, table and section."""
    tags = [f"kind:{kind}"] if kind else []
    if doc_type:
        tags.append(f"doc:{doc_type}")
    tags += text_tags(answer)
    if in_table:
        tags.append("table")
    if section:
        tags.append(f"section:{section[:80]}")
    return tags
