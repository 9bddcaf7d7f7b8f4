"""Per-call approvals: a tool under `tools.requireApproval` opens an ordinary approval request
bound to the exact arguments; `cloned approvals approve` lets that call through once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from reconciler.approvals import requests
from reconciler.governed.calls import CallOutcome, CallRequest, GovernedCaller
from reconciler.state.db import StateDB
from tests.fakes.clock import FakeClock
from tests.fakes.connectors import FakeConnectors
from tests.func.governed_helpers import SECRET, applied, events


def note(text: str, wait: float = 0.0) -> CallRequest:
    return CallRequest("notes", "add_note", {"name": "n", "text": text}, via="gateway", wait=wait)


def calls(root: Path, fake: FakeConnectors, *requests: CallRequest) -> list[CallOutcome]:
    async def main() -> list[CallOutcome]:
        caller = GovernedCaller(root, connectors=fake, clock=FakeClock())
        try:
            return [await caller.call(request) for request in requests]
        finally:
            await caller.aclose()

    return asyncio.run(main())


def test_an_approved_call_succeeds_once_with_the_same_arguments_only(tmp_path: Path) -> None:
    ws = applied(tmp_path)
    fake = FakeConnectors()
    (first,) = calls(ws.repo, fake, note(f"key {SECRET}"))
    assert first.decision == "approval" and first.is_error
    assert first.request_id is not None and first.request_id in str(first.reason)
    assert "cloned approvals approve" in str(first.reason)
    assert fake.calls == []

    (listed,) = json.loads(ws.run("approvals", "list", "--json").out)
    assert listed["id"] == first.request_id
    assert listed["address"] == "connector.notes" and listed["action"] == "call"
    assert listed["status"] == "pending"
    assert listed["rule"] == "calls/tools.requireApproval notes__add_note"
    shown = ws.run("approvals", "show", first.request_id)
    assert shown.code == 0, shown.err
    assert '+ tool: "notes__add_note"' in shown.out and "[REDACTED]" in shown.out
    assert SECRET not in shown.out

    approved = ws.run("approvals", "approve", first.request_id, "--key", "alice")
    assert approved.code == 0, approved.err
    # An apply in between neither supersedes nor retires the call's request. (Its retiring
    # step directly: the helper's pins are not audited, so apply refuses the workspace as
    # drifted until apply pins tools itself; then make this `ws.run("apply")`.)
    with StateDB.open(ws.repo) as db:
        assert db is not None
        with db.transaction() as connection:
            assert requests.retire_obsolete(connection, set(), "2026-01-01T12:00:00Z") == []

    used, again, other = calls(
        ws.repo, fake, note(f"key {SECRET}"), note(f"key {SECRET}"), note("other")
    )
    assert used.decision == "allowed", used.reason
    assert used.request_id == first.request_id
    assert used.rule == "calls/tools.requireApproval notes__add_note"
    assert again.decision == "approval" and again.request_id == first.request_id
    assert other.decision == "approval" and other.request_id != first.request_id
    assert len(fake.calls) == 1
    (spent,) = events(ws.repo, "approval.spent")
    assert spent["payload"]["request"] == first.request_id
    assert spent["payload"]["approver"] == "alice"
    statuses = {r["id"]: r["status"] for r in json.loads(ws.run("approvals", "list", "--json").out)}
    assert statuses[first.request_id] == "pending"  # the next such call needs a new approval
    assert ws.run("audit", "verify").code == 0


def test_a_call_that_waits_goes_through_once_approved_meanwhile(tmp_path: Path) -> None:
    from reconciler.usecases.approvals import approve

    ws = applied(tmp_path)
    fake = FakeConnectors()
    (first,) = calls(ws.repo, fake, note("wait for me"))
    assert first.request_id is not None
    request_id = first.request_id

    async def main() -> CallOutcome:
        caller = GovernedCaller(ws.repo, connectors=fake, clock=FakeClock())
        try:
            waiting = asyncio.ensure_future(caller.call(note("wait for me", wait=30)))
            await asyncio.sleep(0.15)
            assert not waiting.done()
            await asyncio.to_thread(
                approve, path=ws.repo, request_id=request_id, key=str(ws.alice / "keys" / "alice")
            )
            return await asyncio.wait_for(waiting, 10)
        finally:
            await caller.aclose()

    outcome = asyncio.run(main())
    assert outcome.decision == "allowed", outcome.reason
    assert len(fake.calls) == 1


def test_a_denied_call_is_refused(tmp_path: Path) -> None:
    ws = applied(tmp_path)
    fake = FakeConnectors()
    (first,) = calls(ws.repo, fake, note("no"))
    assert first.request_id is not None
    assert ws.run("approvals", "deny", first.request_id, "--key", "alice").code == 0
    (denied,) = calls(ws.repo, fake, note("no"))
    assert denied.decision == "refused" and "was denied" in str(denied.reason)
    assert fake.calls == []
