"""Apply: converge the actual state, one change per transaction, every step audited.

Under the workspace lock: re-plan (and, with a saved plan, require the very same plan id), then
for each change in order: apply what policy allows, apply what valid approvals allow, open an
approval request for the rest, and report what policy forbids. Each applied change and its audit
event commit in one transaction, so a crash at any point leaves a state the next apply converges
from. Afterwards `cloned.lock` and the audit segments are written.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from reconciler import gitrepo
from reconciler.approvals import records as approval_records
from reconciler.approvals import requests
from reconciler.approvals.validity import Evaluation, evaluate
from reconciler.audit.files import AUDIT_DIR
from reconciler.canonical import digest
from reconciler.clock import now, stamp
from reconciler.engine import actual as actual_state
from reconciler.engine import auditcommit, authorship, revision
from reconciler.engine.auditcommit import AuditCommit
from reconciler.engine.journal import Journal
from reconciler.engine.outcome import Outcome
from reconciler.engine.planfile import SavedPlan, stale_reasons
from reconciler.engine.planner import Plan
from reconciler.engine.preview import SPENT_EVENT, spent_in
from reconciler.engine.session import Session, open_session
from reconciler.errors import (
    ClonedError,
    ExitCode,
    GitFailed,
    NotAGitRepository,
    Problem,
    StalePlan,
)
from reconciler.load import refs
from reconciler.load.resources import DesiredState
from reconciler.load.workspace import load_desired_state
from reconciler.model import names
from reconciler.plan.types import Change
from reconciler.providers.base import ApplyContext
from reconciler.providers.registry import provider_for
from reconciler.state import approval_rows
from reconciler.state.db import DB_FILE, StateDB
from reconciler.state.lock import Holder, WorkspaceLock
from reconciler.state.meta import get_meta, set_meta

LOCK_WRITTEN_FROM = "lock_written_from"
"""meta key: digest of the applied state cloned.lock was last written from."""
LOCK_TEXT = "lock_text_sha256"
"""meta key: sha256 of the bytes cloned.lock was last written with."""


@dataclass(frozen=True)
class ApplyResult:
    """The result of one apply."""

    plan: Plan
    outcomes: tuple[Outcome, ...]
    lock_written: bool
    audit_files: tuple[str, ...]
    recovered: Holder | None
    audit_commit: AuditCommit | None = None
    ignored: tuple[Problem, ...] = ()
    """Approval records this apply did not count, and why: files that are no valid record,
    and records for a gated change of this plan that do not count (forged, expired, stale,
    spent, ineligible)."""

    @property
    def exit_code(self) -> ExitCode:
        """4 when policy or a denial blocks a change, 3 when approvals are pending, else 0."""
        statuses = {outcome.status for outcome in self.outcomes}
        if "failed" in statuses:
            return ExitCode.ERROR
        if statuses & {"denied", "blocked"}:
            return ExitCode.POLICY_DENIED
        if statuses & {"pending", "skipped"}:
            return ExitCode.APPROVALS_PENDING
        return ExitCode.OK


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
    # Invalid desired state is refused before anything is written, the state database included.
    if desired is None:
        desired = load_desired_state(root)
    _refuse_fresh_clone(root)
    db = StateDB.open(root)
    assert db is not None
    try:
        with WorkspaceLock(db, timeout=lock_timeout) as lock:
            session = open_session(root, db, desired=desired)
            plan = session.plan(saved.targets if saved is not None else targets)
            if saved is not None and saved.plan_id != plan.plan_id:
                raise StalePlan(
                    "the saved plan is stale: " + "; ".join(stale_reasons(saved, plan)),
                    hint="run `cloned plan --out FILE` again and review the new plan",
                )
            result = _Run(root, db, session, plan, lock).execute()
            if commit:
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
    finally:
        db.close()


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


def _refuse_fresh_clone(root: Path) -> None:
    """Fail closed in a checkout that has applied state in git but no state database: starting
    an empty one there would re-apply everything as a bootstrap, under the branch's own policy."""
    if (root / DB_FILE).exists():
        return
    committed = [p for p in (actual_state.LOCK_FILE, AUDIT_DIR) if (root / p).exists()]
    if committed:
        raise ClonedError(
            f"this checkout has applied state ({', '.join(str(p) for p in committed)}) but no "
            "state database, so apply cannot continue the workspace's history here",
            hint="run apply where the state database lives; `cloned plan` here is a dry run "
            "against cloned.lock",
        )


