"""Loopback targets and a client for the egress proxy's tests: an echo server (what a CONNECT
tunnel carries), a plain http server that answers with what it was sent, and a resolver
double that records each lookup. Every socket here is on 127.0.0.1 or a Unix socket."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.egress.proxy import Connection, EgressProxy
from reconciler.egress.rules import EgressRules
from reconciler.model.kinds import ConnectorEgress

TARGET = "target.test"  # the loopback test site's name (resolved by `Resolver` only)
LOOPBACK = {TARGET: [["127.0.0.1"]]}


@dataclass
class Resolver:
    """A resolver double: `answers[host]` (a list, or a list of lists used in turn)."""

    answers: dict[str, list[list[str]]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        turns = self.answers.get(host) or [[]]
        return turns.pop(0) if len(turns) > 1 else turns[0]


@dataclass
class Seen:
    """What a proxy reported and where it connected."""

    records: list[Connection] = field(default_factory=list)
    connects: list[tuple[str, str, int]] = field(default_factory=list)

    def on_connect(self, host: str, address: str, port: int) -> None:
        self.connects.append((host, address, port))
        # No test packet may leave this machine: only loopback is ever connected to.
        if not ipaddress.ip_address(address).is_loopback:
            raise ConnectionRefusedError(111, "a test never connects beyond loopback")

    async def record(self, count: int = 1, timeout: float = 5.0) -> list[Connection]:
        """The first `count` records, waiting (polling, with a deadline) for them."""
        deadline = time.monotonic() + timeout
        while len(self.records) < count:
            assert time.monotonic() < deadline, f"{len(self.records)} of {count} records"
            await asyncio.sleep(0.002)
        return self.records


def rules(*hosts: str, insecure: Sequence[str] = ()) -> EgressRules:
    """The rules of connector `weather` allowing `hosts` (`insecure` over http)."""
    egress = ConnectorEgress.model_validate(
        {"allowHosts": list(hosts), "insecureHosts": list(insecure)}
    )
    return EgressRules.for_connector("weather", egress)


@contextlib.asynccontextmanager
async def serving(handler: Callable[..., object]) -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1 running `handler`; its port."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)  # type: ignore[arg-type]
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Echo until the client half-closes, then close."""
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def http_site(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer one request with its own head and body (so tests see what was forwarded)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    body = head + (await reader.readexactly(length) if length else b"")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    await writer.drain()
    writer.close()


def proxy(
    tmp_path: Path, egress: EgressRules, resolver: Resolver, seen: Seen, **kw: object
) -> EgressProxy:
    """The proxy of connector `weather` with the test's loopback allowance for `TARGET`."""
    return EgressProxy(
        "weather",
        egress,
        path=tmp_path / "egress" / "weather.sock",
        resolver=resolver,
        on_connection=seen.records.append,
        on_connect=seen.on_connect,
        allow_loopback_for=[TARGET],
        **kw,  # type: ignore[arg-type]
    )


async def exchange(path: Path, data: bytes) -> bytes:
    """Send `data` to the proxy at `path`, half-close, and read everything it answers."""
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(data)
    await writer.drain()
    writer.write_eof()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


def status(answer: bytes) -> int:
    """The status code of an HTTP response."""
    return int(answer.split(b" ", 2)[1])


def body(answer: bytes) -> bytes:
    """The body of an HTTP response."""
    return answer.split(b"\r\n\r\n", 1)[1]
