"""The supervisor's decisions about one connector: when it may start again (exponential
backoff after a failure) and whether it may start at all (the circuit breaker).

Pure state over the injected clock, so unit tests drive it with a fake one. The supervisor
calls `wait()` before a start, `starting()` when it starts one, `started()` once the server
answered `initialize`, `succeeded()` after a request it served, and `failed()` after any
failure (a start that did not finish, a crash, a failed ping, an oversized message).
"""

from __future__ import annotations

from reconciler.clock import SYSTEM, Clock
from reconciler.runtime.types import BreakerState, RuntimeFailure, Settings


class Health:
    """Backoff and circuit breaker of one connector."""

    def __init__(
        self, name: str, *, settings: Settings = Settings(), clock: Clock = SYSTEM
    ) -> None:
        self.name = name
        self._settings = settings
        self._clock = clock
        self.breaker: BreakerState = "closed"
        self.failures = 0
        """Consecutive failures; a served request or a closing probe resets it."""
        self.restarts = 0
        """Starts made after a failure."""
        self.last_error: str | None = None
        self._not_before = 0.0
        self._opened_at = 0.0
        self._probing = False

    def wait(self) -> float:
        """Seconds until a start is allowed (0 now); `RuntimeFailure("unavailable")` while the
        breaker is open or its one half-open probe is under way."""
        now = self._clock.monotonic()
        if self.breaker == "open":
            remaining = self._opened_at + self._settings.breaker_open_for - now
            if remaining > 0:
                raise self._unavailable(f"retries in {remaining:.1f}s")
            self.breaker = "half-open"
            self._probing = False
        if self.breaker == "half-open":
            if self._probing:
                raise self._unavailable("a probe start is under way")
            return 0.0
        return max(0.0, self._not_before - now)

    def starting(self) -> None:
        """A start begins (in half-open, it is the one probe)."""
        if self.breaker == "half-open":
            self._probing = True
        if self.failures:
            self.restarts += 1

    def started(self) -> None:
        """The server answered `initialize`: a half-open probe closes the breaker."""
        if self.breaker == "half-open":
            self.breaker = "closed"
            self.failures = 0
        self._probing = False

    def succeeded(self) -> None:
        """The connector served a request: the failure streak ends."""
        if self.breaker == "closed":
            self.failures = 0

    def failed(self, error: str) -> None:
        """A start, a ping or the process failed: back off, and open the breaker after
        `breaker_failures` in a row (at once when the half-open probe fails)."""
        now = self._clock.monotonic()
        self.failures += 1
        self.last_error = error
        self._probing = False
        if self.breaker == "half-open" or self.failures >= self._settings.breaker_failures:
            self.breaker = "open"
            self._opened_at = now
        delay = self._settings.backoff_initial * 2 ** min(self.failures - 1, 60)
        self._not_before = now + min(delay, self._settings.backoff_max)

    def retry_in(self) -> float | None:
        """Seconds until the next start is allowed, or None when one is allowed now."""
        now = self._clock.monotonic()
        if self.breaker == "open":
            until = self._opened_at + self._settings.breaker_open_for
        elif self.breaker == "half-open":
            return None
        else:
            until = self._not_before
        return round(until - now, 3) if until > now else None

    def _unavailable(self, when: str) -> RuntimeFailure:
        return RuntimeFailure(
            "unavailable",
            f"connector {self.name} is unavailable: its circuit breaker is open after "
            f"{self.failures} failures in a row (last: {self.last_error}); {when}",
            hint="`cloned connectors stats` shows its state; the log is under "
            ".cloned/state/logs/connectors/",
        )
