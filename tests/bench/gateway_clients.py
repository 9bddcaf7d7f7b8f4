"""The clients and peers `bench_gateway.py` measures with (`make bench`): the MCP SDK's own
`Client` to a server started directly, to `cloned gateway` over stdio and over streamable
HTTP, and to `mcp-proxy`; the latency loop (interleaved, so every mode sees the same machine),
the 4-client throughput run, and the gateway's start to its first `tools/list` answer.
"""

from __future__ import annotations

import json
import re
import socket
import statistics
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.fakes.runtime_helpers import children

LISTENING = re.compile(r"gateway listening on (http://127\.0\.0\.1:\d+/mcp)")
WAIT = 30.0
PYTHON = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "python")


@dataclass
class Mode:
    """One way of reaching a server: a name and how to open an SDK client session."""

    name: str
    open: Callable[[], Any]
    samples: list[float] = field(default_factory=list)

    def percentile(self, q: int) -> float:
        """The q-th percentile of the samples, in ms."""
        return statistics.quantiles(self.samples, n=100, method="inclusive")[q - 1]


def stdio(command: Sequence[str], cwd: Path, env: dict[str, str]) -> Callable[[], Any]:
    """An SDK client that starts `command` and speaks MCP over its stdin and stdout."""
    params = StdioServerParameters(
        command=command[0], args=list(command[1:]), cwd=cwd, env=dict(env)
    )
    return lambda: Client(params, mode="legacy")


def http(url: str, token: str | None = None) -> Callable[[], Any]:
    """An SDK client of the streamable HTTP endpoint `url` (with a bearer token)."""

    @asynccontextmanager
    async def session() -> AsyncIterator[Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=WAIT) as client,
            Client(streamable_http_client(url, http_client=client), mode="legacy") as mcp,
        ):
            yield mcp

    return session


async def _call(client: Any, tool: str, arguments: dict[str, Any]) -> float:
    start = time.perf_counter()
    result = await client.call_tool(tool, arguments)
    elapsed = (time.perf_counter() - start) * 1000
    if result.is_error:
        raise SystemExit(f"bench: {tool} answered an error: {result.content}")
    return elapsed


async def interleaved(
    modes: Sequence[tuple[Mode, str]], arguments: dict[str, Any], calls: int, warmup: int
) -> None:
    """`calls` timed calls per mode (after `warmup` untimed ones, which also start connectors
    started lazily), one call of each mode per round, the order rotating every round."""
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(mode.open()) for mode, _ in modes]
        for _ in range(warmup):
            for client, (_mode, tool) in zip(clients, modes, strict=True):
                await _call(client, tool, arguments)
        for round_ in range(calls):
            shift = round_ % len(modes)
            order = list(range(len(modes)))[shift:] + list(range(len(modes)))[:shift]
            for index in order:
                mode, tool = modes[index]
                mode.samples.append(await _call(clients[index], tool, arguments))


async def throughput(
    opens: Sequence[Callable[[], Any]], tool: str, arguments: dict[str, Any], calls: int
) -> float:
    """Calls per second of len(opens) concurrent clients, each making `calls` calls in turn
    (after two untimed warm-up calls each)."""
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(open_()) for open_ in opens]
        for client in clients:
            for _ in range(2):
                await _call(client, tool, arguments)

        async def loop(client: Any) -> None:
            for _ in range(calls):
                await _call(client, tool, arguments)

        start = time.perf_counter()
        async with anyio.create_task_group() as group:
            for client in clients:
                group.start_soon(loop, client)
        return len(clients) * calls / (time.perf_counter() - start)


class Served:
    """A background HTTP server process (`cloned gateway --listen`, `mcp-proxy`) and its URL."""

    def __init__(self, argv: Sequence[str], cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.url = ""

    def read_url(self) -> str:
        """The gateway's URL from its one stderr line."""
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        found = LISTENING.search(line)
        if found is None:
            self.stop()
            raise SystemExit(f"bench: the gateway did not listen: {line}{self.proc.stderr.read()}")
        self.url = found[1]
        return self.url

    def wait_port(self, port: int) -> str:
        """Wait until something accepts on `port` (mcp-proxy prints no ready line we rely on)."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                assert self.proc.stderr is not None
                raise SystemExit(f"bench: the peer exited:\n{self.proc.stderr.read()[-2000:]}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    self.url = f"http://127.0.0.1:{port}/mcp"
                    return self.url
            time.sleep(0.02)  # polling a port with a deadline, not waiting for a fixed time
        raise SystemExit(f"bench: nothing listened on port {port} within {WAIT:.0f} s")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "0"},
    },
}
LISTED = [
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
]


def first_listing(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> tuple[float, int, int]:
    """Spawn -> initialize answered -> tools/list answered, in ms; the number of tools listed
    and of child processes the gateway had then (a started connector would be one)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(json.dumps(INITIALIZE) + "\n")
        proc.stdin.flush()
        _answer(proc, 1)
        proc.stdin.write("".join(json.dumps(m) + "\n" for m in LISTED))
        proc.stdin.flush()
        listing = _answer(proc, 2)
        elapsed = (time.perf_counter() - start) * 1000
        started = len(children(proc.pid))
    finally:
        proc.stdin.close()
        proc.wait(timeout=WAIT)
    return elapsed, len(listing["result"]["tools"]), started


def _answer(proc: subprocess.Popen[str], ident: int) -> dict[str, Any]:
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"bench: the gateway stopped before answering request {ident}")
        reply: dict[str, Any] = json.loads(line)
        if reply.get("id") == ident:
            return reply


def python_pass(env: dict[str, str]) -> float:
    """Milliseconds of one `python -c pass` (the same interpreter as Cloned's)."""
    start = time.perf_counter()
    subprocess.run([PYTHON, "-c", "pass"], env=env, check=True)
    return (time.perf_counter() - start) * 1000
