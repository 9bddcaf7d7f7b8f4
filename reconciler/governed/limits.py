"""The governed call path's limits: rate windows and concurrency slots.

Rates are sliding windows over the times of admitted calls, kept in the state database so that
a second gateway or a `cloned connectors call` gets no allowance of its own: a connector's
`limits.ratePerMinute` counts that connector's calls, the policy's `rateLimits.callsPerMinute`
and `callsPerHour` count every call of the workspace. `full` and `admit` run in the one
transaction that also reserves the budgets. A connector's `limits.concurrency` is a slot pool
of this process: a call over the cap waits for a slot.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from reconciler.clock import Clock
from reconciler.state import rates as rate_rows
from reconciler.state.db import Connection


@dataclass(frozen=True)
class Rate:
    """One window: at most `limit` calls in `span` seconds, counted under `key`."""

    key: str
    limit: int
    span: float
    rule: str
    """What people read when it refuses: `connector.time limits.ratePerMinute (60)`."""


class RateWindows:
    """Sliding windows of call times, kept in the state database (`state/rates.py`) so every
    process of the workspace counts against the same limits. Used inside the transaction that
    admits a call."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def now(self) -> float:
        """The time a call is counted at: seconds since the epoch, from the injected clock."""
        return self._clock.now().timestamp()

    def full(self, connection: Connection, rates: list[Rate], now: float) -> Rate | None:
        """The first of `rates` that has no room for one more call at `now`, if any."""
        for rate in rates:
            if rate_rows.count(connection, rate.key, now - rate.span) >= rate.limit:
                return rate
        return None

    def admit(self, connection: Connection, rates: list[Rate], now: float) -> None:
        """Count one call at `now` under each distinct key of `rates`."""
        for key in dict.fromkeys(rate.key for rate in rates):
            rate_rows.add(connection, key, now)

    def release(self, connection: Connection, rates: list[Rate], at: float) -> None:
        """Uncount a call admitted at `at` that was then refused (no slot)."""
        for key in dict.fromkeys(rate.key for rate in rates):
            rate_rows.remove(connection, key, at)


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
