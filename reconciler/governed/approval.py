"""Per-call approvals: a tool the policy lists in `tools.requireApproval` (or a call over a
budget whose `onExceed` is `requireApproval`) needs an approval of that very call.

The request is an ordinary approval request (`approvals.requests.open_for`, action `call`,
address `connector.NAME`), so `cloned approvals list|show|approve|deny` work on it. Its change
hash binds the workspace, the connector, the tool, the sha256 of the exact canonical arguments,
the tool's pin digest and what gates it: other arguments, or a re-pinned tool, are another
request. Records are judged by `approvals.validity.evaluate` as apply judges them, and an
approval is spent by the call that uses it (`approvals.spent`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from reconciler.approvals import records as approval_records
from reconciler.approvals import requests
from reconciler.approvals.spent import SPENT_EVENT
from reconciler.approvals.validity import (
    NOT_NEEDED,
    Panel,
    Subject,
    Verdict,
    approvers_in,
    evaluate,
)
from reconciler.audit.log import append
from reconciler.canonical import digest
from reconciler.governed.applied import AppliedView
from reconciler.governed.budgets import Exceeded
from reconciler.plan.types import Requirement, RuleRef
from reconciler.redact import Redactor
from reconciler.state.db import Connection

CALL_APPROVERS = Requirement(count=1, groups=("admins",))
"""Who approves one call: one admin (a pack's `tools.requireApproval` names patterns only)."""


def tool_gate(view: AppliedView, connector: str, tool: str) -> RuleRef | None:
    """The rule that makes this tool's calls need an approval, if the policy has one."""
    pattern = view.require_approval(connector, tool)
    if pattern is None:
        return None
    pack = next((p.name for p in view.policy.packs if pattern in p.tools_require_approval), "")
    return RuleRef(
        pack=pack or "policy",
        rule=f"tools.requireApproval {pattern}",
        decision="approval",
        requirement=CALL_APPROVERS,
        reason=f"calls of tools matching {pattern!r} need an approval of the exact arguments",
    )


def budget_gate(over: Exceeded) -> RuleRef:
    """The rule of a budget whose `onExceed: requireApproval` lets an approved call exceed it."""
    return RuleRef(
        pack=over.rule,
        rule=f"onExceed requireApproval {over.period}",
        decision="approval",
        requirement=CALL_APPROVERS,
        reason=over.reason,
    )


@dataclass(frozen=True)
class CallSubject:
    """One exact call, as its approval request binds it."""

    workspace: str
    connector: str
    tool: str
    args_digest: str
    pin: str
    gates: tuple[RuleRef, ...]

    @property
    def address(self) -> str:
        return f"connector.{self.connector}"

    @property
    def change_hash(self) -> str:
        """What an approval of this call signs."""
        return digest(
            {
                "kind": "tool.call",
                "workspace": self.workspace,
                "address": self.address,
                "tool": self.tool,
                "args_digest": self.args_digest,
                "pin": self.pin,
                "gates": sorted(rule.id for rule in self.gates),
            }
        )


@dataclass(frozen=True)
class Gated:
    """Where a gated call stands: its request, the judged status, and the approvals it would
    spend when approved."""

    request: requests.Request
    status: str
    spend: tuple[Verdict, ...]
    missing: tuple[str, ...]


def judge(
    connection: Connection,
    subject: CallSubject,
    *,
    root: Path,
    view: AppliedView,
    shown: Mapping[str, Any],
    spent: Mapping[str, int],
    actor: str,
    at: str,
    now: datetime,
    redactor: Redactor,
) -> Gated:
    """Open (or find) the call's request inside the caller's transaction and judge the records
    on disk for it; `shown` is the redacted summary `cloned approvals show` prints."""
    request = open_unplanned(
        connection,
        change_hash=subject.change_hash,
        address=subject.address,
        action=requests.CALL_ACTION,
        shown=shown,
        rules=subject.gates,
        actor=actor,
        at=at,
        redactor=redactor,
    )
    records, _ = approval_records.read_all(root)
    panel = Panel(view.workspace, approvers_in(view.workspace_spec), spent)
    judged = Subject(request.id, subject.change_hash, subject.gates, NOT_NEEDED)
    evaluation = evaluate(judged, panel, records, now=now)
    # A request whose approval a call spent is pending again for the next such call.
    if evaluation.status != "approved":
        requests.mark(connection, request, evaluation.status, at)
    spend = tuple(v for v in evaluation.verdicts if v.counts and v.record.verdict == "approve")
    return Gated(request, evaluation.status, spend, evaluation.missing)


def open_unplanned(
    connection: Connection,
    *,
    change_hash: str,
    address: str,
    action: str,
    shown: Mapping[str, Any],
    rules: tuple[RuleRef, ...],
    actor: str,
    at: str,
    redactor: Redactor,
) -> requests.Request:
    """The request of something no plan holds (a call, a run's gate), opened if new (no plan
    supersedes it) and announced once as `approval.requested`."""
    opened = requests.open_for(
        connection,
        change_hash=change_hash,
        address=address,
        action=action,
        summary=dict(shown),
        rules=rules,
        author=actor,
        at=at,
        redactor=redactor,
        supersede=False,
    )
    if opened.created:
        append(
            connection,
            actor=actor,
            type="approval.requested",
            subject=address,
            payload={"request": opened.request.id, "change_hash": change_hash, **shown},
            redactor=redactor,
        )
    return opened.request


def summary(subject: CallSubject, *, arguments: Any, via: str, public: str) -> dict[str, Any]:
    """The request's stored change: what the reviewer reads (arguments already redacted)."""
    return {
        "tool": subject.tool,
        "args_digest": subject.args_digest,
        "arguments": arguments,
        "pin": subject.pin,
        "via": via,
        "origin": f"a {via} call of {public}",
        "risk": "call",
        "diff": [{"path": "tool", "after": public}, {"path": "arguments", "after": arguments}],
    }


def spend(connection: Connection, gated: Gated, *, actor: str, at: str, redactor: Redactor) -> None:
    """Spend the approvals a call uses and mark its request approved (inside the transaction
    that admits the call)."""
    for verdict in gated.spend:
        append(
            connection,
            actor=actor,
            type=SPENT_EVENT,
            subject=gated.request.address,
            payload={
                "request": gated.request.id,
                "approver": verdict.record.approver,
                "record": verdict.record.id,
                "file": verdict.path,
            },
            redactor=redactor,
        )
    requests.mark(connection, gated.request, "approved", at)
