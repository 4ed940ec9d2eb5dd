"""Oráculo's tables as SQLAlchemy 2.0 typed models.

The schema itself is created only by the Alembic migrations in the repository's top-level `alembic/`
(see `storage.migrate`); these classes describe it for the ORM and for autogenerate. Every datetime is
timezone-aware UTC, on SQLite as on PostgreSQL.

Example::

    >>> from storage.models import Base, Feedback, utcnow
    >>> sorted(Base.metadata.tables)
    ['feedback', 'index_versions', 'interactions', 'training_runs', 'users']
    >>> utcnow().tzinfo is not None
    True
    >>> Feedback(vote=1).vote
    1
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Explicit constraint names: Alembic can only drop or alter what it can name, and SQLite batch mode needs them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# "interrupted": the process died without closing its run (kill -9, power cut), found at the next start.
TRAINING_STATUSES = ("running", "succeeded", "failed", "interrupted")
HASH_LENGTH = 64  # hex digest of HMAC-SHA256


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def as_utc(moment: datetime | None) -> datetime | None:
    """Aware UTC; a naive datetime is taken as UTC (what the database would do with it anyway)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """A `DateTime(timezone=True)` that always stores UTC and always returns aware UTC datetimes.

    SQLite has no time zone support and hands back naive values; naive input is taken as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
        # SQLite's DATETIME drops the offset silently; make that explicit.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    """A person who talked to Oráculo, known only by a salted hash of their Telegram id."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    interactions: Mapped[list[Interaction]] = relationship(back_populates="user", passive_deletes=True)
    feedback: Mapped[list[Feedback]] = relationship(back_populates="user", passive_deletes=True)

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, user_hash={self.user_hash[:8] if self.user_hash else None!r}...)"


class Interaction(Base):
    """One question and the answer Oráculo gave, with what produced it."""

    __tablename__ = "interactions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(32))  # 'telegram' | 'cli' | ...
    chat_hash: Mapped[str | None] = mapped_column(String(HASH_LENGTH))
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    strategy: Mapped[str] = mapped_column(String(32))
    abstained: Mapped[bool] = mapped_column(default=False)
    model_version: Mapped[str] = mapped_column(String(255))
    index_version: Mapped[str] = mapped_column(String(255))
    latency_ms: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)

    user: Mapped[User | None] = relationship(back_populates="interactions")
    feedback: Mapped[list[Feedback]] = relationship(
        back_populates="interaction", passive_deletes=True, order_by="Feedback.id"
    )

    def __repr__(self) -> str:
        return f"Interaction(id={self.id!r}, channel={self.channel!r}, abstained={self.abstained!r})"


class Feedback(Base):
    """A 👍 (+1) or 👎 (-1) of one user on one interaction; a change of mind updates the same row."""

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("interaction_id", "user_id"),
        CheckConstraint("vote IN (-1, 1)", name="vote"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interactions.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    vote: Mapped[int] = mapped_column(SmallInteger)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    interaction: Mapped[Interaction] = relationship(back_populates="feedback")
    user: Mapped[User] = relationship(back_populates="feedback")

    def __repr__(self) -> str:
        return f"Feedback(id={self.id!r}, interaction_id={self.interaction_id!r}, vote={self.vote!r})"


class TrainingRun(Base):
    """One fine-tuning run: what went in, what came out, how long it took and what it cost."""

    __tablename__ = "training_runs"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'succeeded', 'failed', 'interrupted')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="running")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    duration_s: Mapped[float | None] = mapped_column(Float)
    base_model: Mapped[str] = mapped_column(String(255))
    adapter_path: Mapped[str | None] = mapped_column(String(1024))
    data_hash: Mapped[str | None] = mapped_column(String(128))
    n_examples: Mapped[int | None] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    gpu_hourly_usd: Mapped[float | None] = mapped_column(Float)
    usd_brl: Mapped[float | None] = mapped_column(Float)
    usd_brl_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cost_usd: Mapped[float | None] = mapped_column(Float)
    cost_brl: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    # Who runs it and when it last said so: a 'running' row whose process is gone is stale.
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"TrainingRun(id={self.id!r}, status={self.status!r}, base_model={self.base_model!r})"


class IndexVersion(Base):
    """One built search index version (pipeline/search/index.py): what it holds and whether it is the one serving."""

    __tablename__ = "index_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    embedding_model: Mapped[str] = mapped_column(String(1024))
    content_hash: Mapped[str] = mapped_column(String(128))
    n_chunks: Mapped[int] = mapped_column(Integer)
    n_questions: Mapped[int] = mapped_column(Integer)
    n_embedded: Mapped[int] = mapped_column(Integer)
    build_s: Mapped[float] = mapped_column(Float)
    is_current: Mapped[bool] = mapped_column(default=False)
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    def __repr__(self) -> str:
        return f"IndexVersion(version={self.version!r}, is_current={self.is_current!r})"
