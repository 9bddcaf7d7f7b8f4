"""Drift: where the actual state no longer is what the last apply left, apart from any pending
desired change (that is `cloned plan`'s business).

Three checks, each against a record Cloned wrote itself:
- `modified`: an applied record whose content no longer hashes to the digest it was applied
  with (the state database was edited outside Cloned);
- `tools`: a connector whose last listing seen of its applied package (live, by the runtime or
  `plan --refresh`) differs from its pins; it is a change to review (`cloned plan`), never
  repaired here.
- `unaudited`: an applied record the audit log does not account for: its digest differs from
  the one the last `change.applied` event for it recorded, or it exists though the audit log
  says it was deleted or never applied it;
- `lock`: `cloned.lock` in the working tree differs from the applied state (missing, edited by
  hand, or left behind by an apply that could not write it).

Repair (`heal`, used by `cloned reconcile --self-heal`): a record goes back to the state the
audit log says was applied, taken from any version of `cloned.lock` (the working tree's, then
the committed ones, newest first) whose state hashes to the digest the audit log recorded; a
record the audit log never applied, or says was deleted, is removed. A record with no such
evidence is left alone and stays drift: it is never made to look audited, and apply refuses to
plan against it or write it to `cloned.lock` (`unaccounted`, `UnaccountedState`). Then
`cloned.lock` is rewritten from the repaired state. Every repair is one audited transaction.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, cast, get_args

from reconciler import gitrepo
from reconciler.audit.log import events
from reconciler.canonical import digest
from reconciler.clock import stamp
from reconciler.engine import actual as actual_state
from reconciler.engine import revision
from reconciler.engine.journal import Journal
from reconciler.errors import ClonedError, StateUnavailable
from reconciler.providers.base import ActualResource, ApplyContext
from reconciler.providers.lookup import provider_for
from reconciler.redact import Redactor
from reconciler.state import listings
from reconciler.state import resources as rows
from reconciler.state.db import StateDB

Kind = Literal["modified", "unaudited", "lock", "tools"]


@dataclass(frozen=True)
class Drifted:
    """One resource (or the lock file) that drifted, and how."""

    kind: Kind
    address: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "address": self.address, "detail": self.detail}

    @classmethod
    def from_json(cls, data: Any) -> Drifted:
        """A finding as `to_json` wrote it (the reconcile status file); ValueError otherwise."""
        if not isinstance(data, dict) or not all(
            isinstance(data.get(key), str) for key in ("kind", "address", "detail")
        ):
            raise ValueError("a drift finding needs kind, address and detail")
        if data["kind"] not in get_args(Kind):
            raise ValueError(f"{data['kind']!r} is not a kind of drift")
        return cls(cast(Kind, data["kind"]), data["address"], data["detail"])


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
    applied = {row.address: row for row in rows.all_rows(db)}
    found = _unaccounted(applied, _audited(db))
    found.extend(_lock_drift(root, applied))
    found.extend(_tools_drift(db, applied))
    return Report(tuple(found), len(applied))


def _tools_drift(db: StateDB, applied: dict[str, rows.Row]) -> list[Drifted]:
    """Connectors whose last listing seen (by the runtime, `plan --refresh` or apply) of the
    applied package differs from their pins: served from the pins, the rest refused, until a
    plan re-pinning them is approved. Nothing here is repaired: it is a change to review."""
    from reconciler.runtime.definitions import compare

    found = []
    for address, listing in listings.all_listings(db).items():
        row = applied.get(address)
        if row is None:
            continue
        state = json.loads(row.state)
        if listing.package_digest != (state.get("package") or {}).get("digest"):
            continue
        moved = [d for d in compare(state.get("tools"), listing.tools) if d.status != "same"]
        if moved:
            marks = {"changed": "~", "new": "+", "removed": "-"}
            what = " ".join(f"{marks[d.status]}{d.name}" for d in moved)
            detail = (
                f"its live tools differ from the pins ({what}; seen by {listing.observed_by} "
                f"at {listing.observed_at}); `cloned plan` shows the re-pin to review"
            )
            found.append(Drifted("tools", address, detail))
    return found


def unaccounted(db: StateDB) -> list[Drifted]:
    """The `modified` and `unaudited` findings: applied records the audit log does not account
    for. Nothing may be planned against them or written from them to `cloned.lock`."""
    return _unaccounted({row.address: row for row in rows.all_rows(db)}, _audited(db))


class UnaccountedState(ClonedError):
    """The state database holds records the audit log does not account for.

    Permanent: retrying changes nothing, so the reconcile loop reports it once and waits for
    new inputs instead of retrying it."""

    def __init__(self, items: list[Drifted], *, doing: str) -> None:
        listed = "; ".join(f"{item.address}: {item.detail}" for item in items)
        super().__init__(
            f"the state database holds records the audit log does not account for ({listed}), "
            f"so {doing}",
            hint="see `cloned drift`; `cloned reconcile --once --self-heal` restores the "
            "audited state",
        )
        self.items = tuple(items)


def _unaccounted(applied: dict[str, rows.Row], audited: dict[str, object]) -> list[Drifted]:
    found: list[Drifted] = []
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
    return found


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
    action: str  # restored | removed | lock rewritten

    def to_json(self) -> dict[str, str]:
        return {"address": self.address, "action": self.action}

    @classmethod
    def from_json(cls, data: Any) -> Repair:
        """A repair as `to_json` wrote it; ValueError otherwise."""
        if not isinstance(data, dict) or not all(
            isinstance(data.get(key), str) for key in ("address", "action")
        ):
            raise ValueError("a repair needs address and action")
        return cls(data["address"], data["action"])


def heal(
    root: Path, db: StateDB, report: Report, *, actor: str, redactor: Redactor
) -> list[Repair]:
    """Repair what `report` found (see the module doc); returns what was done. What no evidence
    can repair is left as it is (`unaccounted` still finds it), and nothing is recorded for it,
    so repeating the repair repeats nothing."""
    if not report.drifted:
        return []
    audited = _audited(db)
    applied = {row.address: row for row in rows.all_rows(db)}
    broken = sorted({i.address for i in report.items if i.kind in ("modified", "unaudited")})
    targets = {a: t for a in broken if isinstance(t := _target(audited, applied, a), str)}
    states = audited_states(root, targets)
    repairs: list[Repair] = []
    at = stamp()
    journal = Journal(actor, redactor)
    with db.transaction() as connection:
        for address in broken:
            # The providers write actual state, here as in apply.
            row, entry = applied.get(address), states.get(address)
            kind = entry.kind if entry is not None else row.kind if row is not None else ""
            provider = provider_for(kind)
            if provider is None:
                continue  # no provider manages it: left as it is, `unaccounted` reports it
            context = ApplyContext(
                connection, row.plan_id if row is not None else "drift-repair", at, root
            )
            if entry is not None:
                origin = row.origin if row is not None else "cloned.lock"
                provider.restore(context, replace(entry, origin=origin))
                repairs.append(Repair(address, "restored"))
            elif row is not None and audited.get(address, _NEVER) in (_NEVER, None):
                provider.remove(context, address)
                repairs.append(Repair(address, "removed"))
        if repairs:
            journal.record(connection, "drift.repaired", "workspace", _repaired(report, repairs))
    if not unaccounted(db):
        repairs.extend(_rewrite_lock(root, db, report, journal))
    journal.export(db, root)
    return repairs


def _target(audited: dict[str, object], applied: dict[str, rows.Row], address: str) -> object:
    """The digest `address` must be restored to: the last applied one the audit log recorded
    (the row's own, for events written before digests were); None or `_NEVER` when the audit
    log says it must not exist."""
    want = audited.get(address, _NEVER)
    if want is _UNKNOWN:
        row = applied.get(address)
        return row.digest if row is not None else _NEVER
    return want


def _rewrite_lock(root: Path, db: StateDB, report: Report, journal: Journal) -> list[Repair]:
    from reconciler.engine import lockfile

    if not lockfile.write(root, db, journal.redactor).changed:
        return []
    rewritten = Repair(str(actual_state.LOCK_FILE), "lock rewritten")
    with db.transaction() as connection:
        journal.record(connection, "drift.repaired", "cloned.lock", _repaired(report, [rewritten]))
    return [rewritten]


MAX_LOCK_HISTORY = 200
"""How many commits of `cloned.lock` repair searches for an audited state."""


def audited_states(root: Path, wanted: dict[str, str]) -> dict[str, ActualResource]:
    """address -> a recorded state whose content hashes to the digest `wanted` names: from the
    working tree's `cloned.lock`, else the newest committed one that has it. Any source will
    do, since the digest proves the content; a redacted state proves nothing and is passed
    over."""
    found: dict[str, ActualResource] = {}
    for resources in _lock_versions(root):
        for address, want in wanted.items():
            entry = resources.get(address)
            if (
                address not in found
                and entry is not None
                and entry.digest == want
                and digest(entry.state) == want
            ):
                found[address] = entry
        if found.keys() == wanted.keys():
            break
    return found


def _lock_versions(root: Path) -> Iterator[dict[str, ActualResource]]:
    """The applied states `cloned.lock` recorded, newest first: the working tree's, then each
    commit's (unreadable versions are skipped)."""
    with contextlib.suppress(ClonedError, OSError):
        yield actual_state.from_lock(root).resources
    rel = actual_state.LOCK_FILE.as_posix()
    try:
        commits = gitrepo.commits_touching(root, "HEAD", [rel], limit=MAX_LOCK_HISTORY)
    except ClonedError:
        return
    for commit in commits:
        with contextlib.suppress(ClonedError):
            yield revision.actual_at(root, revision.Revision(commit, commit)).resources


def _repaired(report: Report, repairs: list[Repair]) -> dict[str, Any]:
    return {
        "found": [item.to_json() for item in report.items],
        "repairs": [repair.to_json() for repair in repairs],
    }


def check(root: Path) -> tuple[Report, int | None]:
    """Drift of the workspace at `root` (read-only), and how many desired changes are pending
    besides (None when the desired state does not validate)."""
    from reconciler.engine.session import open_session
    from reconciler.errors import ValidationFailed

    with StateDB.existing(root) as db:
        if db is None:
            raise StateUnavailable(
                "no state database here, so there is no actual state to check for drift",
                hint="run drift where apply runs; in CI, `cloned plan --base REF` shows what a "
                "branch changes",
            )
        report = detect(root, db)
        try:
            pending: int | None = len(open_session(root, db).plan().changes)
        except ValidationFailed:
            pending = None
    return report, pending
