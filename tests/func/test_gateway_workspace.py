"""`cloned gateway` on a real applied workspace (the quickstart: a registry connector and a
builtin one), with the SDK's client: over stdio as the command an MCP client's configuration
starts, and over HTTP with the token; tools listed from the pins with no connector started;
list_changed after an apply narrows the served tools; SIGTERM stops it cleanly.

Needs the governed call path and the supervisor (governed.calls, runtime.supervisor) and
apply's tool pins: skipped until those are merged."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import CLONED, cloned, commit_all
from tests.fakes.runtime_helpers import children, cmdline

pytest.importorskip("reconciler.governed.calls")
pytest.importorskip("reconciler.runtime.supervisor")

SERVED = [
    "clock__convert",
    "clock__now",
    "notes__add_note",
    "notes__list_notes",
    "notes__read_note",
]


def narrow_notes(repo: Path) -> None:
    path = repo / ".cloned" / "registry.yaml"
    text = path.read_text().replace(
        "allow: [add_note, list_notes, read_note]", "allow: [list_notes, read_note]"
    )
    path.write_text(text)
    commit_all(repo, "notes: read only")
    result = cloned("apply", cwd=repo)
    assert result.code == 0, result.out + result.err


def test_stdio_gateway_lists_pins_starts_nothing_and_follows_applies(applied: Path) -> None:
    seen: list[Any] = []

    async def on_message(message: Any) -> None:
        seen.append(message)

    params = StdioServerParameters(
        command=str(CLONED), args=["gateway"], cwd=applied, env=dict(os.environ)
    )

    async def main() -> None:
        async with Client(params, mode="legacy", message_handler=on_message) as client:
            listed = await client.list_tools()
            assert [t.name for t in listed.tools] == SERVED
            assert all(t.description for t in listed.tools)
            gateway = [p for p in children(os.getpid()) if b"gateway" in cmdline(p)]
            assert len(gateway) == 1 and children(gateway[0]) == [], "no connector started"
            await anyio.to_thread.run_sync(narrow_notes, applied)
            with anyio.fail_after(20):
                while not any("list_changed" in repr(m) for m in seen):
                    await anyio.sleep(0.05)
            relisted = [t.name for t in (await client.list_tools()).tools]
            assert relisted == [n for n in SERVED if n != "notes__add_note"]
            refused = await client.call_tool("notes__add_note", {"title": "x", "body": "y"})
            assert refused.is_error

    anyio.run(main)


def test_http_gateway_needs_the_token_and_stops_on_sigterm(applied: Path) -> None:
    token = cloned("gateway", "token").out.strip()
    process = subprocess.Popen(
        [str(CLONED), "gateway", "--listen", "127.0.0.1:0"],
        cwd=applied,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        found = re.fullmatch(r"gateway listening on (http://127\.0\.0\.1:\d+/mcp)\n", line)
        assert found, line
        url = found[1]

        async def main() -> None:
            async with httpx2.AsyncClient() as http:
                assert (await http.post(url, json={})).status_code == 401
            headers = {"Authorization": f"Bearer {token}"}
            async with (
                httpx2.AsyncClient(headers=headers) as http,
                Client(streamable_http_client(url, http_client=http)) as client,
            ):
                assert [t.name for t in (await client.list_tools()).tools] == SERVED

        anyio.run(main)
        # `connectors stats` sees this gateway through the status file it writes while serving.
        stats = json.loads(cloned("connectors", "stats", "--json", cwd=applied).out)
        assert stats["gateway"]["pid"] == process.pid
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert not (applied / ".cloned/state/runtime/status.json").exists()
        assert token not in (process.stderr.read() or "")
        assert process.stdout is not None and process.stdout.read() == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
