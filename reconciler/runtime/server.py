"""`cloned gateway`'s MCP server: the SDK's lowlevel `Server`, over stdio or streamable HTTP on
loopback, independent of governance (docs/gateway.md).

It answers `tools/list` from a callable (the pinned definitions; nothing is started or asked),
hands every `tools/call` of a listed tool to one handler (the governed call path, built above
in `governed.gateway`), and tells every connected client when the served tools change: over
`notifications/tools/list_changed` for handshake-era sessions and over `subscriptions/listen`
streams for 2026-07-28 clients, which is the only way that era delivers it.

Over HTTP every request must carry the bearer token and come to a loopback Host, and a
browser's Origin must be loopback too (DNS rebinding); the checks are a plain ASGI wrapper in
front of the SDK's app, which checks Host and Origin again with its own transport security.
uvicorn is imported here, not through `reconciler.web`: the SDK builds the app but leaves
serving it to the caller (docs/architecture.md, the fence table).
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconciler.errors import ClonedError, UsageError

if TYPE_CHECKING:
    import mcp_types
    from mcp.server.context import ServerRequestContext
    from mcp.server.lowlevel import Server
    from mcp.server.session import ServerSession

MCP_PATH = "/mcp"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
NOTIFY_TIMEOUT = 2.0
"""Seconds one client may take to accept a list-changed notification before it is dropped."""
HEADER_SECONDS = 10.0
"""Seconds a connection may take to send a request's headers (uvicorn sets no such limit)."""
MAX_CONNECTIONS = 256
"""Open connections past this are closed at once, so a local flood cannot use up the
gateway's file descriptors (its connectors need them for their pipes)."""

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class ServedTool:
    """One tool the gateway lists: its public name and the pinned wire definition."""

    public_name: str
    """`CONNECTOR__TOOL`."""
    definition: dict[str, Any]
    """The pinned wire definition (camelCase keys), its name replaced by `public_name`."""


@dataclass(frozen=True)
class HandlerResult:
    """What a tool call answers, as wire JSON content blocks."""

    content: tuple[dict[str, Any], ...]
    structured: dict[str, Any] | None = None
    is_error: bool = False


Handler = Callable[[str, dict[str, Any]], Awaitable[HandlerResult]]


class ListenRefused(UsageError):
    """A listen address the gateway will not serve on (not loopback, bad port)."""


def check_listen(host: str, port: int, *, flag: str = "--listen") -> None:
    """Refuse anything but a loopback host and a port in 0..65535 (0 picks a free one)."""
    if not 0 <= port <= 65535:
        raise ListenRefused(f"{flag}: port {port} is out of range (0 to 65535)")
    if host == "localhost":
        return
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ListenRefused(
            f"{flag}: {host!r} is not a loopback address; the gateway listens on 127.0.0.1, "
            "localhost or ::1 only",
            hint="use --listen 127.0.0.1:PORT",
        )


def url_for(host: str, port: int) -> str:
    """The URL clients connect to for a listen address."""
    name = host.strip("[]")
    shown = "127.0.0.1" if name == "localhost" else name
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}{MCP_PATH}"


