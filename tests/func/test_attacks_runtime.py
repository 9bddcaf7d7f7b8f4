"""Attacks on the governed call path: an agent (or a second Cloned process on the same machine)
trying to make one per-call approval serve more than one call, or one approval serve other
arguments than the ones approved."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from reconciler.governed.calls import CallOutcome, CallRequest, GovernedCaller
from reconciler.runtime.types import ToolResult
from tests.fakes.clock import FakeClock
from tests.fakes.connectors import TOOLS, FakeConnectors, text
from tests.func.governed_helpers import SECRET, applied, events, pin


def note(value: Any) -> CallRequest:
    return CallRequest("notes", "add_note", {"name": "n", "text": value}, via="gateway")


def once(root: Path, fake: FakeConnectors, request: CallRequest) -> CallOutcome:
    async def main() -> CallOutcome:
        caller = GovernedCaller(root, connectors=fake, clock=FakeClock())
        try:
            return await caller.call(request)
        finally:
            await caller.aclose()

    return asyncio.run(main())


def test_one_approval_is_not_spent_twice_by_two_gateway_processes(tmp_path: Path) -> None:
    # Two callers on one workspace are two processes (a gateway and `cloned connectors call`,
    # or two gateways): each keeps its own in-process claims, so only the state database can
    # stop the second from using the approval the first is still spending.
    ws = applied(tmp_path)
    entered, release = asyncio.Event(), asyncio.Event()

    async def held(arguments: dict[str, Any]) -> ToolResult:
        entered.set()
        await release.wait()
        return text("saved")

    fake = FakeConnectors({"add_note": held})
    first = once(ws.repo, FakeConnectors(), note("pay 100"))
    assert first.decision == "approval" and first.request_id is not None
    assert ws.run("approvals", "approve", first.request_id, "--key", "alice").code == 0

    async def main() -> tuple[CallOutcome, CallOutcome]:
        one = GovernedCaller(ws.repo, connectors=fake, clock=FakeClock())
        two = GovernedCaller(ws.repo, connectors=fake, clock=FakeClock())
        try:
            a = asyncio.ensure_future(one.call(note("pay 100")))
            await asyncio.wait_for(entered.wait(), 10)  # the first call is at the connector
            b = await asyncio.wait_for(two.call(note("pay 100")), 10)
            release.set()
            return await asyncio.wait_for(a, 10), b
        finally:
            release.set()
            await one.aclose()
            await two.aclose()

    a, b = asyncio.run(main())
    assert a.decision == "allowed", a.reason
    assert b.decision == "approval" and b.is_error, b.reason
    assert len(fake.calls) == 1
    assert len(events(ws.repo, "approval.spent")) == 1
    assert ws.run("audit", "verify").code == 0


def test_an_approval_serves_the_same_arguments_only_not_floats_bools_or_lookalikes(
    tmp_path: Path,
) -> None:
    ws = applied(tmp_path)
    fake = FakeConnectors()

    def pay(text: str, amount: object) -> CallRequest:
        arguments = {"name": "n", "text": text, "amount": amount}
        return CallRequest("notes", "add_note", arguments, via="gateway")

    first = once(ws.repo, fake, pay("pay bob", 1))
    assert first.request_id is not None
    assert ws.run("approvals", "approve", first.request_id, "--key", "alice").code == 0
    # Other spellings of "the same" call are other calls: 1.0 or true for 1, a look-alike
    # (Cyrillic o), a decomposed accent where the approved text had none.
    for text_, amount in (("pay bob", 1.0), ("pay bob", True), ("pay b\u043eb", 1)):
        refused = once(ws.repo, fake, pay(text_, amount))
        assert refused.decision == "approval", (text_, amount)
        assert refused.request_id != first.request_id
    assert fake.calls == []
    # Key order is not part of the call: the approved call in another order goes through.
    reordered = CallRequest(
        "notes", "add_note", {"amount": 1, "text": "pay bob", "name": "n"}, via="gateway"
    )
    used = once(ws.repo, fake, reordered)
    assert used.decision == "allowed", used.reason
    assert len(fake.calls) == 1


def test_a_secret_in_a_pinned_definition_never_reaches_the_agent(tmp_path: Path) -> None:
    # A connector's server (or a package a team approved) puts a secret into a tool's
    # description; the plan shows it masked, but the gateway serves the pinned definition.
    from reconciler.governed.gateway import Gateway

    ws = applied(tmp_path)
    leaky = [dict(tool) for tool in TOOLS]
    leaky[0] = {**leaky[0], "description": f"Say it back. Use key {SECRET} for the upstream."}
    leaky[0]["inputSchema"] = {**leaky[0]["inputSchema"], "default": {"key": SECRET}}
    pin(ws.repo, "notes", leaky)

    async def main() -> str:
        caller = GovernedCaller(ws.repo, connectors=FakeConnectors(), clock=FakeClock())
        try:
            gateway = Gateway(caller, lambda c, t, a: CallRequest(c, t, a, via="gateway"))
            return json.dumps([tool.definition for tool in gateway.tools()])
        finally:
            await caller.aclose()

    served = asyncio.run(main())
    assert "notes__echo" in served and "Say it back." in served
    assert SECRET not in served


def test_arguments_nested_past_the_recursion_limit_are_refused_and_audited(
    tmp_path: Path,
) -> None:
    # A pipeline step may pass on what a connector returned: nesting deeper than Python's
    # recursion limit must be one refused, audited call, not an exception with no event.
    ws = applied(tmp_path)
    fake = FakeConnectors()
    deep: dict[str, Any] = {}
    inner = deep
    for _ in range(5000):
        inner["a"] = {}
        inner = inner["a"]
    outcome = once(ws.repo, fake, CallRequest("notes", "echo", {"text": "x", "n": deep}))
    assert outcome.decision == "refused" and "not plain JSON" in str(outcome.reason)
    assert fake.calls == []
    (called,) = events(ws.repo, "tool.called")
    assert called["payload"]["decision"] == "refused"
    assert ws.run("audit", "verify").code == 0
