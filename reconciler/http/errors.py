"""The HTTP adapter's errors, importable without loading httpx (a `file:` registry never does)."""

from __future__ import annotations

from reconciler.errors import ClonedError


class HttpFailed(ClonedError):
    """A request that did not deliver a body: `status` is the HTTP status, or None when no
    response came (refused by egress, connection refused, timeout, too many redirects)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class EgressRefused(HttpFailed):
    """Refused by the egress rules or the address checks, before any connection was made."""
