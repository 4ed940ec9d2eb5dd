"""The one answer path shared by the Telegram bot and the terminal: ask, log, vote.

Example::

    from pipeline.service import Oraculo
    from pipeline.settings import Settings
    oraculo = Oraculo.from_settings(Settings())
    result = oraculo.ask("Onde é sediada a UFMS?", user_ref="cli:local", channel="cli")
    oraculo.vote(interaction_id=result.interaction_id, user_ref="cli:local", vote=+1)
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

from pipeline.answering.answer import Answerer
from pipeline.answering.result import Answer, Source
from pipeline.core.query import Query
from pipeline.documents.load import Document, load_documents
from pipeline.feedback.memory import FeedbackMemory
from pipeline.loop.jobs import ensure_index
from pipeline.settings import Settings
from storage import repository
from storage.db import Database

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000


@dataclass(frozen=True)
class AskResult:
    interaction_id: int
    answer: Answer


@dataclass(frozen=True)
class VoteResult:
    vote: int
    created: bool
    changed: bool


@runtime_checkable
class AnswerEngine(Protocol):
    """What the service asks of whatever answers: :class:`pipeline.answering.answer.Answerer`, or a canned stand-in
    in tests and load tests (which then holds no indexed passage: ``has_chunk`` is always False)."""

    @property
    def index_version(self) -> str: ...

    def answer(self, question: Query, *, on_partial: Callable[[str], None] | None = None,
               rejected: list | None = None, confirmed: list | None = None) -> Answer: ...

    def has_chunk(self, chunk_id: str | None) -> bool: ...

    def maybe_refresh(self) -> bool: ...

    def refresh(self) -> bool: ...

    def warm_up(self) -> None: ...


@runtime_checkable
class Service(Protocol):
    """What the front ends (the Telegram bot, the terminal chat) ask of the service: :class:`Oraculo`, or the
    fake of the bot's tests (``tests/fakes/oraculo.py``), which answers with the same dataclasses."""

    settings: Settings

    @property
    def answerer(self) -> AnswerEngine: ...

    def warm_up(self) -> None: ...

    def ask(self, question: str, *, user_ref: str | int, channel: str, chat_ref: str | int | None = None,
            on_partial: Callable[[str], None] | None = None) -> AskResult: ...

    def vote(self, *, interaction_id: int, user_ref: str | int, vote: int,
             chat_ref: str | int | None = None) -> VoteResult: ...

    def comment(self, *, interaction_id: int, user_ref: str | int, comment: str) -> bool: ...

    def forget_user(self, user_ref: str | int) -> bool: ...

    def documents(self) -> list[str]: ...

    def is_admin(self, telegram_user_id: int | None) -> bool: ...

    def user_hash(self, user_ref: str | int) -> str: ...

    def activity(self, *, since: datetime,
                 unanswered: int = 5) -> tuple[dict[str, dict[str, int]], list[tuple[str, int]]]: ...


