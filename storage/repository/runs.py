"""Training runs and index versions: reads and writes of the training_runs and index_versions tables.

A training process beats every :data:`HEARTBEAT_S`; a run row left 'running' by a process that died is marked
'interrupted' by the next start. Part of :mod:`storage.repository`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import TRAINING_STATUSES, IndexVersion, TrainingRun, as_utc, utcnow

FINISHED_STATUSES = tuple(s for s in TRAINING_STATUSES if s not in ("running", "interrupted"))
# A running row with no sign of life for this long, from a process this machine cannot check, is stale.
# Training processes beat every HEARTBEAT_S (pipeline/training/runs.py), so this is many missed beats.
HEARTBEAT_S = 60.0
STALE_AFTER_S = 15 * 60.0


def create_training_run(session: Session, *, base_model: str, data_hash: str | None = None,
                        n_examples: int | None = None, gpu_hourly_usd: float | None = None,
                        started_at: datetime | None = None) -> TrainingRun:
    """Open a run in status 'running', owned by this process (host, pid); finish it with finish_training_run.

    Runs left 'running' by a dead process are marked 'interrupted' first (interrupt_stale_training_runs).
    """
    if not base_model:
        raise ValueError("base_model must be set")
    interrupt_stale_training_runs(session)
    started = as_utc(started_at) or utcnow()
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
        run.heartbeat_at = as_utc(at) or utcnow()
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
    now = as_utc(now) or utcnow()
    host = host or socket.gethostname()[:255]
    stale = []
    for run in session.scalars(select(TrainingRun).where(TrainingRun.status == "running")):
        last = as_utc(run.heartbeat_at) or as_utc(run.started_at)
        if run.host == host and run.pid is not None:  # this machine can ask the process itself
            gone = run.pid != os.getpid() and not pid_alive(run.pid)
        else:
            gone = (now - last).total_seconds() > stale_after_s
        if not gone:
            continue
        run.status = "interrupted"
        run.finished_at = last
        run.duration_s = max(0.0, (last - as_utc(run.started_at)).total_seconds())
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
    run.finished_at = as_utc(finished_at) or utcnow()
    run.duration_s = max(0.0, (run.finished_at - as_utc(run.started_at)).total_seconds())
    for name, value in (("adapter_path", adapter_path), ("n_examples", n_examples),
                        ("gpu_hourly_usd", gpu_hourly_usd), ("usd_brl", usd_brl),
                        ("usd_brl_at", as_utc(usd_brl_at)), ("error", error)):
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