def allowed_hosts(port: int) -> list[str]:
    """The Host header values a request may carry: a loopback name and the listen port."""
    return [f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"]


def allowed_origins(port: int) -> list[str]:
    """The Origin header values a browser request may carry (none is fine too)."""
    return [f"http://127.0.0.1:{port}", f"http://localhost:{port}", f"http://[::1]:{port}"]


class GatewayServer:
    """An MCP server listing `tools()` and sending each call to `handler`."""

    def __init__(
        self,
        *,
        name: str,
        version: str,
        tools: Callable[[], list[ServedTool]],
        handler: Handler,
    ) -> None:
        from mcp.server.subscriptions import InMemorySubscriptionBus

        self._tools = tools
        self._handler = handler
        self._bus = InMemorySubscriptionBus()
        self._sessions: set[ServerSession] = set()
        self._server = _build_server(self, name=name, version=version)

    async def serve_stdio(self) -> None:
        """Serve one client over this process's stdin and stdout until stdin closes."""
        from mcp.server.stdio import stdio_server

        from reconciler.runtime.stdio import loop_stdio

        # Pipes are served on the event loop (no thread hop per message); anything else gets
        # the SDK's own streams.
        async with loop_stdio() as own:
            streams: Any = {} if own is None else {"stdin": own[0], "stdout": own[1]}
            async with stdio_server(**streams) as (read_stream, write_stream):
                await self._server.run(
                    read_stream, write_stream, self._server.create_initialization_options()
                )

    async def serve_http(
        self,
        host: str,
        port: int,
        *,
        token: str,
        ready: Callable[[int], None] | None = None,
    ) -> None:
        """Serve streamable HTTP on a loopback address until cancelled."""
        check_listen(host, port)
        with _listening_socket(host, port) as sock:
            bound = int(sock.getsockname()[1])
            app = self._http_app(bound, token)
            # The socket listens already, so a client connecting now waits in its backlog
            # until uvicorn accepts: ready() can be told at once.
            if ready is not None:
                ready(bound)
            await _serve_asgi(app, sock)

    async def tools_changed(self) -> None:
        """Tell every connected client that the tool list changed."""
        import anyio
        from mcp.server.subscriptions import ToolsListChanged

        await self._bus.publish(ToolsListChanged())
        for session in list(self._sessions):
            try:
                with anyio.fail_after(NOTIFY_TIMEOUT):
                    await session.send_tool_list_changed()
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, TimeoutError):
                # That client went away (or stopped reading): it gets no more notices.
                self._sessions.discard(session)

    def _http_app(self, port: int, token: str) -> ASGIApp:
        from mcp.server.transport_security import TransportSecuritySettings

        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=allowed_hosts(port),
            allowed_origins=allowed_origins(port),
        )
        app = self._server.streamable_http_app(
            streamable_http_path=MCP_PATH, transport_security=security, host="127.0.0.1"
        )
        return guard(app, token=token, port=port)

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: mcp_types.PaginatedRequestParams | None
    ) -> mcp_types.ListToolsResult:
        import mcp_types

        definitions = [tool.definition for tool in self._tools()]
        return mcp_types.ListToolsResult.model_validate({"tools": definitions})

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: mcp_types.CallToolRequestParams
    ) -> mcp_types.CallToolResult:
        import mcp_types

        name = params.name
        if all(tool.public_name != name for tool in self._tools()):
            return _tool_error(f"no tool named {name!r} is served by this gateway")
        try:
            result = await self._handler(name, dict(params.arguments or {}))
        except ClonedError as exc:
            return _tool_error(str(exc))
        body: dict[str, Any] = {"content": list(result.content), "isError": result.is_error}
        if result.structured is not None:
            body["structuredContent"] = result.structured
        return mcp_types.CallToolResult.model_validate(body)

    def _input_schema(self, name: str) -> dict[str, Any] | None:
        for tool in self._tools():
            if tool.public_name == name:
                schema = tool.definition.get("inputSchema")
                return dict(schema) if isinstance(schema, dict) else None
        return None

    async def _track(self, ctx: ServerRequestContext[Any], call_next: Any) -> Any:
        # A handshake-era client is ready for notifications once it says `initialized`; its
        # session's connection-scoped channel is where list-changed goes.
        result = await call_next(ctx)
        if ctx.method == "notifications/initialized":
            self._sessions.add(ctx.session)
        return result


def _build_server(gateway: GatewayServer, *, name: str, version: str) -> Server[Any]:
    from mcp.server.lowlevel import NotificationOptions, Server
    from mcp.server.models import InitializationOptions
    from mcp.server.subscriptions import ListenHandler

    class _Server(Server[Any]):
        # The HTTP session manager builds the handshake's options itself, with no way to pass
        # any: advertise `tools.listChanged` on every transport here.
        def create_initialization_options(
            self,
            notification_options: NotificationOptions | None = None,
            experimental_capabilities: dict[str, dict[str, Any]] | None = None,
            extensions: dict[str, dict[str, Any]] | None = None,
        ) -> InitializationOptions:
            return super().create_initialization_options(
                notification_options or NotificationOptions(tools_changed=True),
                experimental_capabilities,
                extensions,
            )

    server = _Server(
        name,
        version=version,
        on_list_tools=gateway._list_tools,
        on_call_tool=gateway._call_tool,
        on_subscriptions_listen=ListenHandler(gateway._bus),
        get_tool_input_schema=gateway._input_schema,
    )
    server.middleware.append(gateway._track)
    return server


