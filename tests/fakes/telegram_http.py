"""Pieces of the fake Bot API that are not the server itself: request parsing, markup checks, the
bot_command entity clients attach, and running a PTB Application against the fake for a test.

Example::

    >>> command_entities("/start agora")
    [{'type': 'bot_command', 'offset': 0, 'length': 6}]
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any, AsyncIterator

from aiohttp import web


class ApiError(Exception):
    """A Bot API error reply: HTTP status plus Telegram's description (and parameters)."""

    def __init__(self, status: int, description: str, parameters: dict | None = None):
        super().__init__(description)
        self.status, self.description, self.parameters = status, description, parameters


def command_entities(text: str) -> list[dict]:
    """The bot_command entity a Telegram client attaches to a message starting with '/'."""
    match = re.match(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]+)?", text)
    return [{"type": "bot_command", "offset": 0, "length": match.end()}] if match else []


def _inline_markup(raw: str) -> dict | None:
    markup = json.loads(raw)
    if "inline_keyboard" not in markup:
        return None  # reply keyboards and the like are not echoed back in the message
    for row in markup["inline_keyboard"]:
        for button in row:
            if len(button.get("callback_data", "").encode()) > 64:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    return markup


async def _read_params(request: web.Request) -> tuple[dict[str, str], dict[str, bytes]]:
    """The request's fields as strings, and its uploaded files' bytes."""
    if request.content_type == "application/json":
        body = await request.json()
        return {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}, {}
    fields, files = dict(request.query), {}
    if request.can_read_body:
        for name, value in (await request.post()).items():
            if isinstance(value, str):
                fields[name] = value
            elif isinstance(value, web.FileField):
                files[name] = value.file.read()
    # PTB sends a file as the field "photo" = "attach://<name>" plus a part named <name>.
    for name, value in list(fields.items()):
        if value.startswith("attach://") and value[len("attach://"):] in files:
            files[name] = files.pop(value[len("attach://"):])
    return fields, files


@contextlib.asynccontextmanager
async def running_application(application, *, poll_timeout: float = 1.0) -> AsyncIterator[Any]:
    """Run a PTB Application (initialize, poll, start) for the duration of the block, then stop it cleanly."""
    async with application:
        await application.updater.start_polling(poll_interval=0.0, timeout=poll_timeout)
        await application.start()
        try:
            yield application
        finally:
            await application.updater.stop()
            await application.stop()
