"""Stream a generated answer into Telegram: one message that grows as the model writes, edits rate-limited.

The service runs in a worker thread and reports the text so far through ``on_partial``; this module keeps only
the latest text and, at most once every ``interval_s`` seconds, sends it (the first time) or edits the message
to it, with a cursor. When the answer is complete the caller puts the final rendering (HTML, sources,
👍/👎 buttons) into the same message with :meth:`StreamingReply.finish`. Telegram allows about one edit per
second per chat; a ``RetryAfter`` pushes the next edit back by what Telegram asked, "message is not modified"
is ignored, and any other error while streaming only stops the streaming (the final answer is still sent).

Example::

    reply = StreamingReply(message)
    result = await reply.run(lambda on_partial: service.ask(text, user_ref=1, channel="telegram",
                                                           on_partial=on_partial))
    await reply.finish(texts.render_answer(result.answer), reply_markup=keyboard)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Callable

from telegram import Message
from telegram.error import BadRequest, RetryAfter, TelegramError

log = logging.getLogger(__name__)

EDIT_INTERVAL_S = 1.0  # Telegram tolerates about one edit per second in a chat
CURSOR = " ▌"
MAX_STREAM_CHARS = 3500  # longer partial texts are not shown (the final answer is split by the caller)


class StreamingReply:
    """The message that shows a generated answer while it is being written."""

    def __init__(self, message: Message, *, interval_s: float = EDIT_INTERVAL_S) -> None:
        self.message = message
        self.interval_s = interval_s
        self.sent: Message | None = None  # the growing message, once the first piece was shown
        self.edits = 0
        self._latest = ""
        self._shown = ""
        self._next_at = 0.0
        self._broken = False
        self._changed: asyncio.Event | None = None

    async def run(self, ask: Callable[[Callable[[str], None]], object]):
        """Run ``ask(on_partial)`` in a thread, showing its partial texts; return what ``ask`` returns."""
        loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()

        def on_partial(text: str) -> None:  # called from the worker thread
            loop.call_soon_threadsafe(self._update, text)

        pump = asyncio.create_task(self._pump())
        try:
            return await asyncio.to_thread(ask, on_partial)
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    def _update(self, text: str) -> None:
        self._latest = text
        self._changed.set()

    async def _pump(self) -> None:
        while not self._broken:
            await self._changed.wait()
            self._changed.clear()
            wait = self._next_at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await self._show(self._latest)

    async def _show(self, text: str) -> None:
        text = text.strip()
        if not text or text == self._shown or len(text) > MAX_STREAM_CHARS:
            return
        self._next_at = time.monotonic() + self.interval_s
        try:
            if self.sent is None:
                self.sent = await self.message.reply_text(text + CURSOR)
            else:
                await self.sent.edit_text(text + CURSOR)
                self.edits += 1
            self._shown = text
        except RetryAfter as exc:
            delay = exc.retry_after.total_seconds() if hasattr(exc.retry_after, "total_seconds") else exc.retry_after
            self._next_at = time.monotonic() + float(delay)
        except BadRequest as exc:
            if "not modified" not in str(exc).lower():
                log.warning("streaming stopped: %s", exc)
                self._broken = True
        except TelegramError as exc:
            log.warning("streaming stopped: %s", exc)
            self._broken = True

    async def finish(self, html: str, *, reply_markup=None) -> Message:
        """Put the final answer in the streamed message (or send it, when nothing was streamed)."""
        if self.sent is not None:
            try:
                return await self.sent.edit_text(html, parse_mode="HTML", reply_markup=reply_markup)
            except RetryAfter as exc:
                delay = exc.retry_after.total_seconds() if hasattr(exc.retry_after, "total_seconds") \
                    else exc.retry_after
                await asyncio.sleep(float(delay))
                return await self.sent.edit_text(html, parse_mode="HTML", reply_markup=reply_markup)
            except BadRequest as exc:
                log.warning("could not finish the streamed message (%s): sending the answer anew", exc)
        return await self.message.reply_html(html, reply_markup=reply_markup)
