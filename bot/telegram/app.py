"""All the wiring of the Telegram application in one place.

Outgoing calls go through PTB's AIORateLimiter (Telegram's flood limits; a 429 ``retry_after`` is waited
out and retried), extended here to retry network errors and 5xx replies with a short backoff. Updates of
different people run concurrently, one person's in order. ``run`` picks long polling, or webhook mode when
``TELEGRAM_WEBHOOK_URL`` is set (several processes behind one load balancer, sharing PostgreSQL).

Example::

    from pipeline.settings import get_settings
    from bot.telegram.app import run
    run(get_settings())          # or: oraculo bot

    # in tests: any object with the service's methods, any Bot API server
    app = build_application(Settings(TELEGRAM_BOT_TOKEN="1:x", TELEGRAM_BASE_URL=fake.base_url), service)
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from datetime import timedelta
from typing import Any, Awaitable

from telegram import BotCommand, Update
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, BaseUpdateProcessor

from bot import admin_texts, texts
from bot.telegram.admin import shutdown_admin
from bot.telegram.handlers import LIMITER_KEY, SERVICE_KEY, register_handlers
from bot.telegram.ratelimit import PerUserLimiter
from pipeline.loop.nightly import RetrainBusy, RetrainFailed, retrain_job
from pipeline.settings import Settings

log = logging.getLogger(__name__)

# Updates of different people are handled at the same time, up to this many at once.
MAX_CONCURRENT_UPDATES = 16
# On 429 Too Many Requests, wait the `retry_after` Telegram asks for and try again this many times.
RATE_LIMIT_RETRIES = 3
# Network errors and 5xx replies: retried this many times, after 0.2 s, 0.4 s, 0.8 s.
NETWORK_RETRIES = 3
NETWORK_BACKOFF_S = 0.2
COSMETIC_ENDPOINTS = {"sendChatAction"}
ALLOWED_UPDATES = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY]


class RetryingRateLimiter(AIORateLimiter):
    """AIORateLimiter's proactive pacing (30 messages/s overall, 20/min per group), with our own retries:

    - 429 RetryAfter: wait what Telegram asks, then retry (``max_retries`` times). A 429 on a call for one
      chat holds back that chat's calls only (Telegram's flood control is per chat); one without a chat
      (answerCallbackQuery) holds back that method. PTB's own handling pauses every call of every chat, so
      one flooded chat would stall all citizens.
    - "typing…" (sendChatAction) is cosmetic and refreshed every few seconds: one attempt, no retry, no
      hold, so a failing chat action never delays an answer.
    - Network errors and 5xx replies: retried ``NETWORK_RETRIES`` times with a doubling backoff. BadRequest
      is final (PTB makes it a NetworkError subclass). A send that timed out may have reached Telegram:
      retrying it can show a message twice, which beats losing it.
    """

    def __init__(self, *, max_retries: int = RATE_LIMIT_RETRIES, **pacing: Any):
        super().__init__(max_retries=0, **pacing)  # 0: PTB re-raises RetryAfter at once, we retry below
        self._flood_retries = max_retries
        self._not_before: dict[object, float] = {}  # chat id (or method) -> loop time it may be called again

    async def _wait_turn(self, chat: object) -> None:
        loop = asyncio.get_running_loop()
        delay = self._not_before.get(chat, 0.0) - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)

    def _hold(self, chat: object, seconds: float) -> None:
        now = asyncio.get_running_loop().time()
        self._not_before[chat] = max(self._not_before.get(chat, 0.0), now + seconds)
        if len(self._not_before) > 10_000:  # forget holds that are over
            self._not_before = {k: t for k, t in self._not_before.items() if t > now}

    async def process_request(self, callback, args, kwargs, endpoint, data, rate_limit_args):
        if endpoint in COSMETIC_ENDPOINTS:
            return await super().process_request(callback, args, kwargs, endpoint, data, None)
        chat = data.get("chat_id", endpoint)
        floods = failures = 0
        while True:
            await self._wait_turn(chat)
            try:
                return await super().process_request(callback, args, kwargs, endpoint, data, None)
            except RetryAfter as exc:
                if floods == self._flood_retries:
                    raise
                floods += 1
                wait = _seconds(exc.retry_after) + 0.1
                log.info("%s hit flood control; retry %d in %.1f s", endpoint, floods, wait)
                self._hold(chat, wait)
            except BadRequest:
                raise
            except NetworkError as exc:
                if failures == NETWORK_RETRIES:
                    raise
                delay = NETWORK_BACKOFF_S * 2 ** failures
                failures += 1
                log.info("%s failed (%s); retry %d in %.1f s", endpoint, exc, failures, delay)
                await asyncio.sleep(delay)


class _OurRetriesFilter(logging.Filter):
    """PTB logs every RetryAfter with a traceback when its own retries are off; ours log one line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "after maximum of 0 retries" not in record.getMessage()


logging.getLogger("telegram.ext.AIORateLimiter").addFilter(_OurRetriesFilter())


def _seconds(value: Any) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class PerUserUpdateProcessor(BaseUpdateProcessor):
    """Concurrent across people, in order for each person: a 👍 then a 👎 must be stored in that order."""

    def __init__(self, max_concurrent_updates: int):
        super().__init__(max_concurrent_updates)
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = _sender_key(update)
        if key is None:
            await coroutine
            return
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:  # asyncio.Lock is fair: updates of one person run in arrival order
            await coroutine

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""


def _sender_key(update: object) -> int | None:
    if not isinstance(update, Update):
        return None
    if update.effective_user is not None:
        return update.effective_user.id
    return update.effective_chat.id if update.effective_chat is not None else None


