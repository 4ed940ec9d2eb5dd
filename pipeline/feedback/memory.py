"""What citizens' votes teach at once: the 👍 fast path and the 👎 memory.

Both act *immediately* (from the vote on, in every process sharing the database), not after the nightly job:

- 👍 fast path: a new question *near-identical* to one whose answer was validated (at least one 👍, no 👎,
  summed over near-identical questions giving that same answer) is answered with that answer at once
  (strategy ``"fastpath"``, logged as such), provided the passage it came from is still in the serving index
  (a changed document makes it stale).
- 👎 memory: an answer that got more 👎 than 👍 for a near-identical question is not given again for it, nor
  any span overlapping the place of the passage it was taken from; the answerer gives its next-best candidate
  elsewhere instead (see :func:`pipeline.answering.extract.best_excluding`). Chosen on the first 200 questions of
  FaQuAD's train articles: excluding only the same text lifts the disliked answers' F1 from 0.09 to 0.26, excluding also
  the overlapping spans to 0.28 (a near-miss span of the same place is usually the same mistake).
- votes on "the closest passage" (an abstention that quoted the passage that came closest, with 👍/👎 asking
  whether it answers): a passage with a 👍 and no 👎 is *confirmed* for near-identical questions (the reader
  answers from it instead of abstaining again); with more 👎 than 👍, the sentence quoted from it is not read
  for them again (a :class:`Rejected` with the ``span`` shown and no text) — the citizen judged that sentence,
  so the rest of the passage stays.

"Near-identical": same question type (onde / quando / quanto… — "Quando foi criada?" and "Onde foi criada?"
share every content word) and a Jaccard similarity of their content-word stems (accents, case, stop words and
word order ignored) of at least ``Settings.fastpath_min_similarity`` (0.9: in practice the same words).
"The same answer": token F1 of at least :data:`pipeline.core.text.SAME_ANSWER_F1` between the two texts, so
"Campo Grande" and "em Campo Grande" are one answer.

Example::

    >>> from pipeline.feedback.memory import question_key, similar
    >>> similar(question_key("Onde fica a sede da UFMS?"), question_key("a sede da ufms fica onde"), 0.9)
    True
    >>> similar(question_key("Onde fica a UFMS?"), question_key("Quando foi criada a UFMS?"), 0.9)
    False
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from pipeline.core.query import Query
from pipeline.core.text import same_answer
from pipeline.feedback.export import closest_source, passage_verdict, recorded_span
from storage import repository

log = logging.getLogger(__name__)


def question_key(question: str) -> tuple[str, frozenset[str]]:
    """(question type, set of content-word stems): what near-identity compares — the :attr:`Query.key` of a
    stored question, the same as a new question's (a blank one has no words: it is near-identical to none)."""
    return Query.of(question).key if question.strip() else ("outro", frozenset())


def similar(a: tuple[str, frozenset[str]], b: tuple[str, frozenset[str]], threshold: float) -> bool:
    if a[0] != b[0] or not a[1] or not b[1]:
        return False
    return len(a[1] & b[1]) / len(a[1] | b[1]) >= threshold


@dataclass(frozen=True)
class Voted:
    """One voted interaction, as the memory keeps it."""

    interaction_id: int
    key: tuple[str, frozenset[str]]
    answer: str
    sources: list[dict]
    up: int
    down: int


@dataclass(frozen=True)
class Rejected:
    """An answer disliked for a question, and the passage (chunk id) it was taken from; or, with no ``text``, the
    ``span`` (document offsets) of a closest-passage reply citizens said does not answer: the sentence quoted
    around it is not read again."""

    chunk_id: str | None
    text: str
    span: tuple[int, int] | None = None


@dataclass(frozen=True)
class PassageVote:
    """The votes on one closest-passage reply: does the passage (chunk id) answer the question?"""

    key: tuple[str, frozenset[str]]
    chunk_id: str
    span: tuple[int, int] | None
    up: int
    down: int


@dataclass
class Recall:
    """What the votes say about a question: a validated answer to give at once, and answers not to give."""

    approved: Voted | None = None
    rejected: list[Rejected] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)  # chunk ids citizens said answer the question


class FeedbackMemory:
    """The voted interactions, reloaded whenever the feedback table changed (any process's votes)."""

    def __init__(self, database, *, min_similarity: float) -> None:
        self.database = database
        self.min_similarity = min_similarity
        self._lock = threading.Lock()
        self._signature: tuple | None = None
        self._by_type: dict[str, list[Voted]] = {}
        self._passages_by_type: dict[str, list[PassageVote]] = {}

    def _current_signature(self, session) -> tuple:
        return repository.feedback_signature(session)

    def _reload(self, session) -> None:
        by_type: dict[str, list[Voted]] = {}
        passages: dict[str, list[PassageVote]] = {}
        for row, up, down in repository.voted_interactions(session):
            if row.abstained:
                source = closest_source(row.sources)
                if source is not None:
                    span = recorded_span(source)
                    vote = PassageVote(key=question_key(row.question), chunk_id=str(source["chunk_id"]),
                                       span=tuple(span) if span else None, up=up, down=down)
                    passages.setdefault(vote.key[0], []).append(vote)
                continue
            if not row.answer.strip():
                continue
            voted = Voted(interaction_id=row.id, key=question_key(row.question), answer=row.answer,
                          sources=list(row.sources or []), up=up, down=down)
            by_type.setdefault(voted.key[0], []).append(voted)
        self._by_type, self._passages_by_type = by_type, passages

    def refresh(self) -> None:
        """Reload if the feedback table changed since the last look (one cheap query otherwise)."""
        with self._lock, self.database.session() as session:
            signature = self._current_signature(session)
            if signature != self._signature:
                self._reload(session)
                self._signature = signature

    def recall(self, question: Query | str, *, source_ok=lambda source: True) -> Recall:
        """The votes on near-identical questions; ``source_ok(source_dict)`` says a source is still served."""
        self.refresh()
        key = Query.of(question).key
        near = [v for v in self._by_type.get(key[0], []) if similar(key, v.key, self.min_similarity)]
        groups: list[list[Voted]] = []  # interactions that gave the same answer
        for voted in near:
            for group in groups:
                if same_answer(group[0].answer, voted.answer):
                    group.append(voted)
                    break
            else:
                groups.append([voted])
        recall = Recall()
        best = None
        for group in groups:
            up, down = sum(v.up for v in group), sum(v.down for v in group)
            if down > up:
                recall.rejected.extend(sorted({Rejected(v.sources[0].get("chunk_id") if v.sources else None,
                                                        v.answer) for v in group}, key=lambda r: r.text))
            if up and not down:
                latest = max(group, key=lambda v: v.interaction_id)
                if latest.sources and source_ok(latest.sources[0]) and (best is None or up > best[0]):
                    best = (up, latest)
        recall.approved = best[1] if best else None
        tally: dict[str, list] = {}  # chunk id -> [up, down, spans shown] over near-identical questions
        for vote in self._passages_by_type.get(key[0], []):
            if similar(key, vote.key, self.min_similarity):
                counts = tally.setdefault(vote.chunk_id, [0, 0, set()])
                counts[0] += vote.up
                counts[1] += vote.down
                if vote.span is not None:
                    counts[2].add(vote.span)
        for chunk_id, (up, down, spans) in sorted(tally.items()):
            verdict = passage_verdict(up, down)
            if verdict == "refused":
                recall.rejected.extend(Rejected(chunk_id, "", span) for span in sorted(spans))
            elif verdict == "confirmed" and source_ok({"chunk_id": chunk_id}):
                recall.confirmed.append(chunk_id)
        return recall
