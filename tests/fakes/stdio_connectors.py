"""A minimal `governed.calls.Connectors` over real processes: each connector's `Launch` is
started as an asyncio subprocess speaking newline-delimited JSON-RPC (the MCP stdio transport),
one request at a time. It stands in for `reconciler.runtime.supervisor.Supervisor` until that
lands; the tests using it (marked LEAD) are to be pointed at the real Supervisor at merge.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from reconciler.runtime.types import ConnectorStatus, Launch, RuntimeFailure, ToolResult


class StdioConnectors:
    """Starts each connector on first use; `stop` ends them all."""

    def __init__(self) -> None:
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._ids = 0
        self.starts = 0

    async def _proc(self, launch: Launch) -> asyncio.subprocess.Process:
        proc = self._procs.get(launch.name)
        if proc is None or proc.returncode is not None:
            proc = await asyncio.create_subprocess_exec(
                *launch.command,
                cwd=launch.cwd,
                env=dict(launch.env),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            self._procs[launch.name] = proc
            self.starts += 1
            await self._ask(proc, "initialize", {"protocolVersion": "2025-06-18"}, 10)
        return proc

    async def _ask(
        self, proc: asyncio.subprocess.Process, method: str, params: dict[str, Any], timeout: float
    ) -> Any:
        assert proc.stdin is not None and proc.stdout is not None
        self._ids += 1
        message = {"jsonrpc": "2.0", "id": self._ids, "method": method, "params": params}
        proc.stdin.write((json.dumps(message) + "\n").encode())
        await proc.stdin.drain()
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout)
        except TimeoutError:
            raise RuntimeFailure("timeout", f"{method} did not answer in {timeout:g} s") from None
        if not line:
            raise RuntimeFailure("unavailable", "the connector exited")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeFailure("protocol", str(answer["error"].get("message")))
        return answer["result"]

    async def list_tools(self, launch: Launch) -> list[dict[str, Any]]:
        async with self._locks.setdefault(launch.name, asyncio.Lock()):
            proc = await self._proc(launch)
            result = await self._ask(proc, "tools/list", {}, 10)
            return list(result["tools"])

    async def call_tool(
        self, launch: Launch, tool: str, arguments: dict[str, Any], *, timeout: float
    ) -> ToolResult:
        async with self._locks.setdefault(launch.name, asyncio.Lock()):
            proc = await self._proc(launch)
            params = {"name": tool, "arguments": arguments}
            result = await self._ask(proc, "tools/call", params, timeout)
            return ToolResult(
                tuple(result.get("content") or ()),
                result.get("structuredContent"),
                bool(result.get("isError")),
            )

    def status(self, name: str) -> ConnectorStatus:
        proc = self._procs.get(name)
        running = proc is not None and proc.returncode is None
        return ConnectorStatus(
            name,
            "running" if running else "stopped",
            "closed",
            pid=proc.pid if running and proc is not None else None,
            restarts=max(0, self.starts - 1),
        )

    async def stop(self) -> None:
        for proc in self._procs.values():
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
