"""What a training run cost: wall time x ``GPU_HOURLY_USD`` x the day's USD->BRL tourism quote (AwesomeAPI).

The quote (``USD-BRLT``, the ``ask`` price: what buying dollars costs) is read with ``requests`` and a timeout
and cached with its timestamp in ``DATA_DIR/cache/usd_brlt.json``. When the API is down, answers something
that is not the expected JSON, or a value outside ``SANE_RANGE``, the last cached quote is used, else
``USD_BRL_FALLBACK``; the returned :class:`Quote` says which (``source`` and ``note``), and so does the report.

Example::

    >>> from pipeline.settings import Settings
    >>> from pipeline.training.cost import run_cost
    >>> run_cost(Settings(DATA_DIR="/tmp/oraculo", GPU_HOURLY_USD=0), seconds=3600).brl   # free: no network
    0.0
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pipeline.core.files import atomic_write_text
from pipeline.settings import Settings
from storage import repository

log = logging.getLogger(__name__)

SANE_RANGE = (1.0, 30.0)  # BRL per USD; anything outside is a broken answer, not an exchange rate
# A quote stamped later than now (plus clock skew between us and the API) is broken, never "live".
FUTURE_SKEW_S = 3600.0
CACHE_FILE = "usd_brlt.json"


@dataclass(frozen=True)
class Quote:
    rate: float  # BRL per USD
    at: datetime  # when the quote was made (the API's timestamp), UTC
    source: str  # "live" | "cache" | "fallback"
    note: str = ""  # why it is not live


@dataclass(frozen=True)
class Cost:
    seconds: float
    hourly_usd: float
    usd: float
    brl: float | None
    quote: Quote | None

    def as_dict(self) -> dict:
        out = asdict(self)
        if self.quote:
            out["quote"]["at"] = self.quote.at.isoformat()
        return out


def _cache_path(settings: Settings) -> Path:
    return settings.data_dir / "cache" / CACHE_FILE


def _check_not_future(at: datetime, now: datetime | None = None) -> datetime:
    now = now or datetime.now(timezone.utc)
    if (at - now).total_seconds() > FUTURE_SKEW_S:
        raise ValueError(f"quote stamped in the future ({at.isoformat(timespec='seconds')})")
    return at


def parse_quote(payload: object) -> tuple[float, datetime]:
    """(rate, timestamp) from AwesomeAPI's ``{"USDBRLT": {"ask": "5.71", "timestamp": "1732500000", ...}}``.

    A timestamp later than now (beyond FUTURE_SKEW_S of clock skew) is refused like any broken answer.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("USDBRLT"), dict):
        raise ValueError("no USDBRLT object in the answer")
    body = payload["USDBRLT"]
    rate = float(body.get("ask") or body.get("bid"))
    if not math.isfinite(rate) or not SANE_RANGE[0] <= rate <= SANE_RANGE[1]:
        raise ValueError(f"implausible USD->BRL rate {rate!r}")
    try:
        at = datetime.fromtimestamp(int(body["timestamp"]), tz=timezone.utc)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        at = datetime.now(timezone.utc)
    return rate, _check_not_future(at)


def fetch_quote(url: str, *, timeout_s: float) -> tuple[float, datetime]:
    """Read the live quote; raises on network errors, HTTP errors and garbage."""
    import requests

    response = requests.get(url, timeout=timeout_s, headers={"Accept": "application/json"})
    response.raise_for_status()
    try:
        payload = response.json()
    except ValueError as exc:
        raise ValueError("the answer is not JSON") from exc
    return parse_quote(payload)


def _read_cache(settings: Settings) -> Quote | None:
    try:
        data = json.loads(_cache_path(settings).read_text(encoding="utf-8"))
        rate = float(data["rate"])
        if not SANE_RANGE[0] <= rate <= SANE_RANGE[1]:
            return None
        at = datetime.fromisoformat(data["at"])
        at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
        return Quote(rate=rate, at=_check_not_future(at), source="cache")
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cache(settings: Settings, quote: Quote) -> None:
    atomic_write_text(_cache_path(settings), json.dumps({"rate": quote.rate, "at": quote.at.isoformat(),
                                                         "fetched_at": datetime.now(timezone.utc).isoformat()}))


