"""A `GatewayServer` over stdio serving the tools listed in a JSON file (argv[1]), for the
server's own tests. Calling `fixed__reload` re-reads the file and tells every client that the
tools changed; `fixed__echo` answers its arguments; `fixed__fail` raises a ClonedError."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio

from reconciler.errors import ClonedError
from reconciler.runtime.server import GatewayServer, HandlerResult, ServedTool

TOOLS = Path(sys.argv[1])


def read_tools() -> list[ServedTool]:
    return [ServedTool(d["name"], d) for d in json.loads(TOOLS.read_text())]


async def main() -> None:
    current = read_tools()

    async def handler(name: str, arguments: dict[str, Any]) -> HandlerResult:
        nonlocal current
        if name == "fixed__reload":
            current = read_tools()
            await gateway.tools_changed()
        if name == "fixed__fail":
            raise ClonedError("refused: the test says no")
        # Stray output while serving goes to stderr: the SDK points fd 1 there.
        print("stray output that must not reach the client")
        text = json.dumps({"tool": name, "arguments": arguments}, sort_keys=True)
        return HandlerResult(({"type": "text", "text": text},), {"tool": name})

    gateway = GatewayServer(name="fixed", version="1", tools=lambda: current, handler=handler)
    await gateway.serve_stdio()


anyio.run(main)
