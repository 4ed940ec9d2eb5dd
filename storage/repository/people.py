"""Users, their questions and their votes: reads and writes of the users, interactions and feedback tables.

Users are stored as a salted HMAC of their Telegram id, never the id. Part of :mod:`storage.repository`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, delete, func, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from storage.models import (
    HASH_LENGTH,
    Feedback,
    Interaction,
    User,
    as_utc,
    utcnow,
)

VOTES = (1, -1)


# -- users ------------------------------------------------------------------------------------------------
def hash_user_id(raw_id: int | str, *, salt: bytes) -> str:
    """HMAC-SHA256 of a Telegram (or other) id, hex; the same id and salt always give the same hash."""
    if not salt:
        raise ValueError("salt must not be empty: an unsalted hash of a Telegram id is easy to reverse")
    if isinstance(raw_id, bool) or not isinstance(raw_id, (int, str)) or str(raw_id) == "":
        raise ValueError(f"raw_id must be a non-empty int or str, got {raw_id!r}")
    return hmac.new(salt, str(raw_id).encode(), hashlib.sha256).hexdigest()


def _check_hash(value: str, what: str) -> None:
    if not isinstance(value, str) or not value or len(value) > HASH_LENGTH:
        raise ValueError(f"{what} must be a non-empty string of at most {HASH_LENGTH} chars (use hash_user_id)")


def _insert_ignoring_conflict(session: Session, model: type, values: dict[str, Any],
                              conflict_columns: Sequence[str]) -> bool:
    """INSERT that does nothing when a unique key already exists; True when a row was inserted.

    Race-safe without savepoints on SQLite and PostgreSQL (ON CONFLICT DO NOTHING); elsewhere a savepoint
    catches the IntegrityError.
    """
    dialect = session.get_bind().dialect.name
    if dialect in {"sqlite", "postgresql"}:
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        # RETURNING, not rowcount: psycopg reports -1 for an INSERT that returns the generated key.
        primary_key = sa_inspect(model).primary_key[0]
        statement = (insert(model).values(**values)
                     .on_conflict_do_nothing(index_elements=list(conflict_columns)).returning(primary_key))
        return session.execute(statement).first() is not None
    try:
        with session.begin_nested():
            session.add(model(**values))
        return True
    except IntegrityError:
        return False


def get_user(session: Session, *, user_hash: str) -> User | None:
    return session.scalars(select(User).where(User.user_hash == user_hash)).one_or_none()


def get_or_create_user(session: Session, *, user_hash: str) -> User:
    """The user with this hash, created when new; two concurrent first messages make one row."""
    _check_hash(user_hash, "user_hash")
    user = get_user(session, user_hash=user_hash)
    if user is not None:
        return user
    _insert_ignoring_conflict(session, User, {"user_hash": user_hash, "created_at": utcnow()}, ["user_hash"])
    user = get_user(session, user_hash=user_hash)
    if user is None:  # pragma: no cover - would mean the unique constraint is gone
        raise RuntimeError("user row vanished right after insert")
    return user


def delete_user(session: Session, *, user_hash: str) -> bool:
    """Forget a user and, by ON DELETE CASCADE, their interactions and feedback (LGPD erasure)."""
    result = session.execute(delete(User).where(User.user_hash == user_hash))
    session.expire_all()  # cascaded rows may sit in the identity map
    return result.rowcount > 0


# -- interactions -----------------------------------------------------------------------------------------
def record_interaction(session: Session, *, user_id: int | None, question: str, answer: str,
                       sources: Sequence[Mapping[str, Any]], strategy: str, abstained: bool,
                       model_version: str, index_version: str, latency_ms: float, channel: str,
                       chat_hash: str | None = None) -> Interaction:
    """Log one question and its answer; `sources` is a list of JSON-serialisable dicts."""
    if not isinstance(sources, Sequence) or isinstance(sources, (str, bytes)) or not all(
        isinstance(s, Mapping) for s in sources
    ):
        raise TypeError("sources must be a list of dicts")
    if chat_hash is not None:
        _check_hash(chat_hash, "chat_hash")
    if not channel:
        raise ValueError("channel must be set (e.g. 'telegram', 'cli')")
    interaction = Interaction(
        user_id=user_id, channel=channel, chat_hash=chat_hash, question=question, answer=answer,
        sources=[dict(s) for s in sources], strategy=strategy, abstained=bool(abstained),
        model_version=model_version, index_version=index_version, latency_ms=float(latency_ms),
        created_at=utcnow(),
    )
    session.add(interaction)
    session.flush()  # assign the id the feedback buttons carry
    return interaction


def get_interaction(session: Session, *, interaction_id: int) -> Interaction | None:
    return session.get(Interaction, interaction_id)


# -- feedback ---------------------------------------------------------------------------------------------
def get_feedback(session: Session, *, interaction_id: int, user_id: int) -> Feedback | None:
    """This user's feedback on this interaction, if any (e.g. to tell a new vote from a changed one)."""
    statement = select(Feedback).where(Feedback.interaction_id == interaction_id, Feedback.user_id == user_id)
    return session.scalars(statement.execution_options(populate_existing=True)).one_or_none()


def _clean_comment(comment: str | None) -> str | None:
    if comment is None:
        return None
    comment = comment.strip()
    return comment or None