def usd_brl_quote(settings: Settings) -> Quote | None:
    """The live quote (cached), else the last cached one, else the configured fallback, else ``None``."""
    try:
        rate, at = fetch_quote(settings.awesomeapi_url, timeout_s=settings.awesomeapi_timeout_s)
    except Exception as exc:  # noqa: BLE001 (any failure of an outside service means: use what we know)
        reason = f"{type(exc).__name__}: {exc}"[:200]
        log.warning("USD-BRLT quote unavailable (%s)", reason)
        cached = _read_cache(settings)
        if cached:
            return Quote(cached.rate, cached.at, "cache", f"AwesomeAPI unavailable ({reason}); last known quote")
        if settings.usd_brl_fallback:
            return Quote(settings.usd_brl_fallback, datetime.now(timezone.utc), "fallback",
                         f"AwesomeAPI unavailable ({reason}); configured USD_BRL_FALLBACK")
        return None
    quote = Quote(rate=rate, at=at, source="live")
    _write_cache(settings, quote)
    return quote


def run_cost(settings: Settings, *, seconds: float) -> Cost:
    """Cost of ``seconds`` of machine time; no quote is fetched when the machine is free."""
    hourly = settings.gpu_hourly_usd
    usd = seconds / 3600.0 * hourly
    if hourly == 0:
        return Cost(seconds=seconds, hourly_usd=0.0, usd=0.0, brl=0.0, quote=None)
    quote = usd_brl_quote(settings)
    return Cost(seconds=seconds, hourly_usd=hourly, usd=usd, brl=usd * quote.rate if quote else None, quote=quote)


def _cost_interrupted(settings: Settings, runs: list) -> None:
    """Give the runs just found interrupted a USD->BRL rate (the storage layer has no network)."""
    priced = [r for r in runs if (r.cost_usd or 0) > 0 and r.usd_brl is None]
    quote = usd_brl_quote(settings) if priced else None
    for run in priced:
        if quote is None:
            continue
        run.usd_brl, run.usd_brl_at, run.cost_brl = quote.rate, quote.at, run.cost_usd * quote.rate
        run.metrics = {**(run.metrics or {}), "quote_source": quote.source, "quote_note": quote.note}
    for run in runs:
        log.warning("training run %s was left running by a process that is gone: marked interrupted after %.0f s",
                    run.id, run.duration_s or 0)


def cost_report(settings: Settings, *, now: datetime | None = None) -> dict:
    """The last run's cost and the total of the current month (in ``settings.timezone``).

    Runs left 'running' by a dead process are marked 'interrupted' first and costed for the time they ran
    (with today's quote). ``month_brl`` only adds up the runs that have a USD->BRL rate:
    ``month_runs_without_rate`` lists the ids of those that cost dollars but have none.
    """
    from zoneinfo import ZoneInfo

    from storage.db import migrated

    zone = ZoneInfo(settings.timezone)
    now = (now or datetime.now(timezone.utc)).astimezone(zone)
    with migrated(settings.database_url) as database, database.session() as session:
        _cost_interrupted(settings, repository.interrupt_stale_training_runs(session))
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=32)).replace(day=1)
        month = repository.training_cost_between(session, since=start, until=end)
        last = next(iter(repository.list_training_runs(session, limit=1)), None)
        report = {
            "month": now.strftime("%Y-%m"), "month_runs": month["runs"],
            "month_usd": month["usd"], "month_brl": month["brl"],
            "month_runs_without_brl": len(month["without_brl"]),
            "month_runs_without_rate": month["without_rate"],
            "month_runs_interrupted": month["interrupted"],
            "last": None if last is None else {
                "id": last.id, "status": last.status, "started_at": last.started_at.isoformat(),
                "duration_s": last.duration_s, "cost_usd": last.cost_usd, "cost_brl": last.cost_brl,
                "usd_brl": last.usd_brl, "usd_brl_at": last.usd_brl_at.isoformat() if last.usd_brl_at else None,
                "quote_source": (last.metrics or {}).get("quote_source"),
                "quote_note": (last.metrics or {}).get("quote_note")},
        }
    return report
