"""The gateway's composition (reconciler.governed.gateway) with a stand-in for the governed
call path: what it lists from an applied view (pinned definitions of enabled, installed,
allowed tools, namespaced), what it hands the call path, and list_changed only when an applied
change changes the served tools. The real caller and supervisor: test_gateway_workspace.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from reconciler.governed.applied import AppliedConnector, AppliedView
from reconciler.governed.gateway import Gateway, served_tools
from reconciler.model.kinds import ConnectorSpec
from reconciler.model.workspace import WorkspaceSpec
from reconciler.policy.engine import ActivePolicy
from reconciler.runtime.definitions import tools_block

TOKEN = "compose-token-0123456789abcdef"


def tool(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "description": description, "inputSchema": {"type": "object"}}


def connector(
    name: str, listing: list[dict[str, Any]], *, installed: bool = True, **spec: Any
) -> AppliedConnector:
    model = ConnectorSpec.model_validate(
        {"source": {"path": f"connectors/{name}"}, "version": "1.0.0", "publisher": "me", **spec}
    )
    block = tools_block(listing, where=name)
    return AppliedConnector(name, model, {}, block, {"digest": "x"} if installed else None)


def view(*connectors: AppliedConnector, digest: str = "d1") -> AppliedView:
    return AppliedView(
        workspace="w",
        workspace_spec=WorkspaceSpec(),
        policy=ActivePolicy(packs=()),
        connectors={c.name: c for c in connectors},
        budgets=(),
        digest=digest,
    )


NOTES = connector(
    "notes",
    [tool("read", "Read a note."), tool("wipe", "Delete all notes.")],
    tools={"deny": ["wipe"]},
)
CLOCK = connector("clock", [tool("now", "The time.")])
OFF = connector("off", [tool("t", "Off.")], enabled=False)
GONE = connector("gone", [tool("t", "Not installed.")], installed=False)


@dataclass
class Outcome:
    content: tuple[dict[str, Any], ...]
    structured: dict[str, Any] | None
    is_error: bool
    reason: str | None


@dataclass
class FakeCaller:
    current: AppliedView
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def view(self) -> AppliedView:
        return self.current

    async def call(self, request: Any) -> Outcome:
        self.requests.append(request)
        if request[1] == "now":
            return Outcome(({"type": "text", "text": "noon"},), {"t": 12}, False, None)
        return Outcome((), None, True, "refused by policy tools.requireApproval: request ap-1")


def make(caller: FakeCaller) -> Gateway:
    return Gateway(caller, lambda c, t, a: (c, t, a))


def test_lists_only_enabled_installed_allowed_pinned_tools_by_public_name() -> None:
    tools = served_tools(view(NOTES, CLOCK, OFF, GONE))
    assert [t.public_name for t in tools] == ["clock__now", "notes__read"]
    assert tools[1].definition == {
        "name": "notes__read",
        "description": "Read a note.",
        "inputSchema": {"type": "object"},
    }


@asynccontextmanager
async def connected(gateway: Gateway, seen: list[Any]) -> AsyncIterator[Client]:
    ports: list[int] = []
    ready = anyio.Event()

    def on_ready(port: int) -> None:
        ports.append(port)
        ready.set()

    async def on_message(message: Any) -> None:
        seen.append(message)

    async with anyio.create_task_group() as group:
        group.start_soon(
            lambda: gateway.server.serve_http("127.0.0.1", 0, token=TOKEN, ready=on_ready)
        )
        await ready.wait()
        url = f"http://127.0.0.1:{ports[0]}/mcp"
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as http,
            Client(
                streamable_http_client(url, http_client=http),
                mode="legacy",
                message_handler=on_message,
            ) as client,
        ):
            yield client
        group.cancel_scope.cancel()


def test_calls_go_through_the_caller_and_refusals_carry_their_reason() -> None:
    caller = FakeCaller(view(NOTES, CLOCK))

    async def main() -> None:
        async with connected(make(caller), []) as client:
            answered = await client.call_tool("clock__now", {"tz": "UTC"})
            assert not answered.is_error
            assert answered.content[0].text == "noon"  # type: ignore[union-attr]
            assert answered.structured_content == {"t": 12}
            refused = await client.call_tool("notes__read", {})
            assert refused.is_error
            assert "request ap-1" in refused.content[0].text  # type: ignore[union-attr]
            denied = await client.call_tool("notes__wipe", {})
            assert denied.is_error

    anyio.run(main)
    # A denied tool is not served, so it never reaches the call path at all.
    assert caller.requests == [("clock", "now", {"tz": "UTC"}), ("notes", "read", {})]


def test_list_changed_follows_the_applied_state_only_when_served_tools_change() -> None:
    caller = FakeCaller(view(CLOCK))
    digests = iter(["d1", "d1", "d2", "d2", "d3"])
    current = ["d1"]

    def digest() -> str:
        current[0] = next(digests, current[0])
        return current[0]

    async def main() -> None:
        gateway = make(caller)
        seen: list[Any] = []
        async with connected(gateway, seen) as client:
            assert [t.name for t in (await client.list_tools()).tools] == ["clock__now"]
            # An applied change that serves the same tools (d2: a budget, say) tells no one.
            caller.current = view(CLOCK, OFF, digest="d2")
            assert await gateway.refresh() is False
            caller.current = view(CLOCK, NOTES, digest="d3")
            async with anyio.create_task_group() as group:
                group.start_soon(lambda: gateway.follow(digest, interval=0.01))
                with anyio.fail_after(10):
                    while not any("list_changed" in repr(m) for m in seen):
                        await anyio.sleep(0.01)
                group.cancel_scope.cancel()
            listed = [t.name for t in (await client.list_tools()).tools]
            assert listed == ["clock__now", "notes__read"]
            assert sum("list_changed" in repr(m) for m in seen) == 1

    anyio.run(main)
