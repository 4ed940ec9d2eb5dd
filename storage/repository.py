"""Repository functions: the only code that reads and writes Oráculo's tables.

Every function takes a Session first and keyword-only arguments after it; none commits (the caller's
`Database.session()` block does). Users are stored as a salted HMAC of their Telegram id, never the id.

Example::

    >>> import tempfile, pathlib
    >>> from storage.db import Database
    >>> from storage import repository as repo
    >>> db = Database(f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'o.db'}")
    >>> db.upgrade()
    >>> with db.session() as s:
    ...     user = repo.get_or_create_user(s, user_hash=repo.hash_user_id(42, salt=b"pepper"))
    ...     it = repo.record_interaction(s, user_id=user.id, question="Qual o prazo?", answer="30 dias.",
    ...         sources=[{"document": "edital", "chunk_id": "edital:0-90"}], strategy="extractive",
    ...         abstained=False, model_version="m1", index_version="i1", latency_ms=12.5, channel="cli")
    ...     first = repo.record_feedback(s, interaction_id=it.id, user_id=user.id, vote=1)
    ...     again = repo.record_feedback(s, interaction_id=it.id, user_id=user.id, vote=-1)
    >>> first[1], again[1], again[0].vote, again[0].id == first[0].id
    (True, False, -1, True)
    >>> db.dispose()
"""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, case, delete, func, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import (
    HASH_LENGTH,
    TRAINING_STATUSES,
    Feedback,
    IndexVersion,
    Interaction,
    TrainingRun,
    User,
    utcnow,
)

VOTES = (1, -1)
FINISHED_STATUSES = tuple(s for s in TRAINING_STATUSES if s not in ("running", "interrupted"))
# A running row with no sign of life for this long, from a process this machine cannot check, is stale.
# Training processes beat every HEARTBEAT_S (pipeline/training/runs.py), so this is many missed beats.
HEARTBEAT_S = 60.0
STALE_AFTER_S = 15 * 60.0


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
    since = _as_utc(since)
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
                 .where(Interaction.abstained.is_(True), Interaction.created_at >= _as_utc(since))
                 .group_by(key).order_by(func.count().desc(), func.min(Interaction.question)).limit(limit))
    return [(question, int(n)) for question, n in session.execute(statement)]


# -- training runs ----------------------------------------------------------------------------------------
def _as_utc(moment: datetime | None) -> datetime | None:
    """Aware UTC; a naive datetime is taken as UTC (what the database would do with it anyway)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def create_training_run(session: Session, *, base_model: str, data_hash: str | None = None,
                        n_examples: int | None = None, gpu_hourly_usd: float | None = None,
                        started_at: datetime | None = None) -> TrainingRun:
    """Open a run in status 'running', owned by this process (host, pid); finish it with finish_training_run.

    Runs left 'running' by a dead process are marked 'interrupted' first (interrupt_stale_training_runs).
    """
    if not base_model:
        raise ValueError("base_model must be set")
    interrupt_stale_training_runs(session)
    started = _as_utc(started_at) or utcnow()
    run = TrainingRun(status="running", base_model=base_model, data_hash=data_hash, n_examples=n_examples,
                      gpu_hourly_usd=gpu_hourly_usd, started_at=started, host=socket.gethostname()[:255],
                      pid=os.getpid(), heartbeat_at=started)
    session.add(run)
    session.flush()
    return run


def beat_training_run(session: Session, *, run_id: int, at: datetime | None = None) -> None:
    """Record that the run's process is alive (its heartbeat); a finished run is left as it is."""
    run = session.get(TrainingRun, run_id)
    if run is not None and run.status == "running":
        run.heartbeat_at = _as_utc(at) or utcnow()
        session.flush()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def interrupt_stale_training_runs(session: Session, *, now: datetime | None = None, host: str | None = None,
                                  pid_alive=_pid_alive, stale_after_s: float = STALE_AFTER_S) -> list[TrainingRun]:
    """Mark 'interrupted' the running rows whose process is gone, and cost them for the time they ran.

    On this host a row is stale when its pid is no longer alive; a row of another host (or without a pid)
    when its last heartbeat is older than ``stale_after_s``. The time it ran is up to its last heartbeat
    (at most HEARTBEAT_S short); cost_usd follows from its GPU price, cost_brl is left unknown (no quote here).
    """
    now = _as_utc(now) or utcnow()
    host = host or socket.gethostname()[:255]
    stale = []
    for run in session.scalars(select(TrainingRun).where(TrainingRun.status == "running")):
        last = _as_utc(run.heartbeat_at) or _as_utc(run.started_at)
        if run.host == host and run.pid is not None:  # this machine can ask the process itself
            gone = run.pid != os.getpid() and not pid_alive(run.pid)
        else:
            gone = (now - last).total_seconds() > stale_after_s
        if not gone:
            continue
        run.status = "interrupted"
        run.finished_at = last
        run.duration_s = max(0.0, (last - _as_utc(run.started_at)).total_seconds())
        run.error = (f"interrupted: process {run.pid} on {run.host} stopped without closing the run (last sign "
                     f"of life {last.isoformat(timespec='seconds')}; found {now.isoformat(timespec='seconds')})")
        if run.gpu_hourly_usd is not None:
            run.cost_usd = run.duration_s / 3600.0 * run.gpu_hourly_usd
            run.cost_brl = run.cost_usd * run.usd_brl if run.usd_brl is not None else None
        stale.append(run)
    if stale:
        session.flush()
    return stale


