"""All the wiring of the Telegram application in one place.

Example::

    from pipeline.settings import get_settings
    from bot.app import run_polling
    run_polling(get_settings())          # or: oraculo bot

    # in tests: any object with the service's methods, any Bot API server
    app = build_application(Settings(TELEGRAM_BOT_TOKEN="1:x", TELEGRAM_BASE_URL=fake.base_url), service)
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any, Awaitable

from telegram import BotCommand, Update
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, BaseUpdateProcessor

from bot import texts
from bot.handlers import SERVICE_KEY, register_handlers
from pipeline.settings import Settings

log = logging.getLogger(__name__)

# Updates of different people are handled at the same time, up to this many at once.
MAX_CONCURRENT_UPDATES = 16
# On 429 Too Many Requests, wait the `retry_after` Telegram asks for and try again this many times.
RATE_LIMIT_RETRIES = 3
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]


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
        .rate_limiter(AIORateLimiter(max_retries=RATE_LIMIT_RETRIES))
        .concurrent_updates(PerUserUpdateProcessor(MAX_CONCURRENT_UPDATES))
        .post_init(_set_commands)
        .build()
    )
    application.bot_data[SERVICE_KEY] = service
    register_handlers(application)
    return application


def run_polling(settings: Settings, *, service: Any = None) -> None:
    """Run the bot with long polling until Ctrl+C (one process per token: a second one gets 409)."""
    # httpx logs every request URL at INFO, and the URL holds the bot token.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger("httpx").level))
    if service is None:
        from pipeline.service import Oraculo

        service = Oraculo.from_settings(settings)
        service.warm_up()
    application = build_application(settings, service)
    log.info("starting the Telegram bot (long polling)")
    application.run_polling(allowed_updates=ALLOWED_UPDATES)


if __name__ == "__main__":
    from pipeline.settings import get_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_polling(get_settings())