class _Run:
    """One apply's progress: outcomes so far and what they block."""

    def __init__(
        self, root: Path, db: StateDB, session: Session, plan: Plan, lock: WorkspaceLock
    ) -> None:
        self.root = root
        self.db = db
        self.session = session
        self.plan = plan
        self.lock = lock
        self.recovered = lock.recovered
        self.journal = Journal(session.actor, session.redactor)
        self.outcomes: list[Outcome] = []
        self.unconverged: set[str] = set()
        self.records, unreadable = approval_records.read_all(root)
        self.ignored: dict[str, Problem] = {p.path: p for p in unreadable}
        self.spent = spent_in(db)
        self.dependencies = {
            resource.address: {names.address(k, n) for k, n in refs.dependencies(resource)}
            for resource in session.desired.resources
        }

    def execute(self) -> ApplyResult:
        at = stamp()
        if not self.plan.changes and self.recovered is None and not self._retirable():
            # Nothing to do is not an event: a reconcile loop re-applying after an unrelated
            # commit must not grow the audit log (nor make an audit commit) each time.
            lock_written = self._write_lock()
            files = self.journal.export(self.db, self.root)
            return ApplyResult(self.plan, (), lock_written, files, None, ignored=self._ignored())
        with self.db.transaction() as connection:
            if self.recovered is not None:
                self.journal.record(
                    connection,
                    "lock.recovered",
                    "workspace",
                    {"stale_holder": self.recovered.describe()},
                )
            self.journal.record(
                connection,
                "apply.started",
                self.plan.plan_id,
                {"changes": len(self.plan.changes), "counts": self.plan.counts()},
            )
        for change in self.plan.changes:
            self.outcomes.append(self._one(change, at))
            self.lock.renew()
        with self.db.transaction() as connection:
            if not self.plan.targets:
                planned = {change.change_hash for change in self.plan.changes}
                for retired, address in requests.retire_obsolete(connection, planned, at):
                    self.journal.record(
                        connection,
                        "approval.superseded",
                        address,
                        {"request": retired, "reason": "the change is no longer planned"},
                    )
            self.journal.record(
                connection,
                "apply.finished",
                self.plan.plan_id,
                {"outcomes": _tally(self.outcomes)},
            )
        lock_written = self._write_lock()
        files = self.journal.export(self.db, self.root)
        return ApplyResult(
            self.plan,
            tuple(self.outcomes),
            lock_written,
            files,
            self.recovered,
            ignored=self._ignored(),
        )

    def _ignored(self) -> tuple[Problem, ...]:
        return tuple(self.ignored[path] for path in sorted(self.ignored))

    def _retirable(self) -> bool:
        """Whether an open approval request waits on a change this plan no longer has."""
        if self.plan.targets:
            return False
        return bool(approval_rows.active(self.db.reader))

    def _write_lock(self) -> bool:
        """Rewrite cloned.lock from the applied state when this apply changed it (or it is
        missing); rendering 10,000 resources costs ~0.1 s, so a no-op apply skips it."""
        applied = any(outcome.status == "applied" for outcome in self.outcomes)
        current = get_meta(self.db.reader, LOCK_WRITTEN_FROM)
        if not applied and current == self.plan.actual_digest and self._lock_intact():
            return False
        resources = actual_state.from_db(self.db).resources
        text = actual_state.render_lock(resources, self.session.redactor)
        written = actual_state.write_lock(self.root, text)
        with self.db.transaction() as connection:
            state = digest({address: r.digest for address, r in resources.items()})
            set_meta(connection, LOCK_WRITTEN_FROM, state)
            set_meta(connection, LOCK_TEXT, _sha256(text.encode()))
        return written

    def _lock_intact(self) -> bool:
        """Whether cloned.lock still has the bytes apply last wrote (a merge or a hand edit may
        have changed it; hashing the file is far cheaper than rendering it)."""
        try:
            data = (self.root / actual_state.LOCK_FILE).read_bytes()
        except OSError:
            return False
        return get_meta(self.db.reader, LOCK_TEXT) == _sha256(data)

    def _one(self, change: Change, at: str) -> Outcome:
        waits = sorted(self.dependencies.get(change.address, set()) & self.unconverged)
        if waits:
            self.unconverged.add(change.address)
            request = None
            if change.decision.kind == "approval":
                # Open the request now, so reviewers can approve the whole set in one pass.
                request = self._open(change, at).id
            detail = f"waits for {', '.join(waits)}"
            return Outcome(change.address, change.action, "skipped", detail, request)
        decision = change.decision
        if decision.kind == "deny":
            self.unconverged.add(change.address)
            with self.db.transaction() as connection:
                self.journal.record(connection, "change.denied", change.address, _summary(change))
            rules = ", ".join(rule.id for rule in decision.rules)
            return Outcome(change.address, change.action, "denied", f"forbidden by {rules}")
        if decision.kind == "approval":
            return self._gated(change, at)
        return self._apply(change, at, approved_by=())

    def _open(self, change: Change, at: str) -> requests.Request:
        """The request for this change, opened (and audited) if it is new."""
        with self.db.transaction() as connection:
            opened = requests.open_request(
                connection,
                change,
                author=self.session.actor,
                at=at,
                redactor=self.session.redactor,
            )
            for old in opened.superseded:
                self.journal.record(
                    connection,
                    "approval.superseded",
                    change.address,
                    {"request": old, "by": opened.request.id},
                )
            if opened.created:
                self.journal.record(
                    connection,
                    "approval.requested",
                    change.address,
                    {**_summary(change), "request": opened.request.id},
                )
        return opened.request

    def _gated(self, change: Change, at: str) -> Outcome:
        request = self._open(change, at)
        applied = self.session.actual.resources.get(change.address)
        author = authorship.for_change(
            self.root,
            self.session.approvers,
            change,
            applied_origin=applied.origin if applied is not None else None,
            head=authorship.head_commit(self.root),
            working_tree=True,
        )
        evaluation = evaluate(
            request_id=request.id,
            change_hash=change.change_hash,
            rules=change.decision.requirements,
            author=author,
            workspace=self.session.workspace,
            approvers=self.session.approvers,
            records=self.records,
            now=now(),
            spent=self.spent,
        )
        for verdict in evaluation.verdicts:
            if verdict.reason is not None:
                self.ignored[verdict.path] = Problem(verdict.path, 0, 0, verdict.reason.text)
        judged = {verdict.path for verdict in evaluation.verdicts}
        for path, record in self.records:
            if record.address == change.address and path not in judged:
                self.ignored.setdefault(
                    path, Problem(path, 0, 0, "it approves an earlier version of this change")
                )
        if evaluation.status == "approved":
            return self._apply(
                change,
                at,
                approved_by=evaluation.approved_by,
                request=request,
                evaluation=evaluation,
            )
        self.unconverged.add(change.address)
        with self.db.transaction() as connection:
            requests.mark(connection, request, evaluation.status, at)
        if evaluation.status == "denied":
            denied_by = sorted(
                v.record.approver
                for v in evaluation.verdicts
                if v.counts and v.record.verdict == "deny"
            )
            return Outcome(
                change.address,
                change.action,
                "blocked",
                f"denied by {', '.join(denied_by)}",
                request.id,
            )
        return Outcome(
            change.address, change.action, "pending", "; ".join(evaluation.missing), request.id
        )

    def _apply(
        self,
        change: Change,
        at: str,
        *,
        approved_by: tuple[str, ...],
        request: requests.Request | None = None,
        evaluation: Evaluation | None = None,
    ) -> Outcome:
        provider = provider_for(change.proposed.kind)
        assert provider is not None
        try:
            with self.db.transaction() as connection:
                context = ApplyContext(connection, self.plan.plan_id, at)
                if change.action == "delete":
                    provider.delete(context, change)
                else:
                    provider.apply(context, change)
                if request is not None:
                    requests.mark(connection, request, "approved", at)
                payload: dict[str, Any] = _summary(change)
                # What drift detection holds the state database to (engine/drift.py).
                payload["after_digest"] = change.after_digest if change.action != "delete" else None
                if approved_by:
                    payload["approved_by"] = list(approved_by)
                self.journal.record(connection, "change.applied", change.address, payload)
                # An approval authorises one application of its change: the records used here
                # are spent, and the same change made again needs new ones.
                for verdict in evaluation.verdicts if evaluation is not None else ():
                    if verdict.counts and verdict.record.verdict == "approve":
                        self.journal.record(
                            connection,
                            SPENT_EVENT,
                            change.address,
                            {
                                "request": verdict.record.request_id,
                                "approver": verdict.record.approver,
                                "record": verdict.record.id,
                                "file": verdict.path,
                            },
                        )
        except ClonedError as exc:
            self.unconverged.add(change.address)
            with self.db.transaction() as connection:
                self.journal.record(
                    connection,
                    "change.failed",
                    change.address,
                    {**_summary(change), "error": exc.message},
                )
            return Outcome(change.address, change.action, "failed", exc.message)
        detail = f"approved by {', '.join(approved_by)}" if approved_by else ""
        return Outcome(change.address, change.action, "applied", detail)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _summary(change: Change) -> dict[str, Any]:
    return {
        "action": change.action,
        "change_hash": change.change_hash,
        "decision": change.decision.kind,
        "rules": [rule.id for rule in change.decision.rules],
        "diff": [field.to_json() for field in change.proposed.diff],
    }


def _tally(outcomes: list[Outcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return counts
