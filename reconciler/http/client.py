"""A minimal HTTP GET for package downloads: the one place httpx is called (the adapter).

Callers (the registry fetcher) pass the most bytes they accept; the client stops reading past
that, sets connect and read timeouts, and never follows a redirect, so a response cannot send
the download to another scheme or host. Issue 12's SafeFetch adds host allow-lists and address
checks on top of this function."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reconciler.errors import ClonedError

if TYPE_CHECKING:
    import httpx

CHUNK = 64 * 1024


@dataclass(frozen=True)
class Limits:
    """How long to wait and how much to read, per request."""

    max_bytes: int
    connect_seconds: float = 5.0
    read_seconds: float = 15.0


class HttpFailed(ClonedError):
    """A request that did not deliver a body: `status` is the HTTP status, or None when no
    response came (connection refused, timeout, a redirect refused)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def get(url: str, limits: Limits) -> Iterator[bytes]:
    """The body of `url` in chunks; a status other than 200, a redirect, or more than
    `limits.max_bytes` bytes raises `HttpFailed`."""
    import httpx  # on first use: a `file:` registry never pays for it

    if not url.startswith(("http://", "https://")):
        raise HttpFailed(f"{url}: only http and https URLs are fetched")
    timeout = httpx.Timeout(limits.read_seconds, connect=limits.connect_seconds)
    try:
        with _client().stream("GET", url, timeout=timeout) as response:
            _check_status(url, response)
            yield from _capped(url, response, limits.max_bytes)
    except httpx.HTTPError as exc:
        raise HttpFailed(f"{url}: {type(exc).__name__}: {exc}") from None


_CLIENT: list[httpx.Client] = []


def _client() -> httpx.Client:
    """One client per process, so the requests of one registry refresh share connections
    (and one TLS context): no proxy from the environment, no redirects followed."""
    import httpx

    if not _CLIENT:
        _CLIENT.append(httpx.Client(follow_redirects=False, trust_env=False))
    return _CLIENT[0]


def _check_status(url: str, response: httpx.Response) -> None:
    if response.is_redirect:
        raise HttpFailed(f"{url}: redirect to {response.headers.get('location')!r} refused")
    if response.status_code != 200:
        raise HttpFailed(f"{url}: HTTP {response.status_code}", status=response.status_code)


def _capped(url: str, response: httpx.Response, max_bytes: int) -> Iterator[bytes]:
    received = 0
    for chunk in response.iter_bytes(CHUNK):
        received += len(chunk)
        if received > max_bytes:
            raise HttpFailed(f"{url}: more than {max_bytes} bytes")
        yield chunk
