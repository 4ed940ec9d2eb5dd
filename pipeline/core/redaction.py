"""Keep the configured secrets (bot token, API keys, salts) out of every log line and traceback.

A rejected Telegram token comes back inside the library's own exception text and in the URLs httpx logs
(``.../bot<TOKEN>/getMe``); an OpenAI key can sit in an error body. :class:`RedactingFilter`, put on every
handler of the root logger, replaces each secret in a record's message, its arguments and its formatted
traceback; :func:`install` does that and also wraps ``sys.excepthook`` so an uncaught traceback is redacted
too.

Example::

    >>> import logging
    >>> from pipeline.core.redaction import redact
    >>> redact("POST https://api.telegram.org/bot123:AAH-secret/getMe", ["123:AAH-secret"])
    'POST https://api.telegram.org/bot[REDACTED]/getMe'
"""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Iterable

MASK = "[REDACTED]"
# Shorter values (a "1", "true") would mask ordinary words; real secrets are far longer.
MIN_SECRET_CHARS = 6
SECRET_FIELDS = ("telegram_bot_token", "openai_api_key", "hf_token", "telegram_webhook_secret", "user_hash_salt")


def secret_values(settings) -> list[str]:
    """The secrets ``settings`` holds (``SecretStr`` fields that are set), longest first."""
    values = []
    for name in SECRET_FIELDS:
        value = getattr(settings, name, None)
        if value is not None and len(value.get_secret_value().strip()) >= MIN_SECRET_CHARS:
            values.append(value.get_secret_value().strip())
    # The database URL may carry a password (postgresql+psycopg://user:password@host/db).
    url = getattr(settings, "database_url", "") or ""
    if "://" in url and "@" in url.split("://", 1)[1]:
        credentials = url.split("://", 1)[1].rsplit("@", 1)[0]
        password = credentials.split(":", 1)[1] if ":" in credentials else ""
        if len(password) >= MIN_SECRET_CHARS:
            values.append(password)
    return sorted(set(values), key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record so that none of ``secrets`` reaches a handler: message, arguments, traceback."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler to report, redacted
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact(message, self.secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True


def install(secrets: Iterable[str]) -> RedactingFilter:
    """Redact ``secrets`` from every handler of the root logger and from uncaught tracebacks."""
    log_filter = RedactingFilter(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(log_filter)
    previous = sys.excepthook

    def excepthook(kind, value, tb) -> None:
        text = "".join(traceback.format_exception(kind, value, tb))
        sys.stderr.write(redact(text, log_filter.secrets))

    excepthook.previous = previous  # type: ignore[attr-defined]
    sys.excepthook = excepthook
    return log_filter
