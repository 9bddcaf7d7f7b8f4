"""`apply`: converge the workspace, under the lock, with every step audited (engine/apply.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.engine.apply import ApplyResult
from reconciler.engine.auditcommit import AuditCommit
from reconciler.engine.outcome import STATUS_WORDS, Outcome, describe_counts
from reconciler.errors import ExitCode
from reconciler.state.db import DB_FILE
from reconciler.usecases.runs import Executed, Progress

__all__ = ["STATUS_WORDS", "Applied", "AuditCommit", "Outcome", "apply", "describe_counts"]


@dataclass(frozen=True)
class Applied:
    """What one apply did: each change's outcome, the files written, the audit commit, the
    approval records it did not count, and the step that failed after the changes, if any."""

    result: ApplyResult
    runs: Executed | None = None
    """The runs executed after the changes (those the apply queued, and those waiting)."""

    @property
    def exit_code(self) -> ExitCode:
        if self.result.exit_code != ExitCode.OK or self.runs is None:
            return self.result.exit_code
        return self.runs.exit_code

    @property
    def outcomes(self) -> tuple[Outcome, ...]:
        return self.result.outcomes

    def summary(self) -> str:
        """`2 applied, 1 awaiting approval`, or `no changes`."""
        return self.result.summary()

    def to_json(self) -> dict[str, Any]:
        result = self.result
        return {
            "plan_id": result.plan.plan_id,
            "outcomes": [
                {
                    "address": o.address,
                    "action": o.action,
                    "status": o.status,
                    "detail": o.detail,
                    "request": o.request_id,
                }
                for o in result.outcomes
            ],
            "lock_written": result.lock_written,
            "audit_files": list(result.audit_files),
            "audit_commit": result.audit_commit.to_json() if result.audit_commit else None,
            "ignored_approvals": [{"file": p.path, "reason": p.message} for p in result.ignored],
            "error": result.error.to_json() if result.error else None,
            "runs": [run.to_json() for run in self.runs.runs] if self.runs else [],
            "exit_code": int(self.exit_code),
        }


def apply(
    *,
    path: Path,
    planfile: Path | None = None,
    targets: tuple[str, ...] = (),
    lock_timeout: float = 0.0,
    commit: bool = True,
    progress: Progress | None = None,
) -> Applied:
    """Apply the workspace containing `path`: exactly the saved `planfile` when given (refused
    when stale), else a fresh plan; then, unless `commit` is False, the audit commit; then the
    runs it queued (and those waiting) execute, reporting to `progress`."""
    from reconciler.engine.apply import apply as run_apply
    from reconciler.engine.planfile import load
    from reconciler.load.files import find_root

    saved = load(planfile) if planfile is not None else None
    root = find_root(path)
    result = run_apply(root, saved=saved, targets=targets, lock_timeout=lock_timeout, commit=commit)
    if result.error is not None or not (root / DB_FILE).is_file():
        return Applied(result)
    from reconciler.usecases.runs import execute

    return Applied(result, execute(root, actor="apply", progress=progress))
