"""The governed call path against a real connector process: the builtin `notes` server,
started from its verified install over stdio.

LEAD: these use `tests/fakes/stdio_connectors.py`; point them at
`reconciler.runtime.supervisor.Supervisor` (and `runtime.launch.launch_of`) at merge.
"""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any

from reconciler.governed.calls import CallOutcome, CallRequest, GovernedCaller
from tests.conftest import REPO
from tests.fakes.stdio_connectors import StdioConnectors
from tests.func.governed_helpers import applied, events, pin


def notes_tools() -> list[dict[str, Any]]:
    spec = importlib.util.spec_from_file_location(
        "notes_server", REPO / "connectors/notes/server.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.TOOLS)


def test_real_notes_calls_go_through_and_bad_arguments_never_reach_it(tmp_path: Path) -> None:
    ws = applied(tmp_path)
    pin(ws.repo, "notes", notes_tools())
    runtime = StdioConnectors()

    async def main() -> list[CallOutcome]:
        caller = GovernedCaller(ws.repo, connectors=runtime, actor="test")
        try:
            return [
                await caller.call(CallRequest("notes", "list_notes", {})),
                await caller.call(CallRequest("notes", "read_note", {"name": "Not Valid!"})),
                await caller.call(CallRequest("notes", "read_note", {"name": "missing"})),
            ]
        finally:
            await caller.aclose()
            await runtime.stop()

    listed, invalid, missing = asyncio.run(main())
    assert listed.decision == "allowed" and not listed.is_error, listed.reason
    assert invalid.decision == "refused" and "at $.name" in str(invalid.reason)
    assert missing.decision == "allowed" and missing.is_error  # the tool's own error
    assert runtime.starts == 1
    called = [e["payload"] for e in events(ws.repo, "tool.called")]
    assert [p["decision"] for p in called] == ["allowed", "refused", "allowed"]
    assert called[2]["error"].startswith("the tool answered with an error")
    assert ws.run("audit", "verify").code == 0


def test_changed_installed_files_are_refused_before_the_next_start(tmp_path: Path) -> None:
    """The installed files are verified before each start of the connector (not on every call
    a running process answers): once it stops, a changed store entry refuses the call."""
    ws = applied(tmp_path)
    pin(ws.repo, "notes", notes_tools())
    runtime = StdioConnectors()
    (server,) = (ws.repo / ".cloned" / "state" / "store").glob("sha256/*/server.py")

    async def main() -> list[CallOutcome]:
        caller = GovernedCaller(ws.repo, connectors=runtime, actor="test")
        try:
            first = await caller.call(CallRequest("notes", "list_notes", {}))
            await runtime.stop()
            server.parent.chmod(0o755)
            server.chmod(0o644)
            server.write_text(server.read_text() + "\n# changed after install\n")
            return [first, await caller.call(CallRequest("notes", "list_notes", {}))]
        finally:
            await caller.aclose()
            await runtime.stop()

    first, second = asyncio.run(main())
    assert first.decision == "allowed" and not first.is_error, first.reason
    assert second.decision == "refused" and second.rule == "package"
    assert "installed files differ" in str(second.reason)
    assert runtime.starts == 1
