"""Applied workspaces for the governed call path's tests.

One workspace is built and applied per test process (keys, Workspace, a PolicyPack, the
builtin `notes` connector, budgets), then copied for each test. Until apply pins tools at
install, these workspaces are applied for real; `pin` then overwrites the `tools` block of the
applied Connector with the in-process fake's tools (exactly as `runtime.definitions.tools_block`
makes it), for tests that need a server misbehaving in ways notes never does.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from reconciler.canonical import digest
from reconciler.governed.calls import CallOutcome, CallRequest, GovernedCaller
from reconciler.redact import Redactor
from reconciler.runtime.definitions import tools_block
from reconciler.runtime.supervisor import Supervisor
from reconciler.state import resources
from reconciler.state.db import StateDB
from tests.conftest import cloned, commit_all, git, write
from tests.fakes.connectors import TOOLS

PACK = """\
apiVersion: cloned/v1
kind: PolicyPack
metadata: {name: calls}
spec:
  extends: baseline
  tools:
    deny: ["*__delete_*"]
    requireApproval: [notes__add_note]
  redaction:
    - {name: live-keys, regex: "sk-live-[A-Za-z0-9]{16}"}
"""
CONNECTOR = """\
apiVersion: cloned/v1
kind: Connector
metadata: {name: notes}
spec:
  source: {builtin: notes}
  version: 0.1.0
  publisher: cloned
  limits: {concurrency: 4, timeoutSeconds: 0.5}
"""
BUDGET = """\
apiVersion: cloned/v1
kind: Budget
metadata: {name: seven}
spec:
  scope: {connector: notes}
  period: day
  limits: {calls: 7}
  onExceed: block
"""
SECRET = "sk-live-Q7ZK2M9XW4PA8RJD"


@dataclass
class Applied:
    repo: Path
    alice: Path  # alice's CLONED_HOME (an admin)

    def run(self, *args: str) -> Any:
        return cloned(*args, cwd=self.repo, env={"CLONED_HOME": str(self.alice)})


_BUILT: dict[str, Path] = {}


def applied(tmp_path: Path, variant: str = "plain") -> Applied:
    """A copy of the applied workspace `variant`: `plain` and `budget` (the 7-call budget) pin
    the in-process fake's tools (tests/fakes/connectors.py) over the real ones; `real` keeps the
    notes server's own pins, as apply listed them."""
    if variant not in _BUILT:
        _BUILT[variant] = _build(tmp_path.parent / f"governed-{variant}", variant)
    source = _BUILT[variant]
    target = tmp_path / "ws"
    shutil.copytree(source, target, symlinks=True)
    return Applied(target / "repo", target / "alice")


def _build(base: Path, variant: str) -> Path:
    repo, alice = base / "repo", base / "alice"
    repo.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=repo)
    made = cloned("keys", "generate", "alice", env={"CLONED_HOME": str(alice)})
    assert made.code == 0, made.err
    write(
        repo,
        ".cloned/workspace.yaml",
        "apiVersion: cloned/v1\nkind: Workspace\nmetadata:\n  name: calls\nspec:\n"
        "  policyPacks: [calls]\n  approvers:\n"
        f'    - name: alice\n      publicKey: "{made.out.strip()}"\n      groups: [admins]\n',
    )
    write(repo, ".cloned/policy.yaml", PACK)
    write(repo, ".cloned/connectors.yaml", CONNECTOR)
    if variant == "budget":
        write(repo, ".cloned/budgets.yaml", BUDGET)
    write(repo, ".gitignore", ".cloned/state/\n")
    commit_all(repo, "governed workspace")
    done = cloned("apply", cwd=repo, env={"CLONED_HOME": str(alice)})
    assert done.code == 0, done.out + done.err
    if variant != "real":  # `real` keeps the pins apply took from the notes server itself
        pin(repo, "notes", TOOLS)
    return base


def pin(repo: Path, name: str, tools: list[dict[str, Any]]) -> None:
    """Record `tools` as the pinned listing of connector `name` in its applied state."""
    with StateDB.open(repo) as db:
        assert db is not None
        with db.transaction() as connection:
            row = resources.get(connection, f"connector.{name}")
            assert row is not None
            state = json.loads(row.state)
            state["tools"] = tools_block(tools, where=name)
            text = json.dumps(state, sort_keys=True, separators=(",", ":"))
            resources.put(
                connection,
                resources.Row(**{**row.__dict__, "state": text, "digest": digest(state)}),
            )


def events(repo: Path, kind: str) -> list[dict[str, Any]]:
    """The audit events of type `kind`, as `cloned audit log --json` prints them."""
    shown = cloned("audit", "log", "--json", "--type", kind, cwd=repo)
    assert shown.code == 0, shown.err
    return [json.loads(line) for line in shown.out.splitlines() if line.strip()]


def real_calls(repo: Path, *requests: CallRequest) -> list[CallOutcome]:
    """Make `requests` in turn through the governed path with the real supervisor (the
    connectors it starts are stopped at the end)."""

    async def main() -> list[CallOutcome]:
        async with Supervisor(redactor=Redactor()) as supervisor:
            caller = GovernedCaller(repo, connectors=supervisor, actor="test")
            try:
                return [await caller.call(request) for request in requests]
            finally:
                await caller.aclose()

    return anyio.run(main)
