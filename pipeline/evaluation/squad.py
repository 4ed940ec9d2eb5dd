"""SQuAD v1.1 files as evaluation data: questions, their articles and paragraphs (a corpus may come apart).

The answer metrics (token F1, exact match) are :mod:`pipeline.core.text`'s.

Example::

    >>> import json, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "q.json"
    >>> _ = path.write_text(json.dumps({"data": [{"title": "UFMS", "paragraphs": [{"context": "Fica em Campo Grande.",
    ...     "qas": [{"id": "1", "question": "Onde fica?",
    ...              "answers": [{"text": "Campo Grande", "answer_start": 8}]}]}]}]}))
    >>> corpus = load_squad(path)
    >>> [q.question for q in corpus.questions]
    ['Onde fica?']
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# Portuguese articles play the role of SQuAD's English "a/an/the".


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
