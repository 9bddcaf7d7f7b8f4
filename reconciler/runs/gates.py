"""A step's gate: a pause behind a signed approval bound to the run, the step and the digest of
its resolved arguments (specs/runs.md, "Gates").

The request is an ordinary approval request (action `gate`, address `run.NAME`), so `cloned
approvals list|show|approve|deny` work on it; records are judged by
`approvals.validity.evaluate` exactly as apply judges them, against the applied Workspace's
approvers and the gate's `count` and `groups`. Other arguments (an input changed, an earlier
step answered differently) are another request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from reconciler.approvals import records as approval_records
from reconciler.approvals import requests
from reconciler.approvals.validity import NOT_NEEDED, Panel, Subject, approvers_in, evaluate
from reconciler.canonical import digest
from reconciler.governed.approval import open_unplanned
from reconciler.model.workspace import WorkspaceSpec
from reconciler.plan.types import Requirement, RuleRef
from reconciler.redact import Redactor
from reconciler.state.db import Connection


@dataclass(frozen=True)
class GateSubject:
    """One gated step of one run, as its approval request binds it."""

    workspace: str
    run: str
    run_id: str
    step: str
    args_digest: str
    count: int
    groups: tuple[str, ...]
    target: str = ""
    """What the step calls, as applied when the gate is judged: a tool's pin digest, a Model's
    state digest. An upgrade applied after the approval is another request."""

    @property
    def address(self) -> str:
        return f"run.{self.run}"

    @property
    def rule(self) -> RuleRef:
        """The gate as an approval rule (who may approve, and how many)."""
        return RuleRef(
            pack="pipeline",
            rule=f"steps.{self.step}.gate",
            decision="approval",
            requirement=Requirement(count=self.count, groups=self.groups),
            reason=f"step {self.step} of run {self.run_id} waits for an approval (gate)",
        )

    @property
    def change_hash(self) -> str:
        """What an approval of this gate signs."""
        return digest(
            {
                "kind": "run.gate",
                "workspace": self.workspace,
                "address": self.address,
                "run_id": self.run_id,
                "step": self.step,
                "args_digest": self.args_digest,
                "target": self.target,
                "rule": self.rule.id,
            }
        )


@dataclass(frozen=True)
class GateState:
    """Where a gate stands: its request and `approved`, `pending` or `denied` (or `expired`)."""

    request: requests.Request
    status: str
    missing: tuple[str, ...]


def judge(
    connection: Connection,
    subject: GateSubject,
    *,
    root: Path,
    workspace_spec: WorkspaceSpec,
    shown: dict[str, Any],
    actor: str,
    at: str,
    now: datetime,
    redactor: Redactor,
) -> GateState:
    """Open (or find) the gate's request inside the caller's transaction and judge the records
    on disk for it."""
    request = open_unplanned(
        connection,
        change_hash=subject.change_hash,
        address=subject.address,
        action=requests.GATE_ACTION,
        shown=shown,
        rules=(subject.rule,),
        actor=actor,
        at=at,
        redactor=redactor,
    )
    records, _ = approval_records.read_all(root)
    panel = Panel(subject.workspace, approvers_in(workspace_spec), {})
    judged = Subject(request.id, subject.change_hash, (subject.rule,), NOT_NEEDED)
    evaluation = evaluate(judged, panel, records, now=now)
    requests.mark(connection, request, evaluation.status, at)
    return GateState(request, evaluation.status, evaluation.missing)


def approved_by(
    root: Path,
    request: requests.Request,
    *,
    workspace: str,
    workspace_spec: WorkspaceSpec,
    at: datetime,
) -> tuple[str, ...]:
    """Who approved `request` with a record that counts for its rules, judged as `judge` judges
    them at `at` (when the step went on): a record whose signature does not verify, or from
    someone outside the rule's groups, is nobody's approval, and a provenance never names it."""
    records, _ = approval_records.read_all(root)
    panel = Panel(workspace, approvers_in(workspace_spec), {})
    judged = Subject(request.id, request.change_hash, request.rules, NOT_NEEDED)
    return evaluate(judged, panel, records, now=at).approved_by


def summary(subject: GateSubject, *, arguments: Any, kind: str, target: str) -> dict[str, Any]:
    """The request's stored change: what the reviewer reads (arguments already redacted)."""
    return {
        "run_id": subject.run_id,
        "step": subject.step,
        "args_digest": subject.args_digest,
        "arguments": arguments,
        "origin": f"step {subject.step} of run {subject.run} ({subject.run_id})",
        "risk": "gate",
        "diff": [
            {"path": "step", "after": f"{subject.step}: {kind} {target}"},
            {"path": "arguments", "after": arguments},
        ],
    }
