"""Drift: where the actual state no longer is what the last apply left, apart from any pending
desired change (that is `cloned plan`'s business).

Three checks, each against a record Cloned wrote itself:
- `modified`: an applied record whose content no longer hashes to the digest it was applied
  with (the state database was edited outside Cloned);
- `unaudited`: an applied record the audit log does not account for: its digest differs from
  the one the last `change.applied` event for it recorded, or it exists though the audit log
  says it was deleted or never applied it;
- `lock`: `cloned.lock` in the working tree differs from the applied state (missing, edited by
  hand, or left behind by an apply that could not write it).

Repair (`heal`, used by `cloned reconcile --self-heal`): a record goes back to the state the
audit log says was applied, taken from `cloned.lock` as committed at HEAD when it holds exactly
that state; otherwise the record is made truthful (its digest recomputed, or an unaccounted-for
record removed) so the next plan shows the difference and policy judges it. Then `cloned.lock`
is rewritten from the repaired state. Every repair is one audited transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from reconciler.audit.log import events
from reconciler.canonical import digest
from reconciler.clock import stamp
from reconciler.engine import actual as actual_state
from reconciler.engine import revision
from reconciler.engine.journal import Journal
from reconciler.errors import ClonedError
from reconciler.providers.base import ActualResource
from reconciler.redact import Redactor
from reconciler.state import resources as rows
from reconciler.state.db import StateDB

Kind = Literal["modified", "unaudited", "lock"]


@dataclass(frozen=True)
class Drifted:
    """One resource (or the lock file) that drifted, and how."""

    kind: Kind
    address: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "address": self.address, "detail": self.detail}


@dataclass(frozen=True)
class Report:
    """Everything that drifted; empty when the actual state is what the last apply left."""

    items: tuple[Drifted, ...]
    checked: int  # applied resources checked

    @property
    def drifted(self) -> bool:
        return bool(self.items)


def detect(root: Path, db: StateDB) -> Report:
    """Compare the applied records with their digests, the audit log and `cloned.lock`."""
    found: list[Drifted] = []
    applied = {row.address: row for row in rows.all_rows(db)}
    audited = _audited(db)
    for address, row in sorted(applied.items()):
        content = digest(json.loads(row.state))
        if content != row.digest:
            found.append(
                Drifted("modified", address, "its content no longer matches what was applied")
            )
        last = audited.get(address, _NEVER)
        if last is _NEVER:
            found.append(Drifted("unaudited", address, "the audit log never applied it"))
        elif last is None:
            found.append(Drifted("unaudited", address, "the audit log says it was deleted"))
        elif last is not _UNKNOWN and last != row.digest:
            found.append(
                Drifted("unaudited", address, "it differs from the state the last apply recorded")
            )
    for address, last in sorted(audited.items()):
        if isinstance(last, str) and address not in applied:
            found.append(Drifted("unaudited", address, "applied, but missing from the state"))
    found.extend(_lock_drift(root, applied))
    return Report(tuple(found), len(applied))


_NEVER = object()
_UNKNOWN = object()


def _audited(db: StateDB) -> dict[str, object]:
    """address -> the digest the last `change.applied` event recorded (None after a delete;
    `_UNKNOWN` for events written before digests were recorded)."""
    last: dict[str, object] = {}
    for event in events(db, type="change.applied"):
        payload: dict[str, Any] = event.payload
        if "after_digest" not in payload:
            last[event.subject] = None if payload.get("action") == "delete" else _UNKNOWN
        else:
            last[event.subject] = payload["after_digest"]
    return last


def _lock_drift(root: Path, applied: dict[str, rows.Row]) -> list[Drifted]:
    path = root / actual_state.LOCK_FILE
    lock = str(actual_state.LOCK_FILE)
    if not path.exists():
        return [Drifted("lock", lock, "missing")] if applied else []
    try:
        recorded = actual_state.parse_lock(path.read_bytes(), lock).resources
    except ClonedError as exc:
        return [Drifted("lock", lock, exc.message)]
    found = []
    for address in sorted(applied.keys() | recorded.keys()):
        row, entry = applied.get(address), recorded.get(address)
        if row is None:
            found.append(Drifted("lock", address, "in cloned.lock but not applied"))
        elif entry is None:
            found.append(Drifted("lock", address, "applied but missing from cloned.lock"))
        elif entry.digest != row.digest:
            found.append(Drifted("lock", address, "cloned.lock records another state"))
    return found


@dataclass(frozen=True)
class Repair:
    """What `heal` did to one drifted resource."""

    address: str
    action: str  # restored | redigested | removed | lock rewritten

    def to_json(self) -> dict[str, str]:
        return {"address": self.address, "action": self.action}


def heal(
    root: Path, db: StateDB, report: Report, *, actor: str, redactor: Redactor
) -> list[Repair]:
    """Repair what `report` found (see the module doc); returns what was done."""
    if not report.drifted:
        return []
    committed = _committed_lock(root)
    audited = _audited(db)
    applied = {row.address: row for row in rows.all_rows(db)}
    repairs: list[Repair] = []
    at = stamp()
    journal = Journal(actor, redactor)
    broken = sorted({i.address for i in report.items if i.kind in ("modified", "unaudited")})
    with db.transaction() as connection:
        for address in broken:
            row = applied.get(address)
            want = audited.get(address, _NEVER)
            entry = committed.get(address)
            if (
                isinstance(want, str)
                and entry is not None
                and entry.digest == want
                and (digest(entry.state) == want)
            ):
                rows.put(
                    connection,
                    rows.Row(
                        address=address,
                        kind=entry.kind,
                        name=entry.name,
                        state=json.dumps(entry.state, sort_keys=True),
                        digest=want,
                        origin=row.origin if row is not None else "cloned.lock",
                        applied_at=at,
                        plan_id=row.plan_id if row is not None else "drift-repair",
                    ),
                )
                repairs.append(Repair(address, "restored"))
            elif row is not None and (want is _NEVER or want is None):
                rows.delete(connection, address)
                repairs.append(Repair(address, "removed"))
            elif row is not None:
                truthful = digest(json.loads(row.state))
                rows.put(connection, replace(row, digest=truthful))
                repairs.append(Repair(address, "redigested"))
        if repairs:
            journal.record(connection, "drift.repaired", "workspace", _repaired(report, repairs))
    resources = actual_state.from_db(db).resources
    if actual_state.write_lock(root, actual_state.render_lock(resources, redactor)):
        rewritten = Repair(str(actual_state.LOCK_FILE), "lock rewritten")
        repairs.append(rewritten)
        with db.transaction() as connection:
            journal.record(
                connection, "drift.repaired", "cloned.lock", _repaired(report, [rewritten])
            )
    journal.export(db, root)
    return repairs


def _repaired(report: Report, repairs: list[Repair]) -> dict[str, Any]:
    return {
        "found": [item.to_json() for item in report.items],
        "repairs": [repair.to_json() for repair in repairs],
    }


def _committed_lock(root: Path) -> dict[str, ActualResource]:
    """The applied state cloned.lock records at HEAD (empty outside git, before the first
    commit, or when it has none or it does not parse)."""
    try:
        return revision.actual_at(root, revision.head(root)).resources
    except ClonedError:
        return {}


def check(root: Path) -> tuple[Report, int | None]:
    """Drift of the workspace at `root` (read-only), and how many desired changes are pending
    besides (None when the desired state does not validate)."""
    from reconciler.engine.session import open_session
    from reconciler.errors import ValidationFailed

    db = StateDB.open(root, create=False)
    if db is None:
        raise ClonedError(
            "no state database here, so there is no actual state to check for drift",
            hint="run drift where apply runs; in CI, `cloned plan --base REF` shows what a "
            "branch changes",
        )
    try:
        report = detect(root, db)
        try:
            pending: int | None = len(open_session(root, db).plan().changes)
        except ValidationFailed:
            pending = None
    finally:
        db.close()
    return report, pending
