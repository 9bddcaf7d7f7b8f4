"""The HTTP exchange under SafeFetch: an httpx client that can only connect where it was told.

SafeFetch (`safefetch.py`) decides which host may be reached and which address that host is;
this module makes the connection go exactly there. Its httpx transport runs on an httpcore
connection pool whose network backend looks each host up in a table of checked addresses
(`Pins`) and connects to that address: no second DNS lookup happens anywhere, so a resolver
that answers differently the second time (DNS rebinding) cannot move the connection, and a
host nobody checked is never connected to at all. TLS SNI, certificate checks and the Host
header still use the name, because the URL keeps it. No proxy is read from the environment
and no redirect is followed here."""

from __future__ import annotations

import ssl
import typing
from collections.abc import Callable, Iterable, Iterator

import httpcore
import httpx

# httpcore's own alias (httpcore._backends.base.SOCKET_OPTION), spelled out: it is private.
SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)

OnConnect = Callable[[str, str, int], None]
"""Called with `(host, address, port)` just before a socket connects; raising stops it."""


class Pins:
    """Checked addresses by host (a name or an address, as the URL's host is): the only places
    the backend connects to."""

    def __init__(self) -> None:
        self._addresses: dict[str, str] = {}

    def get(self, host: str) -> str | None:
        """The checked address of `host`, or None."""
        return self._addresses.get(host)

    def pin(self, host: str, address: str) -> None:
        """Record `address` as the one `host` is reached at."""
        self._addresses[host] = address


class PinnedBackend(httpcore.SyncBackend):
    """httpcore's socket backend, connecting to the pinned address of the host it is given."""

    def __init__(self, pins: Pins, on_connect: OnConnect | None = None) -> None:
        self._pins = pins
        self._on_connect = on_connect

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        address = self._pins.get(host)
        if address is None:
            # Unreachable through SafeFetch, which pins before it sends: a last line of defence.
            raise httpcore.ConnectError(f"{host}: no checked address; not connecting")
        if self._on_connect is not None:
            self._on_connect(host, address, port)
        options = list(socket_options or ())
        return super().connect_tcp(address, port, timeout, local_address, options)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not an egress destination")


class PinnedTransport(httpx.BaseTransport):
    """httpx's default transport, reduced to a pool over `PinnedBackend` (HTTP/1.1, no retry)."""

    def __init__(
        self,
        pins: Pins,
        ssl_context: ssl.SSLContext | None = None,
        on_connect: OnConnect | None = None,
    ) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
            network_backend=PinnedBackend(pins, on_connect),
            retries=0,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` over the pool, mapping httpcore's errors onto httpx's."""
        assert isinstance(request.stream, httpx.SyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            response = self._pool.handle_request(core)
        except (TimeoutError, httpcore.TimeoutException) as exc:
            raise httpx.TimeoutException(str(exc), request=request) from exc
        except httpcore.NetworkError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except httpcore.ProtocolError as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        assert isinstance(response.stream, typing.Iterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        """Close every pooled connection."""
        self._pool.close()


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: typing.Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._stream
        except (TimeoutError, httpcore.TimeoutException) as exc:
            raise httpx.ReadTimeout(str(exc)) from exc
        except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise httpx.ReadError(str(exc)) from exc

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


def pinned_client(
    pins: Pins, ssl_context: ssl.SSLContext | None = None, on_connect: OnConnect | None = None
) -> httpx.Client:
    """An httpx client that connects only to `pins`, follows no redirect, reads no proxy."""
    return httpx.Client(
        transport=PinnedTransport(pins, ssl_context, on_connect),
        follow_redirects=False,
        trust_env=False,
    )
