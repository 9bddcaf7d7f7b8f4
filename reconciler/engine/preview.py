"""A plan with what reviewers need beside it: who has approved each gated change, and (with
`--base REF`) which changes the branch makes. Used by `cloned plan` and `cloned approvals`.

Two sources:
- here: the desired state in the working tree against the state database, or in a fresh clone
  against the committed `cloned.lock`; approval records from the working tree.
- `--base REF`: everything from git objects. The applied state, and so the policy that decides
  and the approvers whose signatures count, is REF's `cloned.lock`; the desired state and the
  approval records are HEAD's commit. A branch can therefore neither loosen the policy that
  judges it nor approve itself by adding an approver or editing the lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler import gitrepo
from reconciler.approvals import records as approval_records
from reconciler.approvals import requests
from reconciler.approvals import spent as spent_events
from reconciler.approvals.records import Record
from reconciler.approvals.spent import SPENT_EVENT, spent_from
from reconciler.approvals.validity import (
    Authorship,
    Evaluation,
    Panel,
    Spent,
    Subject,
    evaluate,
)
from reconciler.audit.files import SEGMENTS_DIR, list_segments, read_lines
from reconciler.canonical import digest, parse_json
from reconciler.clock import now
from reconciler.engine import authorship
from reconciler.engine import revision as revisions
from reconciler.engine.planfile import plan_json
from reconciler.engine.planner import Plan, resource_state
from reconciler.engine.revision import Revision
from reconciler.engine.session import Session, open_session
from reconciler.errors import Problem
from reconciler.load.files import CLONED_DIR, is_resource_path
from reconciler.plan.document import PlanDocument
from reconciler.plan.types import Change
from reconciler.state.db import StateDB

MAX_SEGMENT_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Preview:
    """One plan and its review context."""

    session: Session
    plan: Plan
    base: Revision | None
    head: Revision | None
    records: list[tuple[str, Record]]
    record_problems: list[Problem]
    known: dict[str, requests.Request]  # requests in the state database, by id
    branch_changed: frozenset[str] | None  # addresses HEAD's desired state changes vs REF's
    spent: Spent  # approvals an apply already used (the base's audit log, with a base)
    _authors: dict[str, Authorship] = field(default_factory=dict)

    @property
    def local(self) -> bool:
        """Planned against this checkout's state database (where apply runs)."""
        return self.base is None and self.session.actual.source == "state"

    def author(self, change: Change) -> Authorship:
        """Who the change is by, for rules with `excludeAuthor`: the approver who signed the
        commit that introduced it (HEAD's, with a base; else the working tree's, where an
        uncommitted edit has no author), or why that is not known (engine/authorship.py)."""
        if change.change_hash not in self._authors:
            applied = self.session.actual.resources.get(change.address)
            self._authors[change.change_hash] = authorship.for_change(
                self.session.root,
                self.session.approvers,
                change,
                applied_origin=applied.origin if applied is not None else None,
                head=self.head.commit
                if self.head is not None
                else authorship.head_commit(self.session.root),
                working_tree=self.base is None,
            )
        return self._authors[change.change_hash]

    def evaluation(self, change: Change) -> Evaluation | None:
        """The approvals a gated change has (None for changes that need none)."""
        if change.decision.kind != "approval":
            return None
        subject = Subject(
            requests.request_id(change.change_hash),
            change.change_hash,
            change.decision.requirements,
            self.author(change),
        )
        panel = Panel(self.session.workspace, self.session.approvers, self.spent)
        return evaluate(subject, panel, self.records, now=now())

    def document(self, *, created_at: str) -> PlanDocument:
        """The plan as its typed document: what `cloned plan` renders, prints and saves."""
        return PlanDocument.from_json(self.to_json(created_at=created_at))

    def to_json(self, *, created_at: str) -> dict[str, Any]:
        """The plan JSON, with each gated change's approvals and the revisions planned."""
        payload = plan_json(
            self.plan,
            created_at=created_at,
            redactor=self.session.redactor,
        )
        for entry, change in zip(payload["changes"], self.plan.changes, strict=True):
            evaluation = self.evaluation(change)
            if evaluation is not None:
                entry["approvals"] = {
                    "request": requests.request_id(change.change_hash),
                    "status": evaluation.status,
                    "approved_by": list(evaluation.approved_by),
                    "denied_by": list(evaluation.denied_by),
                    "missing": list(evaluation.missing),
                }
            if self.branch_changed is not None:
                entry["in_branch"] = change.address in self.branch_changed
        if self.base is not None and self.head is not None:
            payload["base"] = {"ref": self.base.ref, "commit": self.base.commit}
            payload["head"] = {"ref": self.head.ref, "commit": self.head.commit}
        return payload