def _tool_error(message: str) -> mcp_types.CallToolResult:
    import mcp_types

    return mcp_types.CallToolResult(
        content=[mcp_types.TextContent(type="text", text=message)], is_error=True
    )


def guard(app: ASGIApp, *, token: str, port: int) -> ASGIApp:
    """`app` behind the gateway's HTTP checks: a loopback Host with the listen port and a
    loopback Origin when there is one (else 403), then the bearer token (else 401)."""
    hosts = {value.encode() for value in allowed_hosts(port)}
    origins = {value.encode() for value in allowed_origins(port)}
    expected = f"Bearer {token}".encode()

    async def checked(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = {}
        for key, value in scope.get("headers", ()):
            headers.setdefault(bytes(key).lower(), bytes(value))
        origin = headers.get(b"origin")
        if headers.get(b"host") not in hosts or (origin is not None and origin not in origins):
            await _refuse(send, 403, "forbidden: Host and Origin must be this loopback gateway")
            return
        # Constant time, so the token cannot be guessed byte by byte from response times.
        if not hmac.compare_digest(headers.get(b"authorization", b""), expected):
            await _refuse(send, 401, "unauthorized: a bearer token is required")
            return
        await app(scope, receive, send)

    return checked


async def _refuse(send: Send, status: int, message: str) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8")]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="cloned-gateway"'))
    body = message.encode()
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@contextlib.contextmanager
def _listening_socket(host: str, port: int) -> Iterator[socket.socket]:
    name = host.strip("[]")
    family = socket.AF_INET6 if ":" in name else socket.AF_INET
    address = "127.0.0.1" if name == "localhost" else name
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError as exc:
            message = f"--listen: cannot listen on {host}:{port}: {exc.strerror}"
            raise ListenRefused(message) from None
        sock.listen(128)
        sock.setblocking(False)
        yield sock
    finally:
        sock.close()


async def _serve_asgi(app: ASGIApp, sock: socket.socket) -> None:
    import anyio
    import uvicorn

    class _Uvicorn(uvicorn.Server):
        # The gateway handles SIGTERM/SIGINT itself (it stops its connectors too); uvicorn's
        # own handlers would re-raise the signal after shutdown.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    config = uvicorn.Config(
        app,
        http=_guarded_protocol(),
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    server = _Uvicorn(config)
    done = anyio.Event()

    async def run() -> None:
        # Shielded: a cancelled gateway asks uvicorn to stop (below) instead of cutting it off
        # mid-shutdown, so the SDK's session manager closes its sessions.
        with anyio.CancelScope(shield=True):
            try:
                await server.serve(sockets=[sock])
            finally:
                done.set()

    async with anyio.create_task_group() as group:
        group.start_soon(run)
        try:
            await done.wait()
        finally:
            server.should_exit = True
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                await done.wait()


def _guarded_protocol() -> type[Any]:
    """uvicorn's h11 protocol with a deadline on each request's headers and a connection cap:
    without them any local process holds connections open forever by sending nothing
    (slowloris), before the token is ever checked."""
    import asyncio

    from uvicorn.protocols.http.h11_impl import H11Protocol

    class _Guarded(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            if len(self.connections) > MAX_CONNECTIONS:
                transport.close()
                return
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = self.loop.call_later(HEADER_SECONDS, self._too_slow)

        def _too_slow(self) -> None:
            # Only between requests: a request whose headers came is the app's to finish
            # (a streamed answer may rightly last long).
            if self.cycle is None or self.cycle.response_complete:
                self.transport.close()

    return _Guarded