def record_feedback(session: Session, *, interaction_id: int, user_id: int, vote: int,
                    comment: str | None = None) -> tuple[Feedback, bool]:
    """Record a 👍 (+1) or 👎 (-1); a second vote by the same user updates the same row.

    Returns (feedback, created). A comment of None keeps the comment already there.
    Raises ValueError for any other vote and LookupError for an unknown interaction or user.
    """
    if isinstance(vote, bool) or vote not in VOTES:
        raise ValueError(f"vote must be +1 or -1, got {vote!r}")
    if session.get(Interaction, interaction_id) is None:
        raise LookupError(f"no interaction {interaction_id}")
    if session.get(User, user_id) is None:
        raise LookupError(f"no user {user_id}")
    comment = _clean_comment(comment)

    feedback = get_feedback(session, interaction_id=interaction_id, user_id=user_id)
    if feedback is None:
        now = utcnow()
        inserted = _insert_ignoring_conflict(
            session, Feedback,
            {"interaction_id": interaction_id, "user_id": user_id, "vote": vote, "comment": comment,
             "created_at": now, "updated_at": now},
            ["interaction_id", "user_id"],
        )
        feedback = get_feedback(session, interaction_id=interaction_id, user_id=user_id)
        if feedback is None:  # pragma: no cover - would mean the unique constraint is gone
            raise RuntimeError("feedback row vanished right after insert")
        if inserted:
            return feedback, True
    # A change of mind, a repeated press, or a concurrent first press that lost the race: last one wins.
    if feedback.vote != vote or (comment is not None and feedback.comment != comment):
        feedback.vote = vote
        if comment is not None:
            feedback.comment = comment
        feedback.updated_at = utcnow()
        session.flush()
    return feedback, False


def set_feedback_comment(session: Session, *, interaction_id: int, user_id: int,
                         comment: str) -> Feedback | None:
    """Attach a comment to this user's existing vote; None when they have not voted on it."""
    feedback = get_feedback(session, interaction_id=interaction_id, user_id=user_id)
    if feedback is None:
        return None
    feedback.comment = _clean_comment(comment)
    feedback.updated_at = utcnow()
    session.flush()
    return feedback


# -- statistics -------------------------------------------------------------------------------------------
def activity_by_day(session: Session, *, since: datetime) -> dict[str, dict[str, int]]:
    """Per UTC day ('YYYY-MM-DD') since `since`: questions, answered (not abstained), 👍 up and 👎 down on answers,
    and passage_up / passage_down: the votes on the closest passage an abstention quoted (does it answer?)."""
    since = as_utc(since)
    days: dict[str, dict[str, int]] = {}

    def row(day: Any) -> dict[str, int]:
        return days.setdefault(str(day)[:10], {"questions": 0, "answered": 0, "up": 0, "down": 0,
                                               "passage_up": 0, "passage_down": 0})

    asked = (select(func.date(Interaction.created_at), func.count(),
                    func.sum(case((Interaction.abstained.is_(False), 1), else_=0)))
             .where(Interaction.created_at >= since).group_by(func.date(Interaction.created_at)))
    for day, questions, answered in session.execute(asked):
        row(day).update(questions=int(questions), answered=int(answered or 0))

    def counted(vote, abstained: bool):
        return func.sum(case((and_(vote, Interaction.abstained.is_(abstained)), 1), else_=0))

    votes = (select(func.date(Feedback.created_at), counted(Feedback.vote > 0, False),
                    counted(Feedback.vote < 0, False), counted(Feedback.vote > 0, True),
                    counted(Feedback.vote < 0, True))
             .join(Interaction, Feedback.interaction_id == Interaction.id)
             .where(Feedback.created_at >= since).group_by(func.date(Feedback.created_at)))
    for day, up, down, passage_up, passage_down in session.execute(votes):
        row(day).update(up=int(up or 0), down=int(down or 0), passage_up=int(passage_up or 0),
                        passage_down=int(passage_down or 0))
    return dict(sorted(days.items()))


def top_unanswered(session: Session, *, since: datetime, limit: int = 5) -> list[tuple[str, int]]:
    """The questions most often left without an answer since `since`, (question, times), case-folded."""
    key = func.lower(Interaction.question)
    statement = (select(func.min(Interaction.question), func.count().label("n"))
                 .where(Interaction.abstained.is_(True), Interaction.created_at >= as_utc(since))
                 .group_by(key).order_by(func.count().desc(), func.min(Interaction.question)).limit(limit))
    return [(question, int(n)) for question, n in session.execute(statement)]


# -- training runs ----------------------------------------------------------------------------------------


def voted_interactions(session: Session) -> Iterator[tuple[Interaction, int, int]]:
    """Every interaction that received a vote, oldest first, with its 👍 and 👎 counts (feedback loaded)."""
    statement = (select(Interaction).where(Interaction.feedback.any())
                 .options(selectinload(Interaction.feedback)).order_by(Interaction.id))
    for interaction in session.scalars(statement):
        yield (interaction, sum(1 for f in interaction.feedback if f.vote > 0),
               sum(1 for f in interaction.feedback if f.vote < 0))


def feedback_signature(session: Session) -> tuple[int, str]:
    """How many votes there are and when the last one changed: a cheap test of whether any vote moved."""
    count, latest = session.execute(select(func.count(Feedback.id), func.max(Feedback.updated_at))).one()
    return count, str(latest)
