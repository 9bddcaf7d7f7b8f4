"""SafeFetch: Cloned's own HTTP client, for registries, Models (`post_json`), remote MCP servers
and first-party connectors. Every request, and every redirect hop, goes through the same steps:

1. the egress rules decide on the URL (`EgressRules.decide`: scheme, host, port, lists);
2. the host is resolved ONCE with the injected resolver (an address literal is its own answer)
   and every address it resolves to is checked (`egress.addresses.refusal`); one refused
   address refuses the host;
3. the first checked address is pinned, and the connection goes to it (`client.Pins`): no
   second lookup, so DNS rebinding cannot swap the address after the check;
4. the body is read up to `max_bytes`, within the connect, read and total time caps.

Everything is refused before connecting: a refusal never sends a packet. `allow_loopback_for`
is the one documented exception, for tests and for registries served on this machine: the
hosts it names may resolve to a plain loopback address (127.0.0.0/8, ::1), nothing else."""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpx

from reconciler.egress.addresses import is_plain_loopback, refusal
from reconciler.egress.hostnames import Target
from reconciler.egress.rules import EgressRules
from reconciler.http.client import OnConnect, Pins, pinned_client
from reconciler.http.errors import EgressRefused, HttpFailed

Resolver = Callable[[str, int], Sequence[str]]
"""`(host, port) -> addresses`, in the order they should be tried."""

CHUNK = 64 * 1024
REDIRECTS = frozenset({301, 302, 303, 307, 308})
CREDENTIALS = frozenset({"authorization", "cookie", "proxy-authorization"})


def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's answer for `host` (getaddrinfo), each address once."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise HttpFailed(f"{host}: could not resolve ({exc})") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Response:
    """A whole response: the URL that answered (after redirects), status, headers, body."""

    url: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


