"""One apply's run of its changes, under the workspace lock apply.py holds: for each change in
order, apply what policy allows, apply what valid approvals allow, open an approval request for
the rest, and report what policy forbids. Each applied change and its audit event commit in one
transaction, so a crash at any point leaves a state the next apply converges from. Afterwards
`cloned.lock` and the audit segments are written; a failure there is reported with what was
applied. A run whose changes would all end as they stand records nothing.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from reconciler.approvals import records as approval_records
from reconciler.approvals import requests
from reconciler.approvals.spent import SPENT_EVENT
from reconciler.approvals.validity import Evaluation, Panel, Subject, evaluate
from reconciler.audit.log import events
from reconciler.clock import now, stamp
from reconciler.engine import authorship, listing, lockfile
from reconciler.engine.applyresult import ApplyResult, StepFailed
from reconciler.engine.journal import Journal
from reconciler.engine.outcome import Outcome, count
from reconciler.engine.planner import Plan, pin_changes
from reconciler.engine.preview import spent_in
from reconciler.engine.session import Session
from reconciler.errors import ClonedError, Problem
from reconciler.load import refs
from reconciler.model import names
from reconciler.packages.refusal import PackageRefused
from reconciler.plan.types import Change
from reconciler.providers.base import ApplyContext
from reconciler.providers.lookup import provider_for
from reconciler.state import approval_rows, listings
from reconciler.state.db import StateDB
from reconciler.state.lock import WorkspaceLock


class Run:
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
        self.derived: list[Change] = []
        """Changes this apply proposed itself: the tool pins of connectors it installed."""
        self._settled_known = False
        self._settled_value: list[Outcome] | None = None
        self.records, unreadable = approval_records.read_all(root)
        self.ignored: dict[str, Problem] = {p.path: p for p in unreadable}
        self.spent = spent_in(db)
        self.dependencies = {
            resource.address: {names.address(k, n) for k, n in refs.dependencies(resource)}
            for resource in session.desired.resources
        }

    def busy(self) -> bool:
        """Whether this apply will record or write anything (a no-op checks less)."""
        return self._settled() is None or not lockfile.current(
            self.root, self.db, self.plan.actual_digest
        )

    def execute(self) -> ApplyResult:
        at = stamp()
        settled = self._settled()
        if settled is not None:
            # Nothing to do is not an event: a reconcile loop re-applying after an unrelated
            # commit, or an apply re-run while approvals are pending, must not grow the audit
            # log (nor make an audit commit) each time.
            return self._finish(settled, finished=True)
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
        try:
            for change in self.plan.changes:
                outcome = self._one(change, at)
                self.outcomes.append(outcome)
                self.outcomes.extend(self._listed(change, outcome, at))
                self.lock.renew()
        except ClonedError as exc:
            return self._failed("changes", exc)
        return self._finish(self.outcomes, finished=False)

    def _finish(self, outcomes: list[Outcome], *, finished: bool) -> ApplyResult:
        """The steps after the changes; a failure there is reported with what was applied."""
        stage = "finish"
        try:
            if not finished:
                self._record_finished(stamp())
            stage = "lock"
            lock_written = self._write_lock()
            stage = "export"
            files = self.journal.export(self.db, self.root)
        except ClonedError as exc:
            self.outcomes = list(outcomes)
            return self._failed(stage, exc)
        recovered = None if finished else self.recovered
        return ApplyResult(
            self.plan, tuple(outcomes), lock_written, files, recovered, ignored=self._ignored()
        )

    def _failed(self, stage: str, exc: ClonedError) -> ApplyResult:
        error = StepFailed(stage, exc.message, exc.hint)
        return ApplyResult(
            self.plan,
            tuple(self.outcomes),
            False,
            (),
            self.recovered,
            error=error,
            ignored=self._ignored(),
        )

    def _ignored(self) -> tuple[Problem, ...]:
        return tuple(self.ignored[path] for path in sorted(self.ignored))

    def _record_finished(self, at: str) -> None:
        with self.db.transaction() as connection:
            if not self.plan.targets:
                planned = {change.change_hash for change in (*self.plan.changes, *self.derived)}
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
                {"outcomes": count(self.outcomes)},
            )

    def _settled(self) -> list[Outcome] | None:
        """The outcomes, when every change would end exactly as it stands, writing nothing: each
        waits on approvals (or on such a change) under a request that is open already and keeps
        its status. None when this apply has something to do. Worked out once per apply."""
        if not self._settled_known:
            self._settled_value = self._work_out_settled()
            self._settled_known = True
        return self._settled_value

    def _work_out_settled(self) -> list[Outcome] | None:
        if self.recovered is not None or self._retirable():
            return None
        outcomes: list[Outcome] = []
        held: set[str] = set()
        for change in self.plan.changes:
            request = self._existing(change) if change.decision.kind == "approval" else None
            waits = sorted(self.dependencies.get(change.address, set()) & held)
            if change.decision.kind == "approval" and request is None:
                return None
            if waits:
                detail = f"waits for {', '.join(waits)}"
                outcomes.append(
                    Outcome(change.address, change.action, "skipped", detail, _id(request))
                )
            elif change.decision.kind == "deny":
                if not self._denied_before(change):
                    return None
                outcomes.append(_forbidden(change))
            elif request is None:
                return None  # applied: that records an event
            else:
                evaluation = self._evaluate(change, request)
                if evaluation.status == "approved" or evaluation.status != request.status:
                    return None
                outcomes.append(self._held(change, request, evaluation))
            held.add(change.address)
        return outcomes

    def _denied_before(self, change: Change) -> bool:
        """Whether the last outcome the audit log records for this address is this very change
        forbidden by policy (recording it again would say nothing new)."""
        found = events(self.db, type="change", subject=change.address)
        last = found[-1] if found else None
        return (
            last is not None
            and last.type == "change.denied"
            and last.payload.get("change_hash") == change.change_hash
        )

    def _existing(self, change: Change) -> requests.Request | None:
        """The open request for exactly this change, if there is one."""
        row = approval_rows.by_hash(self.db.reader, change.change_hash)
        if row is None or row.status == "superseded":
            return None
        return requests.Request.from_row(row)

    def _retirable(self) -> bool:
        """Whether an open approval request waits on a change this plan no longer has."""
        if self.plan.targets:
            return False
        planned = {change.change_hash for change in self.plan.changes}
        return any(
            row.change_hash not in planned and row.action not in requests.UNPLANNED
            for row in approval_rows.active(self.db.reader)
        )

    def _write_lock(self) -> bool:
        """Rewrite cloned.lock from the applied state when this apply changed it (or it is
        missing); rendering 10,000 resources costs ~0.1 s, so a no-op apply skips it."""
        applied = any(outcome.status == "applied" for outcome in self.outcomes)
        if not applied and lockfile.current(self.root, self.db, self.plan.actual_digest):
            return False
        return lockfile.write(self.root, self.db, self.session.redactor).changed

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
            return _forbidden(change)
        if decision.kind == "approval":
            return self._gated(change, at)
        return self._apply(change, at, approved_by=())

    def _listed(self, change: Change, outcome: Outcome, at: str) -> list[Outcome]:
        """After a connector is installed: list its tools and pin them (engine/listing.py)."""
        after = change.proposed.after
        if (
            outcome.status != "applied"
            or change.proposed.kind != "Connector"
            or after is None
            or not listing.needs_listing(self.db, change.address, after)
        ):
            return []
        listed = listing.list_installed(
            self.root, self.db, change.address, after, self.session.redactor
        )
        with self.db.transaction() as connection:
            if listed.listing is None:
                error = f"its tools could not be listed: {listed.error}"
                self.journal.record(
                    connection, "connector.unlisted", change.address, {"error": error}
                )
                return [Outcome(change.address, "update", "failed", error)]
            listings.put(connection, listed.listing)
            names_listed = sorted(str(tool.get("name")) for tool in listed.listing.tools)
            self.journal.record(
                connection, "connector.listed", change.address, {"tools": names_listed}
            )
        derived = listing.pin_change(
            change, listed.listing, policy=self.session.policy, bootstrap=self.plan.bootstrap
        )
        if derived is None:
            return []
        self.derived.append(derived)
        return [_pinned(derived, self._one(derived, at))]

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
        evaluation = self._evaluate(change, request)
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
        return self._held(change, request, evaluation)

    def _evaluate(self, change: Change, request: requests.Request) -> Evaluation:
        """The records judged for this change (noting each one that does not count)."""
        applied = self.session.actual.resources.get(change.address)
        author = authorship.for_change(
            self.root,
            self.session.approvers,
            change,
            applied_origin=applied.origin if applied is not None else None,
            head=authorship.head_commit(self.root),
            working_tree=True,
        )
        subject = Subject(request.id, change.change_hash, change.decision.requirements, author)
        panel = Panel(self.session.workspace, self.session.approvers, self.spent)
        evaluation = evaluate(subject, panel, self.records, now=now())
        for verdict in evaluation.verdicts:
            if verdict.reason is not None:
                self.ignored[verdict.path] = Problem(verdict.path, 0, 0, verdict.reason.text)
        judged = {verdict.path for verdict in evaluation.verdicts}
        for path, record in self.records:
            if (
                record.address == change.address
                and path not in judged
                and record.id not in self.spent
            ):
                self.ignored.setdefault(
                    path, Problem(path, 0, 0, "it approves an earlier version of this change")
                )
        return evaluation

    def _held(self, change: Change, request: requests.Request, evaluation: Evaluation) -> Outcome:
        """The outcome of a gated change its approvals do not (yet) let through."""
        if evaluation.status == "denied":
            return Outcome(
                change.address,
                change.action,
                "blocked",
                f"denied by {', '.join(evaluation.denied_by)}",
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
                context = ApplyContext(
                    connection,
                    self.plan.plan_id,
                    at,
                    self.root,
                    frozenset(self.session.fresh),
                    self.session.policy.registry_denies,
                )
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
                package = _package(change) if _installs(change) else None
                if package is not None:
                    self.journal.record(connection, "connector.installed", change.address, package)
                # An approval authorises one application of its change: the records used here
                # are spent, and the same change made again needs new ones.
                for verdict in evaluation.verdicts if evaluation is not None else ():
                    if verdict.counts and verdict.record.verdict == "approve":
                        self.spent.setdefault(verdict.record.id, 0)  # spent now, by this apply
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
                if isinstance(exc, PackageRefused):
                    refused = {
                        "reason": exc.reason,
                        "error": exc.message,
                        **(_package(change) or {}),
                    }
                    self.journal.record(connection, "connector.refused", change.address, refused)
            return Outcome(change.address, change.action, "failed", exc.message)
        detail = f"approved by {', '.join(approved_by)}" if approved_by else ""
        return Outcome(change.address, change.action, "applied", detail)


def _forbidden(change: Change) -> Outcome:
    rules = ", ".join(rule.id for rule in change.decision.rules)
    return Outcome(change.address, change.action, "denied", f"forbidden by {rules}")


def _id(request: requests.Request | None) -> str | None:
    return request.id if request is not None else None


def _package(change: Change) -> dict[str, Any] | None:
    """What a change installs, as `connector.installed` and `connector.refused` record it."""
    after = change.proposed.after if change.action != "delete" else None
    package = (after or {}).get("package")
    if not isinstance(package, dict):
        return None
    found = {key: package.get(key) for key in ("source", "version", "publisher", "digest")}
    registry = package.get("registry")
    if isinstance(registry, dict):
        found["registry"] = registry.get("name")
        found["target"] = registry.get("target")
    return found


def _pinned(change: Change, outcome: Outcome) -> Outcome:
    """The outcome of a pin change, saying which tools it pins (or would)."""
    moved = pin_changes(change.proposed)
    if outcome.status == "applied":
        names = ((change.proposed.after or {}).get("tools") or {}).get("names") or []
        what = f"pinned {len(names)} tool{'s' if len(names) != 1 else ''} ({', '.join(names)})"
    else:
        marks = [f"+{n}" for n in moved.get("added", [])] + [
            f"~{n}" for n in moved.get("changed", [])
        ]
        what = f"tools listed at install: {' '.join(marks)}" if marks else "tools listed at install"
    detail = f"{what}; {outcome.detail}" if outcome.detail else what
    return replace(outcome, detail=detail)


def _installs(change: Change) -> bool:
    """Whether applying `change` installs a package (not when only its tool pins change)."""
    before = change.proposed.before or {}
    after = change.proposed.after or {}
    return "installed" in before or before.get("package") != after.get("package")


def _summary(change: Change) -> dict[str, Any]:
    return {
        "action": change.action,
        "change_hash": change.change_hash,
        "decision": change.decision.kind,
        "rules": [rule.id for rule in change.decision.rules],
        "diff": [field.to_json() for field in change.proposed.diff],
    }
