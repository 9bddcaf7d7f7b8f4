"""Approval requests: opened by apply for each gated change that is not yet approved.

A request's id is derived from its change hash, so re-running apply finds the same request
instead of opening another; a new version of a change supersedes the old version's request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from reconciler.plan.types import Change, RuleRef
from reconciler.redact import Redactor
from reconciler.state import approval_rows as rows
from reconciler.state.db import Connection, StateDB


def request_id(change_hash: str) -> str:
    """The short, stable id of the request for a change: 12 hex digits of its hash."""
    return change_hash.removeprefix("sha256:")[:12]


@dataclass(frozen=True)
class Request:
    """An approval request as stored."""

    id: str
    change_hash: str
    address: str
    action: str
    change: dict[str, Any]
    rules: tuple[RuleRef, ...]
    author: str
    status: str
    created_at: str
    updated_at: str
    superseded_by: str | None

    @classmethod
    def from_row(cls, row: rows.RequestRow) -> Request:
        return cls(
            id=row.id,
            change_hash=row.change_hash,
            address=row.address,
            action=row.action,
            change=json.loads(row.change),
            rules=tuple(RuleRef.from_json(rule) for rule in json.loads(row.rules)),
            author=row.author,
            status=row.status,
            created_at=row.created_at,
            updated_at=row.updated_at,
            superseded_by=row.superseded_by,
        )

    @property
    def origin(self) -> str:
        """Where the change is declared (`FILE:LINE`), as its plan JSON says."""
        return str(self.change.get("origin"))

    @property
    def risk(self) -> str:
        """The change's risk, as its plan JSON says."""
        return str(self.change.get("risk"))

    @property
    def diff(self) -> list[Any]:
        """The change's diff in its plan JSON form (what `reconciler.cli.diffview` renders)."""
        diff = self.change.get("diff")
        return diff if isinstance(diff, list) else []


@dataclass(frozen=True)
class Opened:
    """What `open_request` did."""

    request: Request
    created: bool
    superseded: tuple[str, ...]


CALL_ACTION = "call"
"""The action of a per-call approval request (a governed tool call, `governed.approval`): it
names no planned change, so apply neither supersedes nor retires it."""
GATE_ACTION = "gate"
"""The action of a pipeline step's gate (`runs.gates`): bound to a run, a step and the digest
of its resolved arguments; like a call's, no plan supersedes or retires it."""
UNPLANNED = frozenset({CALL_ACTION, GATE_ACTION})
"""Actions of requests that belong to no planned change."""


def open_request(
    connection: Connection, change: Change, *, author: str, at: str, redactor: Redactor
) -> Opened:
    """The request for this change, created if new; older pending versions are superseded.

    The stored summary (origin, risk, diff) is for display only, so it passes through
    `redactor`: the change hash, computed from the unredacted change, is what approvals sign."""
    summary = {
        "origin": change.proposed.origin,
        "risk": change.proposed.risk,
        "diff": [field.to_json() for field in change.proposed.diff],
    }
    return open_for(
        connection,
        change_hash=change.change_hash,
        address=change.address,
        action=change.action,
        summary=summary,
        rules=change.decision.requirements,
        author=author,
        at=at,
        redactor=redactor,
    )


def open_for(
    connection: Connection,
    *,
    change_hash: str,
    address: str,
    action: str,
    summary: dict[str, Any],
    rules: tuple[RuleRef, ...],
    author: str,
    at: str,
    redactor: Redactor,
    supersede: bool = True,
) -> Opened:
    """The request for the change hashed `change_hash`, created if new with `summary` (shown,
    redacted) and `rules`; with `supersede`, older open requests of `address` are superseded
    (a planned resource has one version; calls with other arguments do not replace each other)."""
    existing = rows.by_hash(connection, change_hash)
    if existing is not None and existing.status != "superseded":
        return Opened(Request.from_row(existing), False, ())
    new_id = request_id(change_hash)
    superseded = []
    for old in rows.active(connection, address) if supersede else ():
        if old.id != new_id and old.action not in UNPLANNED:
            rows.set_status(connection, old.id, "superseded", at, superseded_by=new_id)
            superseded.append(old.id)
    if existing is not None:
        # The change went back to a version that was requested before: that request (and the
        # approvals that name it) speaks for the change again.
        rows.set_status(connection, existing.id, "pending", at)
        revived = rows.by_hash(connection, change_hash)
        assert revived is not None
        return Opened(Request.from_row(revived), False, tuple(superseded))
    row = rows.RequestRow(
        id=new_id,
        change_hash=change_hash,
        address=address,
        action=action,
        change=json.dumps(redactor.data(summary), sort_keys=True),
        rules=json.dumps([rule.to_json() for rule in rules], sort_keys=True),
        author=author,
        status="pending",
        created_at=at,
        updated_at=at,
        superseded_by=None,
    )
    rows.insert(connection, row)
    return Opened(Request.from_row(row), True, tuple(superseded))


def mark(connection: Connection, request: Request, status: str, at: str) -> None:
    """Record a request's new status (approved once applied, denied, expired)."""
    if request.status != status:
        rows.set_status(connection, request.id, status, at)


def retire_obsolete(connection: Connection, current: set[str], at: str) -> list[tuple[str, str]]:
    """Supersede open requests whose change is no longer planned (reverted or already
    converged another way), per-call requests aside; returns their (id, address)."""
    retired = []
    for row in rows.active(connection):
        if row.change_hash not in current and row.action not in UNPLANNED:
            rows.set_status(connection, row.id, "superseded", at)
            retired.append((row.id, row.address))
    return retired


def all_requests(db: StateDB) -> list[Request]:
    """Every request, newest first."""
    return [Request.from_row(row) for row in rows.all_requests(db)]


def find(db: StateDB, prefix: str) -> Request:
    """The request whose id starts with `prefix`."""
    return Request.from_row(rows.find(db, prefix))
