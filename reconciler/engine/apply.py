"""Apply: converge the actual state, one change per transaction, every step audited.

Refused first, with nothing written, where the workspace has applied history but no state
database to continue it (preflight.py). Under the workspace lock: re-plan (and, with a saved
plan, require the very same plan id), check what the steps after the changes will need
(preflight.py), run the changes (run.py), then make the audit commit (auditcommit.py). The
result types live in applyresult.py and are re-exported here.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from reconciler import gitrepo
from reconciler.atomic import CLONED_DIR, remove_stale
from reconciler.engine import auditcommit, preflight, revision
from reconciler.engine.applyresult import STAGES, ApplyResult, StepFailed
from reconciler.engine.planfile import SavedPlan, stale_reasons
from reconciler.engine.run import Run
from reconciler.engine.session import open_session
from reconciler.errors import GitFailed, NotAGitRepository, StalePlan
from reconciler.load.resources import DesiredState
from reconciler.load.workspace import load_desired_state
from reconciler.state.db import StateDB
from reconciler.state.lock import WorkspaceLock, pid_alive

__all__ = ["STAGES", "ApplyResult", "StepFailed", "apply"]


def apply(
    root: Path,
    *,
    saved: SavedPlan | None = None,
    targets: tuple[str, ...] = (),
    lock_timeout: float = 0.0,
    commit: bool = True,
    desired: DesiredState | None = None,
) -> ApplyResult:
    """Apply the plan for the workspace at `root` (exactly `saved`, when given); then, unless
    `commit` is False, make the audit commit. `desired` is used when the caller loaded it."""
    # A workspace that cannot continue its history, and invalid desired state, are refused
    # before anything is written: the state database and the validation cache included.
    preflight.refuse_tracked_state(root)
    with StateDB.existing(root) as db:
        preflight.refuse_unknown_history(root, db)
        if desired is None:
            desired = load_desired_state(root)
        if db is not None:
            return _converge(root, db, desired, saved, targets, lock_timeout, commit)
    created = StateDB.open(root)
    assert created is not None
    with created:
        return _converge(root, created, desired, saved, targets, lock_timeout, commit)


def _converge(
    root: Path,
    db: StateDB,
    desired: DesiredState,
    saved: SavedPlan | None,
    targets: tuple[str, ...],
    lock_timeout: float,
    commit: bool,
) -> ApplyResult:
    """Under the workspace lock: plan, check, apply, and make the audit commit."""
    with WorkspaceLock(db, timeout=lock_timeout) as lock:
        remove_stale(root / CLONED_DIR, alive=pid_alive)
        session = open_session(root, db, desired=desired)
        plan = session.plan(saved.targets if saved is not None else targets)
        if saved is not None and saved.plan_id != plan.plan_id:
            raise StalePlan(
                "the saved plan is stale: " + "; ".join(stale_reasons(saved, plan)),
                hint="run `cloned plan --out FILE` again and review the new plan",
            )
        run = Run(root, db, session, plan, lock)
        preflight.check(root, db, busy=run.busy(), commit=commit)
        result = run.execute()
        if commit and result.error is None:
            made = auditcommit.commit(
                root,
                db,
                plan.plan_id,
                result.outcomes,
                desired_commit=_desired_commit(root),
                redactor=session.redactor,
            )
            result = replace(result, audit_commit=made)
        return result


def _desired_commit(root: Path) -> str:
    """The commit whose desired state this apply converges to (and whether edits were on top)."""
    try:
        at = gitrepo.head(root).commit
        dirty = bool(revision.uncommitted(root)) if at is not None else False
    except NotAGitRepository:
        return "none (not a git repository)"
    except GitFailed as exc:
        return f"unknown ({exc.message})"
    if at is None:
        return "none (no commit yet)"
    return f"{at} (with uncommitted changes)" if dirty else at
