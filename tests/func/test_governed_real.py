"""The governed call path against a real connector process: the builtin `notes` server,
started from its verified install over stdio by the runtime's supervisor, with the pins apply
took from it."""

from __future__ import annotations

from pathlib import Path

import anyio

from reconciler.governed.calls import CallOutcome, CallRequest, GovernedCaller
from reconciler.redact import Redactor
from reconciler.runtime.supervisor import Supervisor
from tests.func.governed_helpers import applied, events


def test_real_notes_calls_go_through_and_bad_arguments_never_reach_it(tmp_path: Path) -> None:
    ws = applied(tmp_path, "real")

    async def main() -> tuple[list[CallOutcome], int]:
        async with Supervisor(redactor=Redactor()) as supervisor:
            caller = GovernedCaller(ws.repo, connectors=supervisor, actor="test")
            try:
                outcomes = [
                    await caller.call(CallRequest("notes", "list_notes", {})),
                    await caller.call(CallRequest("notes", "read_note", {"name": "Not Valid!"})),
                    await caller.call(CallRequest("notes", "read_note", {"name": "missing"})),
                ]
            finally:
                await caller.aclose()
            return outcomes, supervisor.status("notes").restarts

    (listed, invalid, missing), restarts = anyio.run(main)
    assert listed.decision == "allowed" and not listed.is_error, listed.reason
    assert invalid.decision == "refused" and "at $.name" in str(invalid.reason)
    assert missing.decision == "allowed" and missing.is_error  # the tool's own error
    assert restarts == 0
    called = [e["payload"] for e in events(ws.repo, "tool.called")]
    assert [p["decision"] for p in called] == ["allowed", "refused", "allowed"]
    assert called[2]["error"].startswith("the tool answered with an error")
    assert ws.run("audit", "verify").code == 0
    assert ws.run("plan", "--detailed-exitcode").code == 0  # the real pins: nothing to re-pin


def test_changed_installed_files_are_refused_before_the_next_start(tmp_path: Path) -> None:
    """The installed files are verified before each start of the connector (not on every call
    a running process answers): once it stops, a changed store entry refuses the call."""
    ws = applied(tmp_path, "real")
    (server,) = (ws.repo / ".cloned" / "state" / "store").glob("sha256/*/server.py")

    async def main() -> tuple[CallOutcome, CallOutcome, int]:
        async with Supervisor(redactor=Redactor()) as supervisor:
            caller = GovernedCaller(ws.repo, connectors=supervisor, actor="test")
            try:
                first = await caller.call(CallRequest("notes", "list_notes", {}))
                started = supervisor.status("notes").pid
                await supervisor.stop("notes")
                server.parent.chmod(0o755)
                server.chmod(0o644)
                server.write_text(server.read_text() + "\n# changed after install\n")
                second = await caller.call(CallRequest("notes", "list_notes", {}))
                return first, second, int(started is not None)
            finally:
                await caller.aclose()

    first, second, started = anyio.run(main)
    assert first.decision == "allowed" and not first.is_error, first.reason
    assert started == 1
    assert second.decision == "refused" and second.rule == "package"
    assert "installed files differ" in str(second.reason)
