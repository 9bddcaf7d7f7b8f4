"""The egress proxy: how a sandboxed connector process reaches the hosts it may reach.

A connector in the sandbox has a network namespace with loopback only; its `HTTP(S)_PROXY`
points at the forwarder inside it (`forwarder.py`), which carries each TCP connection over a
Unix socket to one `EgressProxy`, run by the gateway for that connector. For each connection
the proxy reads the request head (`proxyrequest.py`), then, exactly as SafeFetch does:

1. the connector's `EgressRules` decide on the target (deny wins; https only, so a plain http
   request needs `insecureHosts`; a CONNECT tunnel counts as https);
2. the name is resolved ONCE with the injected resolver (an address literal is its own answer)
   and every answer is checked by `addresses.refusal`; one refused answer refuses the host;
3. the proxy connects to the first checked address itself (never to the name), so a second
   DNS answer cannot move the connection;
4. bytes are piped both ways within an idle and a total time cap, and counted.

A refusal answers 403 with a one-line reason, a bad request 400 (411, 431), an unreachable
target 502 or 504: never a stack trace. Every connection, refused ones included, ends in one
`Connection` record handed to `on_connection` (the gateway audits it as `egress.connection`).
The one exception to the address rules is a local service the rules name literally with a
port (`EgressRules.local_services`): that host may resolve to a plain loopback address on that
port only. `allow_loopback_for` is the tests' exception: the hosts it names may resolve to a
plain loopback address on any port. specs/egress.md, "Proxy", is the contract."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from reconciler.egress.addresses import is_plain_loopback, refusal
from reconciler.egress.hostnames import Target
from reconciler.egress.proxyrequest import (
    BadRequest,
    ProxyRequest,
    body_length,
    forwarded_head,
    parse_head,
    read_head,
)
from reconciler.egress.rules import EgressRules
from reconciler.egress.unixsocket import bind_unix
from reconciler.errors import ClonedError

Resolver = Callable[[str, int], Sequence[str]]
"""`(host, port) -> addresses`, in the order they should be tried (SafeFetch's signature)."""

OnConnect = Callable[[str, str, int], None]
"""Called with `(host, address, port)` just before the proxy connects; raising stops it."""

Decision = Literal["allowed", "refused", "invalid", "failed"]

LOG = logging.getLogger(__name__)
CHUNK = 64 * 1024
READ_LIMIT = 64 * 1024  # the stream buffer; the head itself is capped at MAX_HEAD
REASONS = {400: "Bad Request", 403: "Forbidden", 411: "Length Required", 502: "Bad Gateway"}
REASONS |= {431: "Request Header Fields Too Large", 504: "Gateway Timeout"}


def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's answer for `host` (getaddrinfo), each address once."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise Unreachable(f"{host}: could not resolve ({exc})") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class Unreachable(ClonedError):
    """An allowed target that could not be resolved or connected to (answered 502 or 504)."""


@dataclass(frozen=True)
class Connection:
    """One connection through the proxy, as the audit log records it (`egress.connection`).

    `decision` is `allowed` (the tunnel or request was forwarded), `refused` (403: the rules or
    an address refused it), `invalid` (a bad request head) or `failed` (allowed, but the target
    could not be resolved or reached). `bytes_up` counts what reached the target (a forwarded
    head included), `bytes_down` what the target sent back."""

    connector: str
    host: str
    port: int
    address: str | None
    decision: Decision
    reason: str
    bytes_up: int = 0
    bytes_down: int = 0
    seconds: float = 0.0
    method: str = ""
    rule: str | None = None


OnConnection = Callable[[Connection], "Awaitable[None] | None"]


@dataclass
class _Exchange:
    """What one client connection has come to so far (turned into its `Connection`)."""

    started: float
    host: str = ""
    port: int = 0
    address: str | None = None
    method: str = ""
    rule: str | None = None
    up: int = 0
    down: int = 0
    last: float = field(default=0.0)


class EgressProxy:
    """An HTTP forward proxy for one connector on a Unix socket at `path` (see the module)."""

    def __init__(
        self,
        connector: str,
        rules: EgressRules,
        *,
        path: Path,
        resolver: Resolver = system_resolver,
        on_connection: OnConnection | None = None,
        on_connect: OnConnect | None = None,
        allow_loopback_for: Iterable[str] = (),
        connect_timeout: float = 10.0,
        head_timeout: float = 10.0,
        idle_timeout: float = 120.0,
        total_timeout: float = 3600.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connector = connector
        self.rules = rules
        self.path = path
        self._resolver = resolver
        self._on_connection = on_connection
        self._on_connect = on_connect
        self._loopback_ok = frozenset(host.lower().rstrip(".") for host in allow_loopback_for)
        self._local = rules.local_services()
        self._connect_timeout = connect_timeout
        self._head_timeout = head_timeout
        self._idle = idle_timeout
        self._total = total_timeout
        self._monotonic = monotonic
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen on `path` (0600, in a 0700 folder), replacing a stale socket left there."""
        sock = bind_unix(self.path)
        self._server = await asyncio.start_unix_server(self._serve, sock=sock, limit=READ_LIMIT)

    async def close(self) -> None:
        """Stop listening, end every open connection and remove the socket."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def __aenter__(self) -> EgressProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        exchange = _Exchange(started=self._monotonic())
        try:
            record = await self._exchange(reader, writer, exchange)
        except asyncio.CancelledError:
            # Only `close` cancels a connection's task; ending it normally rather than
            # re-raising keeps Python 3.11's stream callback from logging the cancellation.
            record = self._record(exchange, _ended(exchange), "closed by the proxy's shutdown")
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()
        await self._report(record)

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, exchange: _Exchange
    ) -> Connection:
        try:
            request = await self._request(reader)
        except BadRequest as exc:
            if exc.target is not None:
                exchange.host, exchange.port = exc.target.host.text, exc.target.port
            await _answer(writer, exc.status, exc.reason)
            return self._record(exchange, "invalid", exc.reason)
        target = request.target
        exchange.host, exchange.port = target.host.text, target.port
        exchange.method = request.method
        # A tunnel's target is https (its bytes are opaque); a forwarded request's, its URL's.
        decision = self.rules.decide_target(target)
        if not decision.allowed:
            await _answer(writer, 403, f"refused: {decision.reason}")
            return self._record(exchange, "refused", decision.reason, rule=decision.rule)
        exchange.rule = decision.rule
        return await self._forward(request, reader, writer, exchange)

    async def _request(self, reader: asyncio.StreamReader) -> ProxyRequest:
        try:
            lines = await asyncio.wait_for(read_head(reader), self._head_timeout)
        except TimeoutError:
            raise BadRequest(400, f"no request head within {self._head_timeout:g} s") from None
        return parse_head(lines)

    async def _forward(
        self,
        request: ProxyRequest,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        exchange: _Exchange,
    ) -> Connection:
        try:
            address = await self._checked_address(request.target)
        except _Refused as exc:
            await _answer(writer, 403, f"refused: {exc.reason}")
            return self._record(exchange, "refused", exc.reason, address=exc.address)
        except Unreachable as exc:
            await _answer(writer, 502, str(exc))
            return self._record(exchange, "failed", str(exc))
        exchange.address = address
        try:
            up_reader, up_writer = await self._connect(request.target, address)
        except Unreachable as exc:
            await _answer(writer, 504 if "timed out" in str(exc) else 502, str(exc))
            return self._record(exchange, "failed", str(exc))
        try:
            why = await self._relay(request, reader, writer, up_reader, up_writer, exchange)
        finally:
            up_writer.close()
        return self._record(exchange, "allowed", why)

    async def _checked_address(self, target: Target) -> str:
        host = target.host.key
        if target.host.address is not None:
            addresses: Sequence[str] = [target.host.address]
        else:
            try:
                addresses = await asyncio.to_thread(self._resolver, host, target.port)
            except Unreachable:
                raise
            except (ClonedError, OSError) as exc:  # SafeFetch's resolver raises HttpFailed
                raise Unreachable(f"{host}: could not resolve ({exc})") from None
        if not addresses:
            raise _Refused(f"{host} did not resolve to any address", None)
        for address in addresses:
            local = host in self._loopback_ok or (host, target.port) in self._local
            if local and is_plain_loopback(address):
                continue
            why = refusal(address)
            if why is not None:
                raise _Refused(f"{host} is {address}: {why}", address)
        return addresses[0]

    async def _connect(
        self, target: Target, address: str
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        where = f"{target.host.text}:{target.port} ({address})"
        try:
            if self._on_connect is not None:
                self._on_connect(target.host.key, address, target.port)
            return await asyncio.wait_for(
                asyncio.open_connection(address, target.port, limit=READ_LIMIT),
                self._connect_timeout,
            )
        except TimeoutError:
            raise Unreachable(f"{where}: connecting timed out") from None
        except OSError as exc:
            raise Unreachable(f"{where}: could not connect ({exc.strerror or exc})") from None

    async def _relay(
        self,
        request: ProxyRequest,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
        exchange: _Exchange,
    ) -> str:
        """Pipe both ways until both ends are done or a cap is reached; why it ended."""
        exchange.last = self._monotonic()
        if request.tunnel:
            writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            up = self._copy(reader, up_writer, exchange, "up", None)
        else:
            head = forwarded_head(request)
            up_writer.write(head)
            exchange.up += len(head)
            up = self._copy(reader, up_writer, exchange, "up", body_length(request))
        down = self._copy(up_reader, writer, exchange, "down", None)
        return await self._watch({asyncio.ensure_future(up), asyncio.ensure_future(down)}, exchange)

    async def _watch(self, pending: set[asyncio.Future[None]], exchange: _Exchange) -> str:
        deadline = exchange.started + self._total
        try:
            while pending:
                now = self._monotonic()
                wait = min(deadline - now, exchange.last + self._idle - now)
                if deadline <= now:
                    return f"closed after the {self._total:g} s total time cap"
                if wait <= 0:
                    return f"closed after {self._idle:g} s without traffic"
                done, pending = await asyncio.wait(
                    pending, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    if task.exception() is not None:
                        return f"closed: {_short(task.exception())}"
            return "closed by the ends"
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _copy(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        exchange: _Exchange,
        direction: Literal["up", "down"],
        limit: int | None,
    ) -> None:
        """Copy `source` to `sink` (at most `limit` bytes), then half-close `sink`."""
        remaining = limit
        while remaining is None or remaining > 0:
            data = await source.read(CHUNK if remaining is None else min(CHUNK, remaining))
            if not data:
                break
            sink.write(data)
            await sink.drain()
            exchange.last = self._monotonic()
            if direction == "up":
                exchange.up += len(data)
            else:
                exchange.down += len(data)
            if remaining is not None:
                remaining -= len(data)
        if limit is None and sink.can_write_eof():
            # A tunnel's end finished sending: tell the other end, keep the reverse open.
            with contextlib.suppress(OSError):
                sink.write_eof()

    def _record(
        self,
        exchange: _Exchange,
        decision: Decision,
        reason: str,
        *,
        address: str | None = None,
        rule: str | None = None,
    ) -> Connection:
        return Connection(
            connector=self.connector,
            host=exchange.host,
            port=exchange.port,
            address=exchange.address or address,
            decision=decision,
            reason=reason,
            bytes_up=exchange.up,
            bytes_down=exchange.down,
            seconds=round(self._monotonic() - exchange.started, 6),
            method=exchange.method,
            rule=rule or exchange.rule,
        )

    async def _report(self, record: Connection) -> None:
        if self._on_connection is None:
            return
        try:
            result = self._on_connection(record)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:  # noqa: BLE001 - the bytes have moved; say so, keep serving
            LOG.error("egress proxy %s: recording a connection failed: %s", self.connector, exc)


class _Refused(Exception):
    def __init__(self, reason: str, address: str | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.address = address


async def _answer(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    """A short error response: the status and the one-line reason as its body."""
    body = (" ".join(reason.split()) + "\n").encode("utf-8", "replace")
    head = (
        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    with contextlib.suppress(OSError):
        writer.write(head.encode("ascii") + body)
        await writer.drain()


def _ended(exchange: _Exchange) -> Decision:
    """The decision of a connection the proxy's shutdown ended: forwarded once it connected."""
    return "allowed" if exchange.address is not None else "failed"


def _short(exc: BaseException | None) -> str:
    return f"{type(exc).__name__}: {exc}" if exc is not None else "no error"