class Oraculo:
    """Answers questions through the configured strategy and records every interaction and vote."""

    def __init__(self, settings: Settings, *, answerer: AnswerEngine | None = None,
                 database: Database | None = None):
        self.settings = settings
        self.database = database or Database(settings.database_url)
        self._answerer = answerer
        self._lock = threading.Lock()
        self._salt = settings.salt()
        self.memory = FeedbackMemory(self.database, min_similarity=settings.fastpath_min_similarity)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Oraculo":
        """Build the service: bring the database schema to head and make sure an index exists."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        service = cls(settings)
        service.database.upgrade()
        return service

    @property
    def answerer(self) -> AnswerEngine:
        # Models load once per process, on first use, so the CLI and the bot start fast.
        with self._lock:
            if self._answerer is None:
                ensure_index(self.settings)
                self._answerer = Answerer(self.settings)
            return self._answerer

    def warm_up(self) -> None:
        """Load the index and models now, so the first citizen does not wait for them."""
        self.answerer.warm_up()

    def user_hash(self, user_ref: str | int) -> str:
        return repository.hash_user_id(user_ref, salt=self._salt)

    def ask(self, question: str, *, user_ref: str | int, channel: str, chat_ref: str | int | None = None,
            on_partial=None) -> AskResult:
        """Answer one question and log it; raises ValueError on an empty or oversized question.

        ``on_partial(text_so_far)`` sees a generated answer grow (the bot streams it); the logged answer is final.
        """
        question = (question or "").strip()
        if len(question) > MAX_QUESTION_CHARS:
            raise ValueError(f"question longer than {MAX_QUESTION_CHARS} characters")
        answer = self._answer(Query.of(question), on_partial)  # the one Query of this question, handed down
        with self.database.session() as session:
            user = repository.get_or_create_user(session, user_hash=self.user_hash(user_ref))
            interaction = repository.record_interaction(
                session,
                user_id=user.id,
                question=question,
                answer=answer.text,
                sources=logged_sources(answer),
                strategy=answer.strategy,
                abstained=answer.abstained,
                model_version=answer.model_version,
                index_version=answer.index_version,
                latency_ms=answer.latency_ms,
                channel=channel,
                chat_hash=self.user_hash(chat_ref) if chat_ref is not None else None,
            )
            interaction_id = interaction.id
        # The generation's own cost (LLM_BACKEND=openai): engine latency, first piece, tokens; and any fallback.
        extra = "".join(f" llm_{key}={value}" for key, value in (answer.llm_usage or {}).items())
        log.info("answered interaction=%s channel=%s abstained=%s latency_ms=%.0f%s%s", interaction_id, channel,
                 answer.abstained, answer.latency_ms, extra, f" notice={answer.notice}" if answer.notice else "")
        return AskResult(interaction_id=interaction_id, answer=answer)

    def _answer(self, query: Query, on_partial) -> Answer:
        """The 👍 fast path when a near-identical question has a validated answer, else the answerer's, never
        one that citizens disliked for a near-identical question (see pipeline.feedback.memory). Serving versions
        promoted by the nightly job are picked up here first (hot reload)."""
        started = time.perf_counter()
        answerer = self.answerer
        answerer.maybe_refresh()
        recall = self.memory.recall(query, source_ok=lambda source: answerer.has_chunk(source.get("chunk_id")))
        if recall.approved is not None:
            voted = recall.approved
            sources = [Source(**{k: src.get(k, "" if k != "score" else 0.0) for k in
                                 ("document", "title", "section", "chunk_id", "quote", "score")},
                              page=int(src.get("page") or 0))
                       for src in voted.sources]
            log.info("fast path: answer of interaction %s", voted.interaction_id)
            return Answer(text=voted.answer, sources=sources, strategy="fastpath", abstained=False,
                          model_version=f"fastpath:{voted.interaction_id}", index_version=answerer.index_version,
                          latency_ms=round((time.perf_counter() - started) * 1000, 1))
        return answerer.answer(query, on_partial=on_partial, rejected=recall.rejected or None,
                               confirmed=recall.confirmed or None)

    def vote(self, *, interaction_id: int, user_ref: str | int, vote: int,
             chat_ref: str | int | None = None) -> VoteResult:
        """Store 👍 (+1) or 👎 (-1); a second vote by the same user updates the same row.

        With ``chat_ref`` (the chat the button was pressed in), a vote on an answer given in another chat
        raises PermissionError and changes nothing: forged callback data.
        """
        with self.database.session() as session:
            if chat_ref is not None:
                interaction = repository.get_interaction(session, interaction_id=interaction_id)
                if interaction is None:
                    raise LookupError(f"no interaction {interaction_id}")
                if interaction.chat_hash is not None and interaction.chat_hash != self.user_hash(chat_ref):
                    raise PermissionError(f"interaction {interaction_id} belongs to another chat")
            user = repository.get_or_create_user(session, user_hash=self.user_hash(user_ref))
            previous = repository.get_feedback(session, interaction_id=interaction_id, user_id=user.id)
            before = previous.vote if previous is not None else None
            feedback, created = repository.record_feedback(
                session, interaction_id=interaction_id, user_id=user.id, vote=vote)
            result = VoteResult(vote=feedback.vote, created=created, changed=before is not None and before != vote)
        log.info("feedback interaction=%s vote=%+d created=%s", interaction_id, vote, result.created)
        return result

    def comment(self, *, interaction_id: int, user_ref: str | int, comment: str) -> bool:
        """Attach a comment to this user's vote on an interaction; False when there is no vote."""
        with self.database.session() as session:
            user = repository.get_or_create_user(session, user_hash=self.user_hash(user_ref))
            return repository.set_feedback_comment(
                session, interaction_id=interaction_id, user_id=user.id, comment=comment.strip()[:2000]) is not None

    def forget_user(self, user_ref: str | int) -> bool:
        """LGPD erasure: delete this user with their questions and feedback; False when nothing was stored."""
        with self.database.session() as session:
            return repository.delete_user(session, user_hash=self.user_hash(user_ref))

    def activity(self, *, since: datetime,
                 unanswered: int = 5) -> tuple[dict[str, dict[str, int]], list[tuple[str, int]]]:
        """Questions, answers and votes per day since ``since``, and the most asked questions left unanswered."""
        with self.database.session() as session:
            return (repository.activity_by_day(session, since=since),
                    repository.top_unanswered(session, since=since, limit=unanswered))

    def documents(self) -> list[str]:
        """Titles of the documents the bot knows about."""
        return [doc.title for doc in self.loaded_documents()]

    def loaded_documents(self) -> list[Document]:
        return load_documents(Path(self.settings.documents_dir), ocr=self.settings.documents_ocr)

    def is_admin(self, telegram_user_id: int | None) -> bool:
        return telegram_user_id is not None and telegram_user_id in self.settings.admin_id_set


def logged_sources(answer: Answer) -> list[dict]:
    """The sources an interaction logs: the answer's, or for an abstention that quoted the closest passage,
    that passage marked ``closest`` (a vote on it says whether it answers: see :mod:`pipeline.feedback.memory`)."""
    if answer.abstained:
        return [{**source_to_dict(answer.closest), "closest": True}] if answer.closest is not None else []
    return [source_to_dict(s) for s in answer.sources]


def source_to_dict(source) -> dict:
    out = {
        "document": source.document,
        "title": source.title,
        "section": source.section,
        "chunk_id": source.chunk_id,
        "quote": source.quote,
        "score": round(float(source.score), 4),
    }
    if getattr(source, "page", 0):  # the page of a PDF passage, cited as "p. 4"
        out["page"] = int(source.page)
    if getattr(source, "span", None):  # where the answer itself is (the nightly reader training uses it)
        out["span"] = [int(source.span[0]), int(source.span[1])]
    return out
