"""Per-person question limit: a leaky bucket per user (aiolimiter), refusing instead of waiting.

Outgoing Bot API calls are paced separately by PTB's AIORateLimiter (bot/telegram/app.py); this protects the models
from one person flooding the bot. The buckets live in this process: behind a load balancer each process
enforces its own share, so the effective limit is at most ``processes x max_rate``.

Example::

    >>> import asyncio
    >>> async def demo():
    ...     limiter = PerUserLimiter(max_rate=2, time_period=60)
    ...     return [await limiter.allow(7) for _ in range(3)], await limiter.allow(8)
    >>> asyncio.run(demo())
    ([True, True, False], True)
"""

from __future__ import annotations

from collections import OrderedDict

from aiolimiter import AsyncLimiter

MAX_TRACKED_USERS = 50_000  # least recently seen buckets are dropped beyond this (they would be full anyway)


class PerUserLimiter:
    """``allow(user_id)`` is True while that person is within ``max_rate`` questions per ``time_period`` s."""

    def __init__(self, *, max_rate: int, time_period: float, max_users: int = MAX_TRACKED_USERS):
        self.max_rate, self.time_period, self.max_users = max_rate, time_period, max_users
        self._buckets: OrderedDict[int, AsyncLimiter] = OrderedDict()
        self._warned: set[int] = set()

    async def allow(self, user_id: int) -> bool:
        """Take one unit from the person's bucket if it has room; never waits for room."""
        bucket = self._buckets.get(user_id)
        if bucket is None:
            bucket = self._buckets[user_id] = AsyncLimiter(self.max_rate, self.time_period)
            while len(self._buckets) > self.max_users:
                dropped, _ = self._buckets.popitem(last=False)
                self._warned.discard(dropped)
        self._buckets.move_to_end(user_id)
        if bucket.has_capacity():
            await bucket.acquire()  # returns at once: there is capacity and nothing ran in between
            self._warned.discard(user_id)
            return True
        return False

    def first_refusal(self, user_id: int) -> bool:
        """True once per run of refusals, so a flood gets one friendly message, not one per message."""
        if user_id in self._warned:
            return False
        self._warned.add(user_id)
        return True
