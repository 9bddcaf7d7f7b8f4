"""An agent's session through `cloned gateway` end to end, with the SDK's client over stdio:
calls that go through and refusals with reasons, every one in `cloned audit log`; then the
gateway is SIGKILLed mid-session: no connector process outlives it and the audit chain, with
every call whose result was returned, still verifies."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

from tests.conftest import CLONED, cloned, commit_all, copy_quickstart, write
from tests.fakes.runtime_helpers import alive, children, cmdline


def test_calls_refusals_and_a_sigkill_leave_a_verified_audit_and_no_orphans(repo: Path) -> None:
    copy_quickstart(repo)
    write(repo, ".gitignore", ".cloned/state/\n")
    commit_all(repo, "quickstart")
    assert cloned("apply", cwd=repo).code == 0
    params = StdioServerParameters(
        command=str(CLONED), args=["gateway"], cwd=repo, env=dict(os.environ)
    )
    connectors: list[int] = []

    async def main() -> None:
        async with Client(params, mode="legacy") as client:
            added = await client.call_tool("notes__add_note", {"name": "plan", "text": "ship"})
            assert not added.is_error, added
            read = await client.call_tool("notes__read_note", {"name": "plan"})
            assert "ship" in json.dumps(read.model_dump(mode="json"))
            bad = await client.call_tool("notes__read_note", {"name": "Not A Name"})
            assert bad.is_error and "$.name" in json.dumps(bad.model_dump(mode="json"))
            now = await client.call_tool("clock__now", {})
            assert not now.is_error, now
            (gateway,) = [p for p in children(os.getpid()) if b"gateway" in cmdline(p)]
            connectors.extend(children(gateway))
            assert len(connectors) >= 2, "notes and clock run under the gateway"
            killed.append(gateway)
            os.kill(gateway, signal.SIGKILL)

    killed: list[int] = []
    try:
        anyio.run(main)
    except BaseException:
        if not killed:
            raise  # a failure before the kill is the test's failure
    deadline = time.monotonic() + 15
    while any(alive(pid) for pid in connectors) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in connectors if alive(pid)], "a connector outlived the gateway"
    verified = cloned("audit", "verify", cwd=repo)
    assert verified.code == 0, verified.out + verified.err
    logged = cloned("audit", "log", "--json", "--type", "tool.called", cwd=repo)
    calls = [json.loads(line)["payload"] for line in logged.out.splitlines() if line.strip()]
    assert [(c["tool"], c["decision"]) for c in calls] == [
        ("add_note", "allowed"),
        ("read_note", "allowed"),
        ("read_note", "refused"),
        ("now", "allowed"),
    ]
