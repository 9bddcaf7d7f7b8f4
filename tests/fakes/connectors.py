"""An in-process `governed.calls.Connectors`: tools are Python coroutines, the "process" is a
flag, and a test can restart it, change its listing (a rug pull) or make a tool hang.

Tests that need the real runtime (a process, stdio, a timeout the server ignores) use the
real servers and, after the merge of the supervisor, `reconciler.runtime.supervisor`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from reconciler.runtime.types import ConnectorStatus, Launch, RuntimeFailure, ToolResult

Handler = Callable[[dict[str, Any]], Awaitable[ToolResult]]


def text(value: str) -> ToolResult:
    """A result of one text block."""
    return ToolResult(({"type": "text", "text": value},))


async def echo(arguments: dict[str, Any]) -> ToolResult:
    return text(str(arguments.get("text", "")))


async def hang(arguments: dict[str, Any]) -> ToolResult:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


TOOLS: list[dict[str, Any]] = [
    {
        "name": "echo",
        "description": "Say the text back.",
        "inputSchema": {
            "type": "object",
            "properties": {"text": {"type": "string", "maxLength": 100}},
            "required": ["text"],
            "additionalProperties": False,
        },
    },
    {
        "name": "add_note",
        "description": "Save a note.",
        "inputSchema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "text": {"type": "string"}},
            "required": ["name"],
        },
    },
    {
        "name": "hang",
        "description": "Never answers.",
        "inputSchema": {"type": "object"},
    },
    {
        "name": "big",
        "description": "Answers with a lot.",
        "inputSchema": {"type": "object", "properties": {"size": {"type": "integer"}}},
    },
]


async def big(arguments: dict[str, Any]) -> ToolResult:
    return text("x" * int(arguments.get("size", 10)))


class FakeConnectors:
    """Implements the `Connectors` protocol in-process (see the module)."""

    def __init__(self, handlers: dict[str, Handler] | None = None) -> None:
        self.listing: list[dict[str, Any]] = [dict(tool) for tool in TOOLS]
        self.handlers: dict[str, Handler] = {
            "echo": echo,
            "add_note": echo,
            "hang": hang,
            "big": big,
            **(handlers or {}),
        }
        self.running = False
        self.pid = 4000
        self.restarts = 0
        self.listed = 0
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.active = 0
        self.peak = 0

    async def list_tools(self, launch: Launch) -> list[dict[str, Any]]:
        self.running = True
        self.listed += 1
        await asyncio.sleep(0)
        return [dict(tool) for tool in self.listing]

    async def call_tool(
        self, launch: Launch, tool: str, arguments: dict[str, Any], *, timeout: float
    ) -> ToolResult:
        self.running = True
        self.calls.append((tool, arguments))
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            return await asyncio.wait_for(self.handlers[tool](arguments), timeout)
        except TimeoutError:
            raise RuntimeFailure(
                "timeout", f"{tool} did not answer within {timeout:g} s; the call was cancelled"
            ) from None
        finally:
            self.active -= 1

    def status(self, name: str) -> ConnectorStatus:
        return ConnectorStatus(
            name,
            "running" if self.running else "stopped",
            "closed",
            pid=self.pid if self.running else None,
            restarts=self.restarts,
        )

    def restart(self) -> None:
        """What the supervisor does after a crash: a new process."""
        self.restarts += 1
        self.pid += 1
