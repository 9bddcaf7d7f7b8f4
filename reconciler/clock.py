"""The time Cloned believes it is: injectable, so tests and replays never depend on the wall.

`CLONED_NOW` (an ISO 8601 time with offset, e.g. `2026-01-01T12:00:00+00:00`) fixes the clock;
it exists for tests and reproducible demos and is documented as such. Code that waits, leases
or backs off takes a `Clock` (`SYSTEM` by default), so unit tests drive it with a fake one.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Protocol

from reconciler.errors import ClonedError


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    fixed = os.environ.get("CLONED_NOW")
    if not fixed:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(fixed)
    except ValueError:
        raise ClonedError(f"CLONED_NOW: {fixed!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise ClonedError(f"CLONED_NOW: {fixed!r} needs a UTC offset, e.g. +00:00")
    return value.astimezone(UTC)


def stamp(moment: datetime | None = None) -> str:
    """An RFC 3339 UTC timestamp with seconds: `2026-01-01T12:00:00Z`."""
    return (moment or now()).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Clock(Protocol):
    """Wall time, a monotonic counter and sleeping: everything a loop or a lease needs."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a counter that never goes back (for intervals and deadlines)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait this long."""
        ...


class SystemClock:
    """The real clock (`now` honours `CLONED_NOW`)."""

    def now(self) -> datetime:
        return now()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM: Clock = SystemClock()
