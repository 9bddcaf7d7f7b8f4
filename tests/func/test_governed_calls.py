"""The governed call path end to end over a real applied workspace and real SQLite, with the
connector runtime in-process (`tests/fakes/connectors.py`): the order of checks, budgets under
concurrency, rate and concurrency limits, timeouts, the output cap and redaction, rug pulls,
and every call in a verifying audit chain."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from reconciler.governed.calls import CallRequest, GovernedCaller
from tests.fakes.clock import FakeClock
from tests.fakes.connectors import FakeConnectors
from tests.func.governed_helpers import Applied, applied, events

T = TypeVar("T")


def run(
    root: Path,
    fake: FakeConnectors,
    body: Callable[[GovernedCaller], Awaitable[T]],
    clock: FakeClock | None = None,
) -> T:
    async def main() -> T:
        caller = GovernedCaller(root, connectors=fake, clock=clock or FakeClock(), actor="test")
        try:
            return await body(caller)
        finally:
            await caller.aclose()

    return asyncio.run(main())


def call(tool: str, **arguments: Any) -> CallRequest:
    return CallRequest("notes", tool, arguments)


@pytest.fixture
def ws(tmp_path: Path) -> Applied:
    return applied(tmp_path)


def test_an_allowed_call_returns_the_result_and_is_audited(ws: Applied) -> None:
    fake = FakeConnectors()
    outcome = run(ws.repo, fake, lambda c: c.call(call("echo", text="hello")))
    assert outcome.decision == "allowed", outcome
    assert outcome.content == ({"type": "text", "text": "hello"},)
    assert not outcome.is_error
    assert fake.calls == [("echo", {"text": "hello"})]
    (event,) = events(ws.repo, "tool.called")
    payload = event["payload"]
    assert payload["decision"] == "allowed"
    assert payload["connector"] == "notes" and payload["tool"] == "echo"
    assert payload["args_digest"] == outcome.args_digest
    assert payload["arguments"] == {"text": "hello"}
    assert payload["result_bytes"] > 0 and payload["via"] == "cli"
    assert payload["error"] is None
    assert ws.run("audit", "verify").code == 0
