"""The supervisor: the one place Cloned talks MCP to connector servers over stdio.

A connector starts lazily on its first request, one `Connection` task per run inside the
supervisor's task group; concurrent requests share its session. Crashes, failed starts and
pings feed its `Health` (backoff, circuit breaker), and the next request starts it again when
that allows. A Launch is looked up by name: one whose command, folder or environment differ
from the running one's restarts it (an upgrade). `aclose()` stops every child and the reaper
kills them all if this process dies first. Everything returned is plain data (runtime/types).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from reconciler.clock import SYSTEM, Clock
from reconciler.redact import Redactor
from reconciler.runtime.connection import Connection, exit_text
from reconciler.runtime.health import Health
from reconciler.runtime.process import Reaper
from reconciler.runtime.types import (
    ConnectorStatus,
    Launch,
    ProcessState,
    RuntimeFailure,
    Settings,
    ToolResult,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from anyio.abc import TaskGroup
    from mcp.client.session import ClientSession

CLOSED_MESSAGE = "Connection closed"
"""How the SDK words a connection that closed under a request (with CONNECTION_CLOSED)."""
T = TypeVar("T")
MAX_PAGES = 1000
"""A tools/list that pages on past this is refused (a server looping its cursor)."""


@dataclass
class _Entry:
    """What the supervisor keeps of one connector across its runs."""

    launch: Launch
    health: Health
    lock: Any
    conn: Connection | None = None
    inflight: int = 0
    last_used: float = 0.0


class Supervisor:
    """Starts, multiplexes, supervises and stops connector servers (async context manager)."""

    def __init__(
        self, *, settings: Settings = Settings(), redactor: Redactor, clock: Clock = SYSTEM
    ) -> None:
        self._settings = settings
        self._redactor = redactor
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._group: TaskGroup | None = None
        self._reaper = Reaper()

    async def __aenter__(self) -> Supervisor:
        import anyio

        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def list_tools(self, launch: Launch) -> list[dict[str, Any]]:
        """Every tool the server lists now (all pages), as wire JSON, redacted; a listing that
        takes over `start_timeout`, repeats a cursor or passes `max_message_bytes` in all is
        refused.

        A definition is what the connector sent, and a connector may put a secret it was
        granted in it (a description, a title, a schema's default). It is masked here, before
        anything keeps it: the listing and the pins are stored in the state database and shown
        later by processes that never read that secret (`connectors tools`, the gateway's own
        tools/list), whose redactor could not mask it. Every start registers the connector's
        secrets before it lists, so the pins and a later live listing are masked alike."""
        timeout = self._settings.start_timeout

        async def pages(session: ClientSession) -> list[dict[str, Any]]:
            import anyio

            try:
                with anyio.fail_after(timeout):
                    return await self._pages(launch, session)
            except TimeoutError:
                raise RuntimeFailure(
                    "timeout", f"connector {launch.name}: tools/list took over {timeout:g}s"
                ) from None

        return await self._request(launch, "tools/list", pages, timeout)

    async def _pages(self, launch: Launch, session: ClientSession) -> list[dict[str, Any]]:
        import json

        from mcp_types import PaginatedRequestParams

        tools: list[dict[str, Any]] = []
        cursors: set[str] = set()
        size = 0
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            params = PaginatedRequestParams(cursor=cursor) if cursor is not None else None
            result = await session.list_tools(params=params)
            page = [self._redactor.data(_wire(tool)) for tool in result.tools]
            # Each page is bounded by the message cap; the whole listing is bounded too, or
            # a server paging on would hold MAX_PAGES messages' worth in memory.
            size += len(json.dumps(page))
            if size > self._settings.max_message_bytes:
                raise RuntimeFailure(
                    "too-large",
                    f"connector {launch.name} listed over {self._settings.max_message_bytes} "
                    "bytes of tools",
                )
            tools += page
            cursor = result.next_cursor
            if cursor is None:
                return tools
            if cursor in cursors:
                again = f"repeated the tools/list cursor {cursor[:40]!r}"
                raise RuntimeFailure("protocol", f"connector {launch.name} {again}")
            cursors.add(cursor)
        raise RuntimeFailure("protocol", f"connector {launch.name} listed over {MAX_PAGES} pages")

    async def call_tool(
        self, launch: Launch, tool: str, arguments: dict[str, Any], *, timeout: float
    ) -> ToolResult:
        """Call `tool`; `RuntimeFailure("timeout")` after `timeout` seconds (the request is
        cancelled and the server told), `"unavailable"` when the connector cannot serve it."""

        async def call(session: ClientSession) -> ToolResult:
            result = await session.call_tool(tool, arguments, read_timeout_seconds=timeout)
            data = _wire(result)
            return ToolResult(
                content=tuple(data.get("content") or ()),
                structured=data.get("structuredContent"),
                is_error=bool(data.get("isError", False)),
            )

        return await self._request(launch, f"tool {tool}", call, timeout)

    def status(self, name: str) -> ConnectorStatus:
        """What is known of connector `name` (stopped and closed when never used)."""
        entry = self._entries.get(name)
        if entry is None:
            return ConnectorStatus(name=name, process="stopped", breaker="closed")
        health, conn = entry.health, entry.conn
        process: ProcessState = "stopped"
        if conn is not None and not conn.done.is_set():
            process = "running" if conn.ready else "starting"
        elif health.failures and health.breaker == "closed" and health.retry_in():
            process = "backoff"
        pid = (
            conn.process.pid if conn is not None and conn.process and process != "stopped" else None
        )
        return ConnectorStatus(
            name=name,
            process=process,
            breaker=health.breaker,
            pid=pid,
            restarts=health.restarts,
            consecutive_failures=health.failures,
            last_error=health.last_error,
            retry_in=health.retry_in(),
        )

    def statuses(self) -> list[ConnectorStatus]:
        """The status of every connector used so far, by name."""
        return [self.status(name) for name in sorted(self._entries)]

    async def stop(self, name: str) -> None:
        """Stop connector `name` (if running) and wait until its process group is gone."""
        entry = self._entries.get(name)
        if entry is not None:
            async with entry.lock:
                await _stopped(entry.conn)

    async def aclose(self) -> None:
        """Stop every connector, wait until no child is left, end the task group."""
        import anyio

        group, self._group = self._group, None
        if group is None:
            return
        try:
            with anyio.CancelScope(shield=True):
                async with anyio.create_task_group() as stopping:
                    for entry in self._entries.values():
                        stopping.start_soon(_stopped, entry.conn)
        finally:
            group.cancel_scope.cancel()
            await group.__aexit__(None, None, None)
            self._reaper.close()

    async def _request(
        self,
        launch: Launch,
        what: str,
        send: Callable[[ClientSession], Awaitable[T]],
        budget: float,
    ) -> T:
        """Run one request on the connector's session, starting it first if needed."""
        entry = self._entry(launch)
        entry.inflight += 1
        entry.last_used = self._clock.monotonic()
        try:
            conn = await self._ensure(entry, launch, budget)
            result = await self._send(conn, what, send, budget)
            entry.health.succeeded()
            return result
        finally:
            entry.inflight -= 1
            entry.last_used = self._clock.monotonic()

    async def _send(
        self,
        conn: Connection,
        what: str,
        send: Callable[[ClientSession], Awaitable[T]],
        timeout: float,
    ) -> T:
        """Map what the SDK raises to the runtime's failures (messages redacted)."""
        import anyio
        from mcp.shared.exceptions import MCPError
        from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT

        name = conn.launch.name
        session = conn.session
        try:
            if session is None:
                raise MCPError(CONNECTION_CLOSED, "Connection closed")
            return await send(session)
        except MCPError as exc:
            if exc.code == REQUEST_TIMEOUT:
                raise RuntimeFailure(
                    "timeout",
                    f"connector {name}: {what} timed out after {timeout:g}s; the request was "
                    "cancelled",
                ) from None
            # The SDK reports a closed connection as code -32000, "Connection closed"; but
            # -32000 is also the first code of JSON-RPC's server-error range, which servers
            # use for their own errors: only the SDK's exact report means the pipe is gone.
            closed = exc.code == CONNECTION_CLOSED and exc.message == CLOSED_MESSAGE
            if not closed or exc.error.data is not None:
                message = self._redactor.text(exc.message)
                raise RuntimeFailure(
                    "protocol", f"connector {name}: {what} failed: {message} ({exc.code})"
                ) from None
            with anyio.move_on_after(self._settings.terminate_grace * 2 + 5):
                await conn.done.wait()
            raise _ended_during(conn) from None
        except (RuntimeError, ValueError) as exc:  # a result that is not what MCP allows
            message = self._redactor.text(str(exc))
            raise RuntimeFailure(
                "protocol", f"connector {name}: {what}: invalid answer: {message}"
            ) from None

    async def _ensure(self, entry: _Entry, launch: Launch, budget: float) -> Connection:
        """The connector's ready run, started (backoff and breaker permitting) if needed."""
        async with entry.lock:
            if entry.conn is not None and _differs(entry.launch, launch):
                await _stopped(entry.conn)  # an upgrade: the new Launch starts afresh
                entry.health = Health(launch.name, settings=self._settings, clock=self._clock)
            entry.launch = launch
            conn = entry.conn
            if conn is not None and conn.ready:
                return conn
            await _stopped(conn)
            return await self._start(entry, launch, budget)

    async def _start(self, entry: _Entry, launch: Launch, budget: float) -> Connection:
        import anyio

        wait = entry.health.wait()
        if wait > budget:
            raise RuntimeFailure(
                "unavailable",
                f"connector {launch.name} is backing off after a failure "
                f"({entry.health.last_error}); next start in {wait:.1f}s",
            )
        if wait > 0:
            await anyio.sleep(wait)
        if self._group is None:
            raise RuntimeFailure(
                "unavailable", f"connector {launch.name}: the supervisor is closed"
            )
        entry.health.starting()
        conn = Connection(
            launch,
            settings=self._settings,
            redactor=self._redactor,
            clock=self._clock,
            reaper=self._reaper,
            idle_since=lambda: None if entry.inflight else entry.last_used,
            on_end=lambda ended: self._ended(entry, ended),
        )
        entry.conn = conn
        self._group.start_soon(conn.run, name=f"connector {launch.name}")
        await conn.settled.wait()
        if not conn.ready:
            raise RuntimeFailure("unavailable", conn.failure or f"connector {launch.name} stopped")
        entry.health.started()
        return conn

    def _ended(self, entry: _Entry, conn: Connection) -> None:
        """A run ended: count a failure, forget the run."""
        if conn.failure is not None:
            entry.health.failed(conn.failure)
        if entry.conn is conn:
            entry.conn = None

    def _entry(self, launch: Launch) -> _Entry:
        import anyio

        entry = self._entries.get(launch.name)
        if entry is None:
            health = Health(launch.name, settings=self._settings, clock=self._clock)
            entry = _Entry(launch=launch, health=health, lock=anyio.Lock())
            self._entries[launch.name] = entry
        return entry


async def _stopped(conn: Connection | None) -> None:
    """Stop a run (if any) and wait until its process group is gone."""
    if conn is not None and not conn.done.is_set():
        conn.stop()
        await conn.done.wait()


def _ended_during(conn: Connection) -> RuntimeFailure:
    """The failure a request sees when the run ended under it."""
    if conn.fault is not None and conn.fault.kind == "too-large":
        return conn.fault
    name = conn.launch.name
    if conn.stopping and conn.fault is None:
        return RuntimeFailure("unavailable", f"connector {name} was stopped during the call")
    if conn.fault is not None:
        return RuntimeFailure("unavailable", str(conn.fault))
    code = exit_text(conn.returncode)
    return RuntimeFailure("unavailable", f"connector {name} exited ({code}) during the call")


def _differs(old: Launch, new: Launch) -> bool:
    return (old.command, old.cwd, dict(old.env)) != (new.command, new.cwd, dict(new.env))


def _wire(model: Any) -> dict[str, Any]:
    """An SDK model as MCP wire JSON (camelCase, unset fields left out)."""
    data: dict[str, Any] = model.model_dump(by_alias=True, mode="json", exclude_none=True)
    return data
