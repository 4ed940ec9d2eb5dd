"""SQuAD v1.1 files as evaluation data, and the SQuAD answer metrics with Portuguese accents kept.

Example::

    >>> normalize_answer("O  Campo Grande!")
    'campo grande'
    >>> round(token_f1("em Campo Grande", ["Campo Grande"]), 2)
    0.8
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# Portuguese articles play the role of SQuAD's English "a/an/the".
_ARTICLES = re.compile(r"\b(o|a|os|as|um|uma|uns|umas)\b")
_PUNCT = set(string.punctuation) | {"“", "”", "‘", "’", "«", "»", "–", "—"}


@dataclass(frozen=True)
class SquadQuestion:
    id: str
    question: str
    answers: tuple[str, ...]
    paragraph_id: int  # index into SquadCorpus.paragraphs
    title: str


@dataclass(frozen=True)
class SquadCorpus:
    paragraphs: tuple[str, ...]  # every unique paragraph, in file order
    titles: tuple[str, ...]      # the title of each paragraph
    questions: tuple[SquadQuestion, ...]


def load_squad(path: Path, corpus_path: Path | None = None) -> SquadCorpus:
    """Questions from `path`; corpus = unique paragraphs of `corpus_path` (default: the same file).

    Raises ValueError with the file name on a file that is not SQuAD v1.1.
    """
    data = _read(path)
    corpus_data = data if corpus_path is None else _read(corpus_path)
    index: dict[str, int] = {}
    paragraphs: list[str] = []
    titles: list[str] = []
    for article in corpus_data:
        for paragraph in article.get("paragraphs", []):
            context = paragraph["context"].strip()
            if context not in index:
                index[context] = len(paragraphs)
                paragraphs.append(context)
                titles.append(str(article.get("title", "")))
    questions = []
    for article in data:
        for paragraph in article.get("paragraphs", []):
            context = paragraph["context"].strip()
            if context not in index:
                continue  # a question whose paragraph is not in the corpus has no relevant document
            for qa in paragraph.get("qas", []):
                answers = tuple(a["text"] for a in qa.get("answers", []) if a.get("text", "").strip())
                questions.append(SquadQuestion(id=str(qa.get("id", len(questions))), question=qa["question"],
                                               answers=answers, paragraph_id=index[context],
                                               title=str(article.get("title", ""))))
    return SquadCorpus(tuple(paragraphs), tuple(titles), tuple(questions))


def _read(path: Path) -> list[dict]:
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        data = payload["data"]
        if not isinstance(data, list):
            raise TypeError("'data' is not a list")
        return data
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a SQuAD v1.1 file ({exc})") from exc


def normalize_answer(text: str) -> str:
    """SQuAD normalisation (lower case, no punctuation, no articles, single spaces), accents kept."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def token_f1(prediction: str, golds: list[str] | tuple[str, ...]) -> float:
    """Best token F1 of the prediction over the gold answers."""
    best = 0.0
    pred_tokens = normalize_answer(prediction).split()
    for gold in golds:
        gold_tokens = normalize_answer(gold).split()
        common = Counter(pred_tokens) & Counter(gold_tokens)
        same = sum(common.values())
        if not pred_tokens or not gold_tokens:
            best = max(best, float(pred_tokens == gold_tokens))
            continue
        if same == 0:
            continue
        precision, recall = same / len(pred_tokens), same / len(gold_tokens)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def exact_match(prediction: str, golds: list[str] | tuple[str, ...]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(gold) for gold in golds))
