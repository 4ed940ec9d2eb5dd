"""Admin commands (/retrain, /reindex, /cost, /stats), for the Telegram ids in ``ADMIN_IDS`` only.

Anyone else gets a polite refusal and the attempt is logged (with the salted hash, never the raw id).
/retrain and /reindex acknowledge at once and run their steps in one dedicated worker thread, so the event
loop and the citizens' answers never wait for them; the report (steps, duration, metrics, cost) is sent to
the admin's chat when they end. One job at a time per process.

The steps are looked up in ``application.bot_data[JOBS_KEY]`` (``{"retrain": f, "reindex": f}``, each
``f(service) -> [(name, callable), ...]``), so tests can run quick ones; the defaults are the real jobs.

Example::

    from bot.telegram.admin import register_admin_handlers, run_steps
    register_admin_handlers(application)                      # done by bot.telegram.app.build_application
    report = run_steps([("índice", lambda: index_job(settings))])
    print(report.ok, report.duration_s, report.steps)
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes, filters

from bot import admin_texts, texts
from bot.telegram.charts import SERIES, activity_chart, fill_days
from pipeline.loop import jobs
from pipeline.loop.nightly import is_running, retrain_job
from pipeline.service import Service
from pipeline.training.cost import cost_report

log = logging.getLogger(__name__)

JOBS_KEY = "admin_jobs"
_RUNNING_KEY = "admin_job_running"
_EXECUTOR_KEY = "admin_executor"
STATS_DAYS = 14
Step = tuple[str, Callable[[], Any]]


@dataclass
class JobReport:
    ok: bool
    duration_s: float
    steps: list[tuple[str, str]] = field(default_factory=list)  # (step name, short result)
    error: str | None = None


def describe(result: Any) -> str:
    """A one-line summary of what a pipeline step returned (index info, training metadata, counts)."""
    if result is None:
        return "ok"
    if hasattr(result, "steps") and hasattr(result, "promoted"):  # pipeline.loop.nightly.RetrainReport
        return "\n".join(f"{name}: {detail}" for name, detail in admin_texts.retrain_step_lines(result))
    if hasattr(result, "n_chunks"):
        return f"versão {result.version}: {result.n_chunks} trechos, {result.n_questions} perguntas"
    if isinstance(result, dict):
        metrics, cost = result.get("metrics") or {}, result.get("cost") or {}
        parts = [f"versão {result['version']}"] if "version" in result else []
        if metrics.get("val_loss") is not None:
            parts.append(f"perda de validação {metrics['val_loss']:.3f}")
        if metrics.get("steps") is not None:
            parts.append(f"{metrics['steps']} passos")
        if cost.get("usd") is not None:
            brl = f" = R$ {cost['brl']:.2f}" if cost.get("brl") is not None else ""
            parts.append(f"custo US$ {cost['usd']:.4f}{brl}")
        return ", ".join(parts) if parts else str(result)[:200]
    if isinstance(result, (list, tuple)):
        return f"{len(result)} itens"
    return str(result)[:200]


def run_steps(steps: list[Step]) -> JobReport:
    """Run the steps in order, stopping at the first failure; never raises."""
    started = time.perf_counter()
    done: list[tuple[str, str]] = []
    for name, step in steps:
        try:
            done.append((name, describe(step())))
        except Exception as exc:  # the admin gets the error; the bot keeps running
            log.exception("admin job step %r failed", name)
            return JobReport(False, time.perf_counter() - started, done, f"{name}: {type(exc).__name__}: {exc}")
    return JobReport(True, time.perf_counter() - started, done)


def _refresh_step(service: Service) -> Step:
    def refresh() -> str:
        switched = service.answerer.refresh()
        return "novo índice em uso" if switched else "índice já era o atual"

    return ("ativar", refresh)


def reindex_steps(service: Service) -> list[Step]:
    """Rebuild the index from the documents and QA records, then serve it."""
    return [("índice", functools.partial(jobs.index_job, service.settings)), _refresh_step(service)]


def retrain_steps(service: Service) -> list[Step]:
    """The nightly job (it chains export, index, training, evaluation and promotion itself), then serve."""
    return [("retreino", functools.partial(retrain_job, service.settings, trigger="admin")), _refresh_step(service)]


def _retrain_running(bot_data) -> bool:
    """Whether the nightly job's lock (pipeline/loop/nightly.py, one per data directory) is held."""
    service = bot_data.get("service")
    return service is not None and is_running(service.settings)


# --- guard --------------------------------------------------------------------------------------------