def finish_training_run(session: Session, *, run_id: int, status: str, finished_at: datetime | None = None,
                        adapter_path: str | None = None, metrics: Mapping[str, Any] | None = None,
                        n_examples: int | None = None, gpu_hourly_usd: float | None = None,
                        usd_brl: float | None = None, usd_brl_at: datetime | None = None,
                        cost_usd: float | None = None, cost_brl: float | None = None,
                        error: str | None = None) -> TrainingRun:
    """Close a running run as 'succeeded' or 'failed', with its duration and cost.

    Unless given, cost_usd = duration x gpu_hourly_usd and cost_brl = cost_usd x usd_brl (when known).
    Raises LookupError for an unknown run and ValueError for a bad status or an already finished run.
    """
    if status not in FINISHED_STATUSES:
        raise ValueError(f"status must be one of {FINISHED_STATUSES}, got {status!r}")
    run = session.get(TrainingRun, run_id)
    if run is None:
        raise LookupError(f"no training run {run_id}")
    # 'interrupted' was a guess from outside (no heartbeat for a while): the process itself has the last word.
    if run.status not in ("running", "interrupted"):
        raise ValueError(f"training run {run_id} already finished ({run.status})")
    run.status = status
    run.finished_at = _as_utc(finished_at) or utcnow()
    run.duration_s = max(0.0, (run.finished_at - _as_utc(run.started_at)).total_seconds())
    for name, value in (("adapter_path", adapter_path), ("n_examples", n_examples),
                        ("gpu_hourly_usd", gpu_hourly_usd), ("usd_brl", usd_brl),
                        ("usd_brl_at", _as_utc(usd_brl_at)), ("error", error)):
        if value is not None:
            setattr(run, name, value)
    if metrics is not None:
        run.metrics = dict(metrics)
    if cost_usd is None and run.gpu_hourly_usd is not None:
        cost_usd = run.duration_s / 3600.0 * run.gpu_hourly_usd
    run.cost_usd = cost_usd
    if cost_brl is None and cost_usd is not None and run.usd_brl is not None:
        cost_brl = cost_usd * run.usd_brl
    run.cost_brl = cost_brl
    session.flush()
    return run


def get_training_run(session: Session, *, run_id: int) -> TrainingRun | None:
    return session.get(TrainingRun, run_id)


def list_training_runs(session: Session, *, limit: int = 20, status: str | None = None) -> list[TrainingRun]:
    """The newest runs first, optionally only those in `status`."""
    statement = select(TrainingRun).order_by(TrainingRun.started_at.desc(), TrainingRun.id.desc()).limit(limit)
    if status is not None:
        statement = statement.where(TrainingRun.status == status)
    return list(session.scalars(statement))


def training_cost_between(session: Session, *, since: datetime, until: datetime) -> dict[str, Any]:
    """The cost of the runs started in ``[since, until)``, added up by the database: how many, USD and BRL totals,
    and the ids of the finished runs without a BRL cost, of those that cost dollars but have no rate, and of
    the interrupted ones."""
    window = (TrainingRun.started_at >= since) & (TrainingRun.started_at < until)
    runs, usd, brl = session.execute(
        select(func.count(TrainingRun.id), func.coalesce(func.sum(TrainingRun.cost_usd), 0.0),
               func.coalesce(func.sum(TrainingRun.cost_brl), 0.0)).where(window)).one()
    finished_without_brl = window & (TrainingRun.status != "running") & TrainingRun.cost_brl.is_(None)

    def ids(condition) -> list[int]:
        return list(session.scalars(select(TrainingRun.id).where(condition).order_by(TrainingRun.id)))

    return {"runs": int(runs), "usd": float(usd), "brl": float(brl),
            "without_brl": ids(finished_without_brl),
            "without_rate": ids(finished_without_brl & (func.coalesce(TrainingRun.cost_usd, 0.0) > 0)),
            "interrupted": ids(window & (TrainingRun.status == "interrupted"))}


def record_index_version(session: Session, *, version: str, embedding_model: str, content_hash: str,
                         n_chunks: int, n_questions: int, n_embedded: int, build_s: float,
                         meta: Mapping[str, Any] | None = None, current: bool = True) -> IndexVersion:
    """Record a built index version; with ``current`` it becomes the only current one."""
    if current:
        for row in session.scalars(select(IndexVersion).where(IndexVersion.is_current.is_(True))):
            row.is_current = False
    row = IndexVersion(version=version, embedding_model=embedding_model, content_hash=content_hash,
                       n_chunks=n_chunks, n_questions=n_questions, n_embedded=n_embedded, build_s=build_s,
                       is_current=current, meta=dict(meta) if meta else None)
    session.add(row)
    session.flush()
    return row


def list_index_versions(session: Session, *, limit: int = 20) -> list[IndexVersion]:
    """The most recent index versions, newest first."""
    return list(session.scalars(select(IndexVersion).order_by(IndexVersion.id.desc()).limit(limit)))


def current_index_version(session: Session) -> IndexVersion | None:
    return session.scalars(select(IndexVersion).where(IndexVersion.is_current.is_(True))).first()
