"""`cloned gateway`: the runtime's MCP server (`runtime.server`) composed with the governed call
path (docs/gateway.md).

The gateway lists the applied view's served tools (enabled, installed connectors' pinned and
allowed tools, `CONNECTOR__TOOL`) with their pinned definitions, never a live one, and starts no
connector to list them. Every call goes through `governed.calls.GovernedCaller` (allowed,
pinned, valid, budgets, limits, approval, redaction, audit) and reaches a connector only through
the `runtime.supervisor.Supervisor`. It follows the applied state alone: it polls the state
database's `applied_digest` and, when an apply changes what it serves, tells its clients
(`tools/list_changed`). It never reads `.cloned/*.yaml`.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from reconciler import __version__
from reconciler.governed.applied import AppliedView, applied_digest, read_applied, split_public
from reconciler.runtime.definitions import pinned_definition
from reconciler.runtime.server import GatewayServer, HandlerResult, ServedTool, check_listen
from reconciler.runtime.types import ConnectorStatus, Settings

if TYPE_CHECKING:
    from reconciler.state.db import StateDB

POLL_INTERVAL = 1.0
"""Seconds between two looks at the applied state."""
STATUS_POLL = 0.25
"""Seconds between two looks at the supervisor's statuses (in memory, cheap)."""
STATUS_REFRESH = 5.0
"""Seconds after which the status file is written again though nothing changed."""
SERVER_NAME = "cloned"


