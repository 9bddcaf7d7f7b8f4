"""Benchmark: what the bubblewrap sandbox adds to a connector's start (specs/sandbox.md).

Starts the probe connector (tests/fakes/probe_mcp.py, standard library only) through the real
supervisor `--starts` times unsandboxed, as many times inside bwrap (the exact command
`egress.sandbox.wrap` builds, with a fake HOME, CLONED_HOME and repository), and as many times
inside bwrap behind the egress forwarder (what `providers.starting.start_of` builds when the
governed call path gives it a proxy: the launcher binds its port, forks the forwarder and execs
the connector), and times each start to its first `tools/list` answer, then stop. Goal
(issue 12): under 20 ms added at the median, for the whole of what a connector start pays.

    .venv/bin/python tests/bench/bench_sandbox.py [--starts 20] [--json FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

from reconciler.egress.forwarder import SCRIPT, forwarder_command
from reconciler.egress.sandbox import isolation, wrap
from reconciler.redact import Redactor
from reconciler.runtime.launch import PATH
from reconciler.runtime.supervisor import Supervisor
from reconciler.runtime.types import Launch
from tests.fakes.probe_mcp import SERVER


def launches(base: Path) -> tuple[Launch, Launch, Launch]:
    """The probe's plain Launch, the same inside bwrap, and inside bwrap behind the forwarder."""
    repo, home, cloned_home = base / "repo", base / "home", base / "cloned-home"
    entry = repo / ".cloned" / "state" / "store" / "sha256" / "probe"
    data = repo / ".cloned" / "state" / "connectors" / "probe" / "data"
    for folder in (entry, data, home, cloned_home):
        folder.mkdir(parents=True, exist_ok=True)
    (entry / "server.py").write_text(SERVER)
    env = {"PATH": PATH, "LANG": "C.UTF-8", "HOME": str(data)}
    plain = Launch("probe", (sys.executable, "-I", "-S", "server.py"), entry, env, base / "log")
    boxed = wrap(
        plain,
        profile="strict",
        name="probe",
        root=repo,
        cloned_home=cloned_home,
        user_home=home,
        writable=[data],
        readable=[entry, Path(sys.prefix), Path(sys.base_prefix)],
    )
    socket = repo / ".cloned" / "state" / "runtime" / "egress" / "1" / "probe" / "proxy.sock"
    socket.parent.mkdir(parents=True)
    behind = dataclasses.replace(
        plain, command=tuple(forwarder_command(socket, 0, then=plain.command))
    )
    proxied = wrap(
        behind,
        profile="strict",
        name="probe",
        root=repo,
        cloned_home=cloned_home,
        user_home=home,
        writable=[data],
        readable=[entry, Path(sys.prefix), Path(sys.base_prefix), socket.parent, Path(SCRIPT)],
    )
    return plain, boxed, proxied


async def timed(
    plain: Launch, boxed: Launch, proxied: Launch, starts: int
) -> dict[str, list[float]]:
    """Milliseconds from start to the first listing of `starts` fresh processes of each,
    alternating, so a change in the machine's load touches all alike."""
    found: dict[str, list[float]] = {"unsandboxed": [], "sandboxed": [], "sandboxed_proxy": []}
    kinds = (("unsandboxed", plain), ("sandboxed", boxed), ("sandboxed_proxy", proxied))
    async with Supervisor(redactor=Redactor()) as supervisor:
        for _ in range(starts):
            for name, launch in kinds:
                began = time.perf_counter()
                await supervisor.list_tools(launch)
                found[name].append((time.perf_counter() - began) * 1000)
                await supervisor.stop(launch.name)
    return found


def main() -> None:
    """Run the comparison and print (or save) the medians."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--starts", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not isolation().available:
        raise SystemExit(f"bubblewrap cannot isolate here: {isolation().reason}")
    with tempfile.TemporaryDirectory() as folder:
        plain, boxed, proxied = launches(Path(folder))
        anyio.run(timed, plain, boxed, proxied, 2)  # warm the page cache for all
        results = anyio.run(timed, plain, boxed, proxied, args.starts)
    summary: dict[str, dict[str, float]] = {
        name: {"p50_ms": round(statistics.median(ms), 1), "max_ms": round(max(ms), 1)}
        for name, ms in results.items()
    }
    base = summary["unsandboxed"]["p50_ms"]
    added = summary["sandboxed"]["p50_ms"] - base
    summary["added_p50_ms"] = {"value": round(added, 1), "goal": 20.0}
    with_proxy = summary["sandboxed_proxy"]["p50_ms"] - base
    summary["added_with_proxy_p50_ms"] = {"value": round(with_proxy, 1), "goal": 20.0}
    summary["load_average_1min"] = {"value": os.getloadavg()[0], "cores": os.cpu_count() or 0}
    text = json.dumps(summary, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