def admin_only(handler):
    """Run ``handler`` for admins; refuse politely and log the attempt for anyone else."""
    @functools.wraps(handler)
    async def guarded(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        service = context.application.bot_data["service"]
        user = update.effective_user
        if user is None or not service.is_admin(user.id):
            who = service.user_hash(user.id)[:12] if user is not None else "?"
            log.warning("refused admin command %r from user %s", (update.effective_message.text or "")[:32], who)
            await update.effective_message.reply_text(texts.ADMIN_ONLY)
            return
        log.info("admin command %r", (update.effective_message.text or "")[:32])
        await handler(update, context)

    return guarded


# --- commands -----------------------------------------------------------------------------------------

async def _start_job(update: Update, context: ContextTypes.DEFAULT_TYPE, kind: str, title: str, ack: str) -> None:
    bot_data = context.application.bot_data
    running: threading.Lock = bot_data.setdefault(_RUNNING_KEY, threading.Lock())
    if not running.acquire(blocking=False):
        await update.effective_message.reply_text(admin_texts.RETRAIN_BUSY)
        return
    if kind == "retrain" and _retrain_running(bot_data):  # the scheduled run, or another process's
        running.release()
        await update.effective_message.reply_text(admin_texts.RETRAIN_BUSY)
        return
    try:
        steps = bot_data.get(JOBS_KEY, {}).get(kind, {"retrain": retrain_steps, "reindex": reindex_steps}[kind])
        executor = bot_data.setdefault(_EXECUTOR_KEY, ThreadPoolExecutor(1, thread_name_prefix="oraculo-admin"))
        await update.effective_message.reply_text(ack)
    except BaseException:
        running.release()
        raise
    chat_id = update.effective_chat.id

    async def job() -> None:
        try:
            loop = asyncio.get_running_loop()
            report = await loop.run_in_executor(executor, lambda: run_steps(steps(bot_data["service"])))
        finally:
            running.release()
        await context.bot.send_message(chat_id, admin_texts.job_finished(
            title=title, ok=report.ok, duration_s=report.duration_s, steps=report.steps, error=report.error),
            parse_mode="HTML")

    context.application.create_task(job(), update=update, name=f"admin-{kind}")


@admin_only
async def retrain(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/retrain: export feedback, regenerate QA, reindex, train; report at the end."""
    await _start_job(update, context, "retrain", "Retreinamento", admin_texts.RETRAIN_STARTED)


@admin_only
async def reindex(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/reindex: rebuild the index now and serve it."""
    await _start_job(update, context, "reindex", "Reindexação", admin_texts.REINDEX_STARTED)


def cost_summary(service: Service) -> dict:
    """The training costs: the last run and the month's total (pipeline.training.cost)."""
    return cost_report(service.settings)


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@admin_only
async def cost(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/cost: the last training run and the month's total, in USD and BRL, with the exchange rate used."""
    summary = await asyncio.to_thread(cost_summary, context.application.bot_data["service"])
    last = summary.get("last")
    if last is not None:
        last = {**last, "started_at": _parse_time(last["started_at"])}
    month_label = f"{summary['month'][5:7]}/{summary['month'][:4]}"
    await update.effective_message.reply_html(admin_texts.cost_report(
        last=last, month_label=month_label, month_usd=summary["month_usd"], month_brl=summary["month_brl"],
        month_runs=summary["month_runs"], rate=last.get("usd_brl") if last else None,
        rate_at=_parse_time(last.get("usd_brl_at")) if last else None))


def stats_summary(service: Service, *, days: int = STATS_DAYS) -> dict:
    """Per-day activity (gaps filled) and the top unanswered questions of the last ``days`` days."""
    today = datetime.now(timezone.utc).date()
    first = today - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=timezone.utc)
    by_day, unanswered = service.activity(since=since)
    return {"days": fill_days(by_day, first=first, last=today), "unanswered": unanswered}


@admin_only
async def stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/stats: questions, answers and 👍/👎 per day with a PNG chart, and the top unanswered questions."""
    summary = await asyncio.to_thread(stats_summary, context.application.bot_data["service"])
    days = summary["days"]
    totals = {name: sum(d[name] for d in days.values()) for name in SERIES}
    caption = admin_texts.stats_report(days=len(days), unanswered=summary["unanswered"], **totals)
    if not any(totals.values()):
        await update.effective_message.reply_text(admin_texts.STATS_EMPTY)
        return
    png = await asyncio.to_thread(activity_chart, days)
    await update.effective_message.reply_photo(png, caption=caption, parse_mode="HTML",
                                               filename="oraculo-estatisticas.png")


def register_admin_handlers(application: Application) -> None:
    """Wire the admin commands; they must come before the catch-all 'unknown command' handler."""
    new_message = filters.UpdateType.MESSAGE
    for names, callback in ((["retrain", "retreinar"], retrain), (["reindex", "reindexar"], reindex),
                            (["cost", "custo"], cost), (["stats", "estatisticas"], stats)):
        application.add_handler(CommandHandler(names, callback, filters=new_message))


async def shutdown_admin(application: Application) -> None:
    """Let a running job's thread finish in the background; do not start new ones."""
    executor = application.bot_data.pop(_EXECUTOR_KEY, None)
    if executor is not None:
        executor.shutdown(wait=False, cancel_futures=True)