class Outcome(Protocol):
    """What the gateway reads of a governed call's outcome (`governed.calls.CallOutcome`)."""

    @property
    def content(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def structured(self) -> Mapping[str, Any] | None: ...
    @property
    def is_error(self) -> bool: ...
    @property
    def reason(self) -> str | None: ...


class Caller(Protocol):
    """What the gateway needs of the governed call path (`governed.calls.GovernedCaller`)."""

    def view(self) -> AppliedView:
        """The applied view the caller enforces now."""
        ...

    async def call(self, request: Any) -> Any:
        """One governed call of a `CallRequest`; its `CallOutcome`."""
        ...

    async def aclose(self) -> None:
        """Close what the caller runs (the egress proxies) and commit what is pending."""
        ...


class DeferredCaller:
    """The governed call path, built on the first call or right after the first `tools/list`
    is answered, whichever comes first: listing needs only the applied view, so the caller's
    modules (approvals, budgets, audit, launch verification) are not imported before the
    gateway's first answer. Until then the view is followed here, as the caller would."""

    def __init__(self, make: Callable[[], Caller], db: StateDB, view: AppliedView) -> None:
        self._make = make
        self._db = db
        self._view = view
        self._caller: Caller | None = None

    def view(self) -> AppliedView:
        """The applied view the gateway serves now."""
        if self._caller is not None:
            return self._caller.view()
        if applied_digest(self._db) != self._view.digest:
            self._view = read_applied(self._db)
        return self._view

    async def call(self, request: Any) -> Any:
        """One governed call (the caller is built first if it is not yet)."""
        return await self.built().call(request)

    def built(self) -> Caller:
        """The governed caller, built now if it was not yet."""
        if self._caller is None:
            self._caller = self._make()
        return self._caller

    async def aclose(self) -> None:
        """Close the governed caller, when it was built."""
        if self._caller is not None:
            await self._caller.aclose()

    async def build_after(self, listed: Any) -> None:
        """Build the caller once `listed` (an anyio.Event) is set by the first answer."""
        import anyio

        await listed.wait()
        await anyio.sleep(0)  # the answer is written first
        self.built()


RequestFactory = Callable[[str, str, dict[str, Any]], Any]
"""(connector, tool, arguments) -> the caller's `CallRequest` made `via="gateway"`."""


def served_tools(view: AppliedView) -> list[ServedTool]:
    """The tools the gateway lists for `view`, each with its pinned definition, redacted."""
    from reconciler.redact import active

    # A definition is what a connector sent: a secret in it is masked before the agent reads
    # it, as in a result (the pin keeps its digest of what was approved).
    redactor = active()
    redactor.add_patterns(view.policy.redaction_patterns)
    found: list[ServedTool] = []
    for public, connector, tool in view.served():
        pinned = pinned_definition(connector.tools, tool)
        if pinned is None:
            continue
        definition: dict[str, Any] = redactor.data(pinned)
        definition["name"] = public
        found.append(ServedTool(public, definition))
    return found


class Gateway:
    """The served tools of the applied view, and each call through the governed path."""

    def __init__(self, caller: Caller, request: RequestFactory) -> None:
        import anyio

        self._caller = caller
        self._request = request
        self._tools = served_tools(caller.view())
        self.listed = anyio.Event()
        """Set once the server first read the served tools (its first answer)."""
        self.server = GatewayServer(
            name=SERVER_NAME, version=__version__, tools=self.tools, handler=self._handle
        )

    def tools(self) -> list[ServedTool]:
        """What `tools/list` answers now."""
        self.listed.set()
        return list(self._tools)

    async def refresh(self) -> bool:
        """Read the applied view again; True (and clients told) when the served tools changed."""
        tools = served_tools(self._caller.view())
        if tools == self._tools:
            return False
        self._tools = tools
        await self.server.tools_changed()
        return True

    async def follow(self, digest: Callable[[], str], *, interval: float = POLL_INTERVAL) -> None:
        """Poll the applied state's digest and `refresh` whenever it moves; runs until cancelled."""
        import anyio

        seen = digest()
        while True:
            await anyio.sleep(interval)
            now = digest()
            if now != seen:
                seen = now
                await self.refresh()

    async def _handle(self, public: str, arguments: dict[str, Any]) -> HandlerResult:
        parts = split_public(public)
        if parts is None:
            return _error(f"{public!r} is not a CONNECTOR__TOOL name")
        connector, tool = parts
        outcome: Outcome = await self._caller.call(self._request(connector, tool, arguments))
        content = tuple(dict(block) for block in outcome.content)
        if not content and outcome.is_error:
            # A refusal carries its reason, not content: the agent reads why.
            content = ({"type": "text", "text": outcome.reason or "the call was refused"},)
        structured = dict(outcome.structured) if outcome.structured is not None else None
        return HandlerResult(content, structured, outcome.is_error)


def _error(text: str) -> HandlerResult:
    return HandlerResult(({"type": "text", "text": text},), None, True)


def run_gateway(
    root: Path,
    *,
    listen: tuple[str, int] | None,
    on_ready: Callable[[str], None] | None = None,
    token: str | None = None,
    settings: Settings | None = None,
    interval: float = POLL_INTERVAL,
) -> None:
    """Serve the gateway over stdio (`listen` None) or streamable HTTP on loopback until
    stdin closes (stdio), SIGTERM or SIGINT; every connector child is stopped on the way out.
    `on_ready` is given the URL once the HTTP gateway listens."""
    import anyio

    if listen is not None:
        check_listen(*listen)
        if token is None:
            raise ValueError("an HTTP gateway needs its bearer token")

    async def main() -> None:
        await _serve(root, listen, on_ready, token, settings or Settings(), interval)

    anyio.run(main)


async def _serve(
    root: Path,
    listen: tuple[str, int] | None,
    on_ready: Callable[[str], None] | None,
    token: str | None,
    settings: Settings,
    interval: float,
) -> None:
    import anyio

    from reconciler.redact import active
    from reconciler.state.db import StateDB

    with StateDB.existing(root) as db:
        if db is None:
            from reconciler.errors import ClonedError

            raise ClonedError(
                "nothing is applied yet: the gateway serves only the applied state",
                hint="run `cloned apply` first",
            )
        view = read_applied(db)  # a workspace never applied is refused before anything starts
        # Imported here, not at the top: `cloned gateway --help` and the token command need
        # neither the supervisor nor the SDK (the call path loads after the first answer).
        from reconciler.runtime.supervisor import Supervisor

        def request(connector: str, tool: str, arguments: dict[str, Any]) -> Any:
            from reconciler.governed.calls import CallRequest

            return CallRequest(connector, tool, arguments, via="gateway")

        async with Supervisor(settings=settings, redactor=active()) as supervisor:

            def make() -> Caller:
                from reconciler.governed.calls import GovernedCaller

                return GovernedCaller(root, connectors=supervisor, actor="gateway")

            caller = DeferredCaller(make, db, view)
            gateway = Gateway(caller, request)
            async with anyio.create_task_group() as group:
                group.start_soon(_stop_on_signals, group.cancel_scope)
                group.start_soon(caller.build_after, gateway.listed)
                group.start_soon(
                    lambda: gateway.follow(lambda: applied_digest(db), interval=interval)
                )
                group.start_soon(write_statuses, root, supervisor.statuses)
                try:
                    await _transport(gateway.server, listen, token, on_ready)
                finally:
                    group.cancel_scope.cancel()
                    _forget_statuses(root)
            with anyio.CancelScope(shield=True):
                await caller.aclose()


async def write_statuses(
    root: Path,
    statuses: Callable[[], list[ConnectorStatus]],
    *,
    poll: float = STATUS_POLL,
    refresh: float = STATUS_REFRESH,
) -> None:
    """Write the supervisor's statuses to the status file (`governed.statusfile`) at once,
    whenever one changes and every `refresh` seconds; runs until cancelled."""
    import os
    import time

    import anyio

    from reconciler.clock import stamp
    from reconciler.governed import statusfile

    last: list[dict[str, Any]] | None = None
    written = 0.0
    while True:
        current = statuses()
        # retry_in counts down on its own: a change of it alone waits for the refresh.
        shape = [{**status.to_json(), "retry_in": None} for status in current]
        if shape != last or time.monotonic() - written >= refresh:
            statusfile.write(root, current, pid=os.getpid(), at=stamp())
            last, written = shape, time.monotonic()
        await anyio.sleep(poll)


def _forget_statuses(root: Path) -> None:
    import os

    from reconciler.governed import statusfile

    statusfile.remove(root, pid=os.getpid())


async def _transport(
    server: GatewayServer,
    listen: tuple[str, int] | None,
    token: str | None,
    on_ready: Callable[[str], None] | None,
) -> None:
    """Serve stdio until stdin closes, or HTTP until cancelled."""
    from reconciler.runtime.server import url_for

    if listen is None:
        await server.serve_stdio()
        return
    host, port = listen

    def ready(bound: int) -> None:
        if on_ready is not None:
            on_ready(url_for(host, bound))

    assert token is not None
    await server.serve_http(host, port, token=token, ready=ready)


async def _stop_on_signals(scope: Any) -> None:
    import anyio

    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _signum in signals:
            scope.cancel()
            return