async def _set_commands(application: Application) -> None:
    # The command menu is a nicety: a failure here must not keep the bot from starting.
    try:
        await application.bot.set_my_commands([BotCommand(name, desc) for name, desc in texts.COMMANDS.items()])
    except TelegramError as exc:
        log.warning("could not set the bot commands: %s", exc)


def build_application(settings: Settings, service: Any) -> Application:
    """The PTB Application for ``settings`` (token, Bot API URL) answering through ``service``."""
    if settings.telegram_bot_token is None:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    application = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(settings.telegram_base_url)
        .base_file_url(settings.telegram_base_file_url)
        .rate_limiter(RetryingRateLimiter(max_retries=RATE_LIMIT_RETRIES))
        .concurrent_updates(PerUserUpdateProcessor(MAX_CONCURRENT_UPDATES))
        .post_init(_set_commands)
        .post_shutdown(shutdown_admin)
        .build()
    )
    application.bot_data[SERVICE_KEY] = service
    application.bot_data[LIMITER_KEY] = PerUserLimiter(max_rate=settings.rate_limit_questions,
                                                       time_period=settings.rate_limit_window_s)
    register_handlers(application)
    schedule_retrain(application, settings)
    return application


RETRAIN_JOB_NAME = "nightly-retrain"


def schedule_retrain(application: Application, settings: Settings):
    """Run the nightly learning loop at ``RETRAIN_CRON`` in ``settings.timezone`` (America/Sao_Paulo) on PTB's
    JobQueue (APScheduler 3.x). Missed runs coalesce into one, never two at once, and a run missed by less
    than ``RETRAIN_MISFIRE_GRACE_S`` (the loop was busy, the machine slept) still runs."""
    from zoneinfo import ZoneInfo

    from apscheduler.triggers.cron import CronTrigger

    if application.job_queue is None:
        log.warning("no JobQueue (python-telegram-bot[job-queue] missing): the nightly retraining is not scheduled")
        return None
    trigger = CronTrigger.from_crontab(settings.retrain_cron, timezone=ZoneInfo(settings.timezone))
    return application.job_queue.run_custom(
        scheduled_retrain, name=RETRAIN_JOB_NAME,
        job_kwargs={"trigger": trigger, "coalesce": True, "max_instances": 1,
                    "misfire_grace_time": settings.retrain_misfire_grace_s, "replace_existing": True,
                    "id": RETRAIN_JOB_NAME})


async def scheduled_retrain(context) -> None:
    """The scheduled run: the job in a worker thread, then its summary (or error) to every admin."""
    service = context.application.bot_data[SERVICE_KEY]
    settings = service.settings
    try:
        report = await asyncio.to_thread(retrain_job, settings, trigger="schedule")
    except RetrainBusy:
        log.info("scheduled retraining skipped: a run is already in progress")
        return
    except RetrainFailed as exc:
        report = exc.report
    except Exception as exc:  # noqa: BLE001 (the admins must hear of any failure)
        log.exception("scheduled retraining failed")
        report = None
        error = f"{type(exc).__name__}: {exc}"
    if report is not None:
        if report.promoted:
            await asyncio.to_thread(service.answerer.refresh)
        error = report.error
        message = admin_texts.job_finished(title=admin_texts.RETRAIN_SCHEDULED_TITLE, ok=report.ok,
                                     duration_s=report.duration_s, steps=admin_texts.retrain_step_lines(report),
                                     error=error)
    else:
        message = admin_texts.job_finished(title=admin_texts.RETRAIN_SCHEDULED_TITLE, ok=False, duration_s=0.0,
                                           steps=[], error=error)
    for admin_id in sorted(settings.admin_id_set):
        try:
            await context.bot.send_message(admin_id, message, parse_mode="HTML")
        except TelegramError as exc:
            log.warning("could not send the retraining report to an admin: %s", exc)


def _prepare(settings: Settings, service: Any) -> Application:
    # httpx logs every request URL at INFO, and the URL holds the bot token.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger("httpx").level))
    if service is None:
        from pipeline.service import Oraculo

        service = Oraculo.from_settings(settings)
        service.warm_up()
    return build_application(settings, service)


def webhook_options(settings: Settings) -> dict:
    """The keyword arguments of ``Application.run_webhook`` / ``Updater.start_webhook`` for ``settings``."""
    path = settings.telegram_webhook_path.strip("/")
    secret = settings.telegram_webhook_secret
    return {"listen": settings.telegram_webhook_listen, "port": settings.telegram_webhook_port, "url_path": path,
            "webhook_url": f"{settings.telegram_webhook_url.rstrip('/')}/{path}",
            "secret_token": secret.get_secret_value() if secret is not None else None,
            "allowed_updates": ALLOWED_UPDATES}


def run(settings: Settings, *, service: Any = None) -> None:
    """Run the bot until Ctrl+C: webhook mode when TELEGRAM_WEBHOOK_URL is set, else long polling."""
    application = _prepare(settings, service)
    if settings.telegram_webhook_url:
        options = webhook_options(settings)
        log.info("starting the Telegram bot (webhook on %s:%s/%s)", options["listen"], options["port"],
                 options["url_path"])
        # Every process sets the same webhook URL (the load balancer's): idempotent for Telegram.
        application.run_webhook(**options)
    else:
        log.info("starting the Telegram bot (long polling)")
        application.run_polling(allowed_updates=ALLOWED_UPDATES)


if __name__ == "__main__":
    from pipeline.settings import get_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(get_settings())