class SafeFetch:
    """An HTTP client that reaches only what `rules` allow, at addresses it checked itself."""

    def __init__(
        self,
        rules: EgressRules,
        *,
        resolver: Resolver = system_resolver,
        timeout: float = 15.0,
        connect_timeout: float = 5.0,
        total_timeout: float = 120.0,
        max_bytes: int = 10_000_000,
        max_redirects: int = 5,
        allow_loopback_for: Iterable[str] = (),
        ssl_context: ssl.SSLContext | None = None,
        on_connect: OnConnect | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rules = rules
        self._resolver = resolver
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._total = total_timeout
        self._max_bytes = max_bytes
        self._max_redirects = max_redirects
        self._loopback_ok = frozenset(host.lower().rstrip(".") for host in allow_loopback_for)
        self._monotonic = monotonic
        self.pins = Pins()
        self._client = pinned_client(self.pins, ssl_context, on_connect)

    def get(
        self, url: str, *, headers: Mapping[str, str] | None = None, max_bytes: int | None = None
    ) -> Response:
        """`request("GET", url)`."""
        return self.request("GET", url, headers=headers, max_bytes=max_bytes)

    def post_json(
        self,
        url: str,
        body: Any,
        *,
        headers: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
        timeout: float | None = None,
    ) -> Response:
        """POST `body` as UTF-8 JSON (`Content-Type: application/json`) to `url`; the whole
        response, whatever its status. `timeout` caps this request's reads and its total time
        (the client's own caps otherwise)."""
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        sent = {"Content-Type": "application/json", "Accept": "application/json"}
        sent.update(headers or {})
        return self.request(
            "POST", url, headers=sent, content=content, max_bytes=max_bytes, timeout=timeout
        )

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        max_bytes: int | None = None,
        timeout: float | None = None,
    ) -> Response:
        """Send `method` to `url` following checked redirects; the final response, whole.
        `timeout` caps this request's reads and total time (the client's own caps otherwise)."""
        opened = self._open(method, url, dict(headers or {}), content, timeout)
        with opened as (final, response, deadline):
            cap = self._max_bytes if max_bytes is None else max_bytes
            body = b"".join(self._capped(final, response, cap, deadline))
            pairs = tuple(response.headers.multi_items())
            return Response(final, response.status_code, pairs, body)

    def stream(self, url: str, *, max_bytes: int | None = None) -> Iterator[bytes]:
        """The body of a GET of `url` in chunks; a final status other than 200 is `HttpFailed`
        carrying the status."""
        with self._open("GET", url, {}, None, None) as (final, response, deadline):
            status = response.status_code
            if status != 200:
                raise HttpFailed(f"{final}: HTTP {status}", status=status)
            cap = self._max_bytes if max_bytes is None else max_bytes
            yield from self._capped(final, response, cap, deadline)

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()

    def __enter__(self) -> SafeFetch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _open(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        content: bytes | None,
        timeout: float | None,
    ) -> Iterator[tuple[str, httpx.Response, _Deadline]]:
        total = self._total if timeout is None else min(self._total, timeout)
        deadline = _Deadline(self._monotonic() + total, total)
        caps = self._timeout
        if timeout is not None:
            caps = httpx.Timeout(timeout, connect=min(timeout, self._timeout.connect or timeout))
        first = url
        for _hop in range(self._max_redirects + 1):
            target = self.check(url)
            with self._send(method, target, headers, content, deadline, caps) as response:
                location = response.headers.get("location")
                if response.status_code not in REDIRECTS or location is None:
                    yield target.url, response, deadline
                    return
            url = urljoin(target.url, location)
            method, content, headers = _follow(response.status_code, method, content, headers)
            if _origin(url) != _origin(target.url):
                headers = {k: v for k, v in headers.items() if k.lower() not in CREDENTIALS}
        raise HttpFailed(f"{first}: more than {self._max_redirects} redirects")

    def check(self, url: str) -> Target:
        """The target of `url` with its checked address pinned; `EgressRefused` otherwise."""
        decision = self.rules.decide(url)
        if not decision.allowed or decision.target is None:
            rule = f" ({decision.rule})" if decision.rule else ""
            raise EgressRefused(f"{url}: refused: {decision.reason}{rule}")
        target = decision.target
        host = target.host.key
        if self.pins.get(host) is None:
            self.pins.pin(host, self._checked_address(target))
        return target

    def _checked_address(self, target: Target) -> str:
        host = target.host.key
        if target.host.address is not None:
            addresses: Sequence[str] = [target.host.address]
        else:
            addresses = self._resolver(host, target.port)
        if not addresses:
            raise EgressRefused(f"{target.url}: refused: {host} did not resolve to any address")
        for address in addresses:
            why = self._refusal(host, address)
            if why is not None:
                raise EgressRefused(f"{target.url}: refused: {host} is {address}: {why}")
        return addresses[0]

    def _refusal(self, host: str, address: str) -> str | None:
        if host in self._loopback_ok and is_plain_loopback(address):
            return None
        return refusal(address)

    @contextmanager
    def _send(
        self,
        method: str,
        target: Target,
        headers: dict[str, str],
        content: bytes | None,
        deadline: _Deadline,
        caps: httpx.Timeout,
    ) -> Iterator[httpx.Response]:
        self._within(target.url, deadline)
        try:
            with self._client.stream(
                method, target.url, headers=headers, content=content, timeout=caps
            ) as response:
                yield response
        except httpx.HTTPError as exc:
            raise HttpFailed(f"{target.url}: {type(exc).__name__}: {exc}") from None

    def _capped(
        self, url: str, response: httpx.Response, max_bytes: int, deadline: _Deadline
    ) -> Iterator[bytes]:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise HttpFailed(f"{url}: more than {max_bytes} bytes (Content-Length {declared})")
        received = 0
        for chunk in response.iter_bytes(CHUNK):
            received += len(chunk)
            if received > max_bytes:
                raise HttpFailed(f"{url}: more than {max_bytes} bytes")
            self._within(url, deadline)
            yield chunk

    def _within(self, url: str, deadline: _Deadline) -> None:
        if self._monotonic() > deadline.at:
            raise HttpFailed(f"{url}: took longer than {deadline.seconds:g} seconds")


@dataclass(frozen=True)
class _Deadline:
    """When a request must be over (on the injected monotonic clock), and its length."""

    at: float
    seconds: float


def _follow(
    status: int, method: str, content: bytes | None, headers: dict[str, str]
) -> tuple[str, bytes | None, dict[str, str]]:
    """What the next hop sends: 303 (and 301/302 after a POST) become a GET without a body."""
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        dropped = {"content-length", "content-type", "transfer-encoding"}
        return "GET", None, {k: v for k, v in headers.items() if k.lower() not in dropped}
    return method, content, headers


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return scheme + "://" + rest.split("/", 1)[0]
