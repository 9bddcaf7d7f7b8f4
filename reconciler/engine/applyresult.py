"""What one apply returns: its outcomes, what it wrote, and the step after the changes that
failed, if one did. Built by the run of an apply (run.py), returned by apply (apply.py), read by
the apply use case and the reconcile loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.engine.auditcommit import AuditCommit
from reconciler.engine.outcome import Outcome, count, describe_counts
from reconciler.engine.planner import Plan
from reconciler.errors import ExitCode, Problem
from reconciler.state.lock import Holder

STAGES = {
    "changes": "applying the changes",
    "finish": "recording the end of the apply",
    "lock": "writing .cloned/cloned.lock",
    "export": "exporting the audit log",
}
"""The steps of an apply after its first change, as a failure names them."""


@dataclass(frozen=True)
class StepFailed:
    """A step after the changes that failed: which (a key of STAGES), and why."""

    stage: str
    message: str
    hint: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"stage": self.stage, "message": self.message, "hint": self.hint}

    def describe(self) -> str:
        return f"{STAGES[self.stage]} failed: {self.message}"


@dataclass(frozen=True)
class ApplyResult:
    """The result of one apply."""

    plan: Plan
    outcomes: tuple[Outcome, ...]
    lock_written: bool
    audit_files: tuple[str, ...]
    recovered: Holder | None
    audit_commit: AuditCommit | None = None
    error: StepFailed | None = None
    ignored: tuple[Problem, ...] = ()
    """Approval records this apply did not count, and why: files that are no valid record,
    and records for a gated change of this plan that do not count (forged, expired, stale,
    spent, ineligible)."""

    def counts(self) -> dict[str, int]:
        """How many outcomes of each status, in the order they first occur."""
        return count(self.outcomes)

    def summary(self) -> str:
        """`2 applied, 1 awaiting approval`: the outcomes counted by status, or `no changes`."""
        return describe_counts(self.counts()) or "no changes"

    @property
    def exit_code(self) -> ExitCode:
        """1 when a change or a later step failed, 4 when policy or a denial blocks a change,
        3 when approvals are pending, else 0."""
        statuses = {outcome.status for outcome in self.outcomes}
        if "failed" in statuses or self.error is not None:
            return ExitCode.ERROR
        if statuses & {"denied", "blocked"}:
            return ExitCode.POLICY_DENIED
        if statuses & {"pending", "skipped"}:
            return ExitCode.APPROVALS_PENDING
        return ExitCode.OK
