"""Benchmark of the governed runtime and `cloned gateway` (`make bench`, after bench_connectors).

Side by side in one run, under the git-ignored `.bench/gateway/`, with the MCP SDK's own client:

1. One tool call's latency (p50, p95, p99) to the real `mcp-server-time` (a `pypi` connector
   installed from `.wheelhouse`) and to the builtin `notes` (standard library): made directly
   to the server over stdio (the exact command and environment the runtime starts it with),
   through `cloned gateway` over stdio, through `cloned gateway --listen` over streamable HTTP
   (bearer token from `cloned gateway token`), and through `mcp-proxy` 0.13.0 (PyPI, its own
   venv) as the HTTP peer. Every mode is open at once and the calls are interleaved, one per
   mode per round, after a warm-up that also starts the lazily started connectors. Goals:
   gateway p50 at most 0.5 ms above direct, and at most 1.3x.
2. Throughput of 4 concurrent clients, auditing on (every gateway call is audited): goal at
   least 70% of direct.
3. `cloned gateway` start (spawn, initialize, first `tools/list` answered) with 20 pinned path
   connectors, none started, minus `python -c pass`; median of 10; goal under 150 ms.

    python tests/bench/bench_gateway.py [--calls 1000] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import gateway_clients as gc
import gateway_setup as setup
from timing import hermetic_env

WORK = setup.REPO / ".bench" / "gateway"
SERVERS = {
    "time": ("get_current_time", {"timezone": "UTC"}),
    "notes": ("list_notes", {}),
}
GOAL_OVERHEAD_MS, GOAL_RATIO, GOAL_SHARE, GOAL_START_MS = 0.5, 1.3, 0.70, 150.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="timed calls per mode")
    parser.add_argument("--per-client", type=int, default=250, help="throughput calls each")
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    shutil.rmtree(WORK / "latency", ignore_errors=True)
    shutil.rmtree(WORK / "start", ignore_errors=True)
    WORK.mkdir(parents=True, exist_ok=True)
    env = hermetic_env(WORK)
    load = [os.getloadavg()[0]]
    proxy, proxy_note = setup.proxy_command(WORK)
    root = setup.latency_workspace(WORK / "latency", env)
    token = setup.cloned("gateway", "token", cwd=root, env=env).strip()
    figures: dict[str, Any] = {"proxy": proxy_note, "latency": {}, "throughput": {}}
    with Peers(root, env, proxy) as peers:
        for server, (tool, arguments) in SERVERS.items():
            modes = latency_modes(peers, root, env, token, server, tool)
            anyio.run(gc.interleaved, modes, arguments, args.calls, 50)
            figures["latency"][server] = {mode.name: mode.samples for mode, _ in modes}
            opens = throughput_modes(peers, root, env, token, server)
            figures["throughput"][server] = {
                name: anyio.run(gc.throughput, clients, called, arguments, args.per_client)
                for name, (clients, called) in opens.items()
            }
    figures["start"] = start_figures(WORK / "start", env, args.starts)
    load.append(os.getloadavg()[0])
    figures["load"] = load
    print(report(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


class Peers:
    """The long-running HTTP servers: one `cloned gateway --listen`, one mcp-proxy per server."""

    def __init__(self, root: Path, env: dict[str, str], proxy: Path | None) -> None:
        self.root, self.env, self.proxy = root, env, proxy
        self.running: list[gc.Served] = []
        self.gateway_url = ""
        self.proxy_urls: dict[str, str] = {}

    def __enter__(self) -> Peers:
        gateway = gc.Served(
            [str(setup.CLONED), "gateway", "--listen", "127.0.0.1:0"], self.root, self.env
        )
        self.running.append(gateway)
        self.gateway_url = gateway.read_url()
        for server in SERVERS if self.proxy else ():
            launch = setup.launch(self.root, server)
            port = gc.free_port()
            argv = [
                str(self.proxy),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--cwd",
                str(launch.cwd),
                "--log-level",
                "WARNING",
            ]
            for key, value in launch.env.items():
                argv += ["-e", key, value]
            peer = gc.Served([*argv, "--", *launch.command], self.root, self.env)
            self.running.append(peer)
            self.proxy_urls[server] = peer.wait_port(port)
        return self

    def __exit__(self, *exc: object) -> None:
        for served in self.running:
            served.stop()


def latency_modes(
    peers: Peers, root: Path, env: dict[str, str], token: str, server: str, tool: str
) -> list[tuple[gc.Mode, str]]:
    launch = setup.launch(root, server)
    public = f"{server}__{tool}"
    modes = [
        (gc.Mode("direct stdio", gc.stdio(launch.command, launch.cwd, launch.env)), tool),
        (gc.Mode("gateway stdio", gc.stdio([str(setup.CLONED), "gateway"], root, env)), public),
        (gc.Mode("gateway HTTP", gc.http(peers.gateway_url, token)), public),
    ]
    if server in peers.proxy_urls:
        modes.append((gc.Mode("mcp-proxy HTTP", gc.http(peers.proxy_urls[server])), tool))
    return modes


def throughput_modes(
    peers: Peers, root: Path, env: dict[str, str], token: str, server: str
) -> dict[str, tuple[list[Callable[[], Any]], str]]:
    """Four clients each: direct (four server processes), four stdio gateways (each with its
    own connector process), four sessions of the one HTTP gateway (one connector process), and
    four sessions of mcp-proxy (one server process)."""
    tool = SERVERS[server][0]
    launch = setup.launch(root, server)
    public = f"{server}__{tool}"
    found = {
        "direct stdio": ([gc.stdio(launch.command, launch.cwd, launch.env)] * 4, tool),
        "gateway stdio": ([gc.stdio([str(setup.CLONED), "gateway"], root, env)] * 4, public),
        "gateway HTTP": ([gc.http(peers.gateway_url, token)] * 4, public),
    }
    if server in peers.proxy_urls:
        found["mcp-proxy HTTP"] = ([gc.http(peers.proxy_urls[server])] * 4, tool)
    return found


def start_figures(folder: Path, env: dict[str, str], starts: int) -> dict[str, Any]:
    """Gateway start to its first tools/list, 20 pinned connectors; python -c pass beside it."""
    root = setup.start_workspace(folder, env)
    argv = [str(setup.CLONED), "gateway"]
    gc.first_listing(argv, root, env)  # untimed: the page cache and .pyc files are warm
    starts_ms, passes_ms, listed, started = [], [], set(), set()
    for _ in range(starts):
        elapsed, tools, children = gc.first_listing(argv, root, env)
        starts_ms.append(elapsed)
        listed.add(tools)
        started.add(children)
        passes_ms.append(gc.python_pass(env))
    return {
        "gateway": starts_ms,
        "python": passes_ms,
        "tools": sorted(listed),
        "children": sorted(started),
    }


def met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def latency_table(figures: dict[str, Any]) -> list[str]:
    lines = [
        "| server | mode | p50 ms | p95 ms | p99 ms | p50 above direct | ratio | goal |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for server, modes in figures["latency"].items():
        base = statistics.median(modes["direct stdio"])
        for name, samples in modes.items():
            q = statistics.quantiles(samples, n=100, method="inclusive")
            p50 = statistics.median(samples)
            above, ratio = p50 - base, p50 / base
            said = ""
            if name.startswith("gateway"):
                ok = above <= GOAL_OVERHEAD_MS and ratio <= GOAL_RATIO
                said = f"<= {GOAL_OVERHEAD_MS} ms and <= {GOAL_RATIO}x: {met(ok)}"
            row = f"| {server} | {name} | {p50:.3f} | {q[94]:.3f} | {q[98]:.3f} |"
            lines.append(
                row
                + (
                    " | | |"
                    if name == "direct stdio"
                    else f" {above:+.3f} | {ratio:.2f}x | {said} |"
                )
            )
    return lines


def throughput_table(figures: dict[str, Any]) -> list[str]:
    lines = [
        "| server | mode (4 clients) | calls/s | of direct | goal |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for server, modes in figures["throughput"].items():
        base = modes["direct stdio"]
        for name, rate in modes.items():
            share = rate / base
            said = f">= 70%: {met(share >= GOAL_SHARE)}" if name.startswith("gateway") else ""
            lines.append(f"| {server} | {name} | {rate:,.0f} | {share:.0%} | {said} |")
    return lines


def start_table(start: dict[str, Any]) -> list[str]:
    gateway, python = statistics.median(start["gateway"]), statistics.median(start["python"])
    above = gateway - python
    return [
        "| what | median ms | goal |",
        "| --- | ---: | --- |",
        f"| `cloned gateway`: spawn to first tools/list answered (20 connectors, "
        f"{'/'.join(map(str, start['tools']))} tools listed) | {gateway:.1f} | |",
        f"| `python -c pass` | {python:.1f} | |",
        f"| difference | {above:.1f} | < {GOAL_START_MS:.0f} ms: {met(above < GOAL_START_MS)} |",
        f"| connector processes started by the gateway | "
        f"{'/'.join(map(str, start['children']))} | none: {met(start['children'] == [0])} |",
    ]


def report(figures: dict[str, Any]) -> str:
    lines = ["## Runtime and gateway (median of interleaved calls, ms)", ""]
    lines += [*latency_table(figures), "", *throughput_table(figures), ""]
    lines += [*start_table(figures["start"]), ""]
    first, last = figures["load"]
    lines.append(
        f"mcp-proxy: {figures['proxy']}; 1-minute load average {first:.2f} at the start, "
        f"{last:.2f} at the end"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