def preview(
    root: Path,
    *,
    base: str | None = None,
    targets: tuple[str, ...] = (),
    use_cache: bool = True,
    refresh: bool = False,
) -> Preview:
    """The plan for the workspace at `root`: here, or HEAD against `base` from git objects."""
    if base is not None:
        return _against(root, base, targets, refresh)
    with StateDB.existing(root) as db:
        session = open_session(root, db, use_cache=use_cache)
        known = {r.id: r for r in requests.all_requests(db)} if db is not None else {}
        spent = spent_in(db) if db is not None else spent_in_tree(root)
    found, problems = approval_records.read_all(root)
    return Preview(
        session,
        session.plan(targets, refresh=refresh),
        None,
        None,
        found,
        problems,
        known,
        branch_changed=None,
        spent=spent,
    )


def _against(root: Path, base_ref: str, targets: tuple[str, ...], refresh: bool) -> Preview:
    base = revisions.resolve(root, base_ref, flag="--base")
    head = revisions.head(root)
    actual = revisions.actual_at(root, base)
    desired = revisions.desired_at(root, head)
    session = open_session(
        root, None, desired=desired, actual=actual, lock_label=f"cloned.lock at {base.describe()}"
    )
    found, problems = revisions.records_at(root, head)
    return Preview(
        session,
        session.plan(targets, refresh=refresh),
        base,
        head,
        found,
        problems,
        {},
        _branch_changes(root, base, head, session),
        spent=spent_at(root, base),
    )


def spent_in(db: StateDB) -> dict[str, int]:
    """The approvals applies used, from the state database's audit log."""
    return spent_events.spent_in(db.reader)


def spent_in_tree(root: Path) -> dict[str, int]:
    """The approvals applies used, from the audit segments in the working tree (a clone
    without the state database)."""
    segments, _ = list_segments(root)
    found: list[tuple[int, str, object]] = []
    for segment in segments:
        try:
            lines = read_lines(root / segment.rel)
        except (OSError, UnicodeDecodeError):
            continue  # `cloned audit verify` reports it
        found += _event_fields(lines)
    return spent_from(found)


def spent_at(root: Path, revision: Revision) -> dict[str, int]:
    """The approvals applies used, from the audit segments committed at `revision` (the base
    of a pull request: what the reconciler had applied when the branch was reviewed)."""
    files, _ = gitrepo.read_files(
        root,
        revision.commit,
        SEGMENTS_DIR.as_posix(),
        max_bytes=MAX_SEGMENT_BYTES,
        wanted=lambda rel: rel.endswith(".jsonl"),
    )
    found: list[tuple[int, str, object]] = []
    for file in files:
        found += _event_fields(file.data.decode("utf-8", "replace").splitlines())
    return spent_from(found)


def _event_fields(lines: list[str]) -> list[tuple[int, str, object]]:
    found: list[tuple[int, str, object]] = []
    for line in lines:
        try:
            event = parse_json(line)
        except ValueError:
            continue  # `cloned audit verify` reports it
        if isinstance(event, dict) and event.get("type") == SPENT_EVENT:
            found.append((event.get("seq", 0), SPENT_EVENT, event.get("payload")))
    return found


def _branch_changes(
    root: Path, base: Revision, head: Revision, session: Session
) -> frozenset[str] | None:
    """The addresses whose desired state HEAD changes relative to REF's: only files that differ
    between the two commits are read at REF (None when one of them does not validate there:
    then every change is the branch's to explain)."""
    changed = [
        rel
        for rel in gitrepo.changed_between(root, base.commit, head.commit, CLONED_DIR)
        if is_resource_path(rel)
    ]
    if not changed:
        return frozenset()
    old = revisions.digests_at(root, base, changed)
    if old is None:
        return None
    files = set(changed)
    new = {
        r.address: digest(resource_state(r.data))
        for r in session.desired.resources
        if r.file in files
    }
    return frozenset(a for a in old.keys() | new.keys() if old.get(a) != new.get(a))
