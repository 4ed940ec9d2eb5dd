"""Stand-ins for the service's collaborators that return the real dataclasses (Answer, Source, AskResult...).

`FakeOraculo` has the methods of ``pipeline.service.Oraculo``, canned answers and a call history, for fast tests
of the bot's handlers; `CannedAnswerer` implements ``pipeline.service.AnswerEngine`` inside the real service. The
end-to-end test uses the real service.

Example::

    service = FakeOraculo(documents=["Ufms"])
    service.answers.append(canned_answer("Em Campo Grande.", document="UFMS"))
    result = service.ask("Onde fica?", user_ref=1, channel="telegram")
    assert service.history == [("ask", "Onde fica?", {"user_ref": 1, "channel": "telegram", "chat_ref": None})]
"""

from __future__ import annotations

import threading
import time
from collections import deque

from pipeline.answering.result import Answer, Source
from pipeline.core.query import Query
from pipeline.service import AskResult, VoteResult
from pipeline.settings import Settings


def make_source(document: str, title: str, section: str = "", chunk_id: str = "", quote: str = "",
                score: float = 0.9) -> Source:
    """A real :class:`Source` with test defaults."""
    return Source(document=document, title=title, section=section, chunk_id=chunk_id, quote=quote, score=score)


def make_answer(text: str, sources: list[Source] | None = None, *, abstained: bool = False) -> Answer:
    """A real :class:`Answer` with test defaults."""
    return Answer(text=text, sources=list(sources or []), strategy="extractive", abstained=abstained,
                  model_version="fake-model", index_version="fake-index", latency_ms=1.0)


def canned_answer(text: str, *, document: str = "UFMS", title: str | None = None, section: str = "",
                  abstained: bool = False) -> Answer:
    sources = [] if abstained else [make_source(document, title or document.title(), section)]
    return make_answer("" if abstained else text, sources, abstained=abstained)


class FakeOraculo:
    """Synchronous like the real service; thread-safe because the bot calls it from worker threads."""

    def __init__(self, *, documents: list[str] | None = None, admin_ids: tuple[int, ...] = (),
                 settings: Settings | None = None):
        self.settings = settings or Settings()
        self.answerer = CannedAnswerer()
        self.documents_titles = documents if documents is not None else ["Ufms", "Poscomp"]
        self.admin_ids = set(admin_ids)
        self.chats: dict[int, object] = {}  # interaction_id -> chat_ref it was answered in
        self.answers: deque[Answer | Exception] = deque()  # next ask() returns (or raises) the first
        self.history: list[tuple] = []
        self.votes: dict[tuple[int, object], int] = {}  # (interaction_id, user_ref) -> vote
        self.vote_delays: dict[int, float] = {}  # vote -> seconds to sleep inside vote(), to expose races
        self.gates: dict[str, threading.Event] = {}  # question -> event ask() waits for before answering
        self._interactions: set[int] = set()
        self._next_id = 1
        self._lock = threading.Lock()

    def ask(self, question: str, *, user_ref, channel: str, chat_ref=None, on_partial=None) -> AskResult:
        with self._lock:
            self.history.append(("ask", question, {"user_ref": user_ref, "channel": channel, "chat_ref": chat_ref}))
            answer = self.answers.popleft() if self.answers else canned_answer(f"Resposta para: {question}")
            interaction_id = self._next_id
            self._next_id += 1
        gate = self.gates.get(question)
        if gate is not None and not gate.wait(timeout=10):
            raise TimeoutError(f"gate for {question!r} never opened")
        if isinstance(answer, Exception):
            raise answer
        with self._lock:
            self._interactions.add(interaction_id)
            self.chats[interaction_id] = chat_ref
        return AskResult(interaction_id=interaction_id, answer=answer)

    def vote(self, *, interaction_id: int, user_ref, vote: int, chat_ref=None) -> VoteResult:
        time.sleep(self.vote_delays.get(vote, 0.0))
        with self._lock:
            self.history.append(("vote", interaction_id, {"user_ref": user_ref, "vote": vote}))
            if vote not in (1, -1):
                raise ValueError("vote must be +1 or -1")
            if interaction_id not in self._interactions:
                raise LookupError(f"no interaction {interaction_id}")
            if chat_ref is not None and self.chats.get(interaction_id) not in (None, chat_ref):
                raise PermissionError(f"interaction {interaction_id} belongs to another chat")
            before = self.votes.get((interaction_id, user_ref))
            self.votes[(interaction_id, user_ref)] = vote
            return VoteResult(vote=vote, created=before is None, changed=before is not None and before != vote)

    def comment(self, *, interaction_id: int, user_ref, comment: str) -> bool:
        with self._lock:
            self.history.append(("comment", interaction_id, {"user_ref": user_ref, "comment": comment}))
            return (interaction_id, user_ref) in self.votes

    def documents(self) -> list[str]:
        with self._lock:
            self.history.append(("documents",))
        return list(self.documents_titles)

    def forget_user(self, user_ref) -> bool:
        with self._lock:
            self.history.append(("forget", user_ref))
            mine = [key for key in self.votes if key[1] == user_ref]
            for key in mine:
                del self.votes[key]
            return bool(mine) or any(h[0] == "ask" and h[2]["user_ref"] == user_ref for h in self.history)

    def warm_up(self) -> None:
        """Nothing to load."""

    def activity(self, *, since, unanswered: int = 5) -> tuple[dict, list]:
        with self._lock:
            self.history.append(("activity", since))
        return {}, []

    def is_admin(self, telegram_user_id) -> bool:
        return telegram_user_id in self.admin_ids

    def user_hash(self, user_ref) -> str:
        return f"hash-{user_ref}"

    def calls(self, name: str) -> list[tuple]:
        with self._lock:
            return [entry for entry in self.history if entry[0] == name]


class CannedAnswerer:
    """Stands in for ``pipeline.answering.answer.Answerer`` inside the *real* ``Oraculo`` (real database, real votes):
    ``Oraculo(settings, answerer=CannedAnswerer())``. Questions containing "marte" abstain; ``long_text``
    makes every answer that long. Thread-safe and instant, for bot tests, load tests and worker processes."""

    def __init__(self, *, long_text: str | None = None, delay_s: float = 0.0):
        self.long_text, self.delay_s = long_text, delay_s
        self.refreshes = 0

    @property
    def index_version(self) -> str:
        return "canned"

    def answer(self, question: Query, *, on_partial=None, rejected=None, confirmed=None) -> Answer:
        if self.delay_s:
            time.sleep(self.delay_s)
        question = question.text
        if "marte" in question.lower():
            return Answer(text="", abstained=True, model_version="canned", index_version="canned")
        source = Source(document="UFMS", title="Ufms", section="Art. 1º", chunk_id="UFMS:0-90",
                        quote="A UFMS tem sede em Campo Grande.", score=0.9)
        text = self.long_text or f"A UFMS tem sede em Campo Grande. ({question[:40]})"
        return Answer(text=text, sources=[source], model_version="canned", index_version="canned", latency_ms=1.0)

    def warm_up(self) -> None:
        """Nothing to load."""

    def refresh(self) -> bool:
        self.refreshes += 1
        return True

    def maybe_refresh(self) -> bool:
        """No serving versions to follow."""
        return False

    def has_chunk(self, chunk_id: str | None) -> bool:
        """It holds no indexed passage, so no remembered answer is served from one (no 👍 fast path)."""
        return False
