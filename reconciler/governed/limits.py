"""The governed call path's in-process limits: rate windows and concurrency slots.

Rates are sliding windows on the clock's monotonic counter: a connector's
`limits.ratePerMinute` counts that connector's calls, the policy's `rateLimits.callsPerMinute`
and `callsPerHour` count every call of the workspace. `check` and `admit` are separate so the
caller can check, reserve the budgets, and admit in one step with no await between. A
connector's `limits.concurrency` is a slot pool: a call over the cap waits for a slot.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from reconciler.clock import Clock


@dataclass(frozen=True)
class Rate:
    """One window: at most `limit` calls in `span` seconds, counted under `key`."""

    key: str
    limit: int
    span: float
    rule: str
    """What people read when it refuses: `connector.time limits.ratePerMinute (60)`."""


class RateWindows:
    """Sliding windows of call times, by key."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._calls: dict[tuple[str, float], deque[float]] = {}

    def full(self, rates: list[Rate]) -> Rate | None:
        """The first of `rates` that has no room for one more call now, if any."""
        now = self._clock.monotonic()
        for rate in rates:
            window = self._window(rate, now)
            if len(window) >= rate.limit:
                return rate
        return None

    def admit(self, rates: list[Rate]) -> float:
        """Count one call in each of `rates`; the time it was counted at (for `release`)."""
        now = self._clock.monotonic()
        for rate in rates:
            self._window(rate, now).append(now)
        return now

    def release(self, rates: list[Rate], at: float) -> None:
        """Uncount a call admitted at `at` that was then refused (no slot)."""
        for rate in rates:
            window = self._calls.get((rate.key, rate.span))
            if window is not None and at in window:
                window.remove(at)

    def _window(self, rate: Rate, now: float) -> deque[float]:
        window = self._calls.setdefault((rate.key, rate.span), deque())
        while window and window[0] <= now - rate.span:
            window.popleft()
        return window


class Slots:
    """Each connector's concurrency cap, as a semaphore resized when the cap changes."""

    def __init__(self) -> None:
        self._pools: dict[str, tuple[int, asyncio.Semaphore]] = {}

    def pool(self, connector: str, cap: int) -> asyncio.Semaphore:
        """The slot pool of `connector` for a cap of `cap` (a new pool when the cap changed;
        calls holding slots of the old one finish under it)."""
        found = self._pools.get(connector)
        if found is None or found[0] != cap:
            found = (cap, asyncio.Semaphore(cap))
            self._pools[connector] = found
        return found[1]

    async def acquire(self, connector: str, cap: int, timeout: float) -> asyncio.Semaphore | None:
        """A held slot's pool, or None when none freed up within `timeout` seconds."""
        pool = self.pool(connector, cap)
        try:
            await asyncio.wait_for(pool.acquire(), timeout)
        except TimeoutError:
            return None
        return pool
