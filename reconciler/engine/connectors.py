"""Managing what is installed, between applies: re-verify installed connectors, restore an
archived one, purge old archives (`cloned connectors verify|restore`, `cloned archive purge`).

Each runs under the workspace lock, so no apply is half-way through installing or archiving,
and records what it did in the audit log in the transaction that does it, then exports the
events and makes the audit commit as apply does. Who acts, what is masked and how long
archives are kept come from the applied state alone: the desired state may be invalid, and a
branch cannot shorten the retention that protects what it deleted.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from reconciler.approvals.validity import approvers_of
from reconciler.clock import now, stamp
from reconciler.engine.auditcommit import AuditCommit, commit_message
from reconciler.engine.journal import Journal
from reconciler.engine.session import local_actor
from reconciler.errors import ClonedError, StateUnavailable
from reconciler.load.typed import applied_model
from reconciler.model.workspace import DEFAULT_RETENTION_DAYS, Workspace
from reconciler.packages import install as packages
from reconciler.packages import retention
from reconciler.policy.engine import build_policy
from reconciler.redact import Redactor, active
from reconciler.state import installs
from reconciler.state import resources as rows
from reconciler.state.db import StateDB
from reconciler.state.lock import WorkspaceLock

SOURCE = "the applied state (state database)"


@dataclass(frozen=True)
class Checked:
    """One connector re-hashed against its install record (`problems` empty: intact)."""

    name: str
    installed: bool  # False: applied, but no install record
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.installed and not self.problems

    def to_json(self) -> dict[str, object]:
        """The check as `connectors verify --json` prints it."""
        return {
            "name": self.name,
            "ok": self.ok,
            "installed": self.installed,
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class Verified:
    """What `verify` found, when, and the audit commit of a failure (None when all were ok)."""

    checked: tuple[Checked, ...]
    at: str
    audit_commit: AuditCommit | None


@dataclass(frozen=True)
class Restored:
    """The archive `restore` brought back, and whether the Connector is applied right now."""

    archived: retention.Archived
    applied: bool
    audit_commit: AuditCommit


@dataclass(frozen=True)
class Purged:
    """The archives `purge` removed, under which retention."""

    removed: tuple[retention.Archived, ...]
    older_than: timedelta
    retention: timedelta
    audit_commit: AuditCommit | None


def verify(root: Path, names: tuple[str, ...]) -> Verified:
    """Re-hash the installed files of every applied connector (or those named) and record the
    result in the installs table; a failure is audited (`connectors.verified`)."""
    with _state(root, "nothing is installed to verify") as db:
        applied = connector_names(db)
        chosen = names or applied
        unknown_names(chosen, applied)  # before the lock: a wrong name changes nothing
        return _verify(root, db, chosen)


def _verify(root: Path, db: StateDB, chosen: tuple[str, ...]) -> Verified:
    with _locked(db) as journal:
        records = installs.all_installs(db)
        at = stamp()
        checked = tuple(_check(root, name, records) for name in chosen)
        failed = [c for c in checked if not c.ok]
        with db.transaction() as connection:
            for item in checked:
                if item.installed:
                    installs.mark_verified(connection, f"connector.{item.name}", at, item.ok)
            if failed:
                journal.record(
                    connection, "connectors.verified", "workspace", _failures(checked, failed)
                )
        if not failed:
            return Verified(checked, at, None)
        made = _commit(root, db, journal, f"connectors verify: {len(failed)} failed")
        return Verified(checked, at, made)


def _check(root: Path, name: str, records: dict[str, installs.Install]) -> Checked:
    record = records.get(f"connector.{name}")
    if record is None:
        return Checked(name, False, ("no install record: not installed",))
    return Checked(name, True, tuple(packages.verify(root, record.record)))


def _failures(checked: tuple[Checked, ...], failed: list[Checked]) -> dict[str, object]:
    return {
        "checked": len(checked),
        "failed": len(failed),
        "connectors": {c.name: list(c.problems[:20]) for c in failed},
    }


def restore(root: Path, name: str) -> Restored:
    """Bring back the newest archive of connector `name` (`retention.restore`), audited as
    `connector.restored`."""
    with _state(root, "there are no archives to restore") as db, _locked(db) as journal:
        with db.transaction() as connection:
            # Restored inside the transaction: the event is kept only if the restore succeeded.
            archived = retention.restore(root, name)
            journal.record(connection, "connector.restored", archived.address, _payload(archived))
        made = _commit(root, db, journal, f"connectors restore {name}: archive {archived.id}")
        return Restored(archived, name in connector_names(db), made)


def _payload(archived: retention.Archived) -> dict[str, object]:
    return {
        "archive": archived.id,
        "archived_at": archived.archived_at,
        "version": archived.version,
        "source": archived.source,
        "tree": archived.install.get("tree"),
        "package": archived.package,
        "data": archived.data,
    }


def purge(root: Path, older_than: timedelta) -> Purged:
    """Remove the archives older than `older_than` (refused while shorter than the applied
    Workspace's retention); audited as `archive.purged` naming each archive removed."""
    with _state(root, "there are no archives to purge") as db, _locked(db) as journal:
        keep = retention_of(db)
        with db.transaction() as connection:
            removed = tuple(retention.purge(root, older_than=older_than, retention=keep, now=now()))
            if removed:
                journal.record(
                    connection,
                    "archive.purged",
                    "workspace",
                    {
                        "archives": [a.id for a in removed],
                        "older_than_days": older_than / timedelta(days=1),
                        "retention_days": keep.days,
                    },
                )
        if not removed:
            return Purged(removed, older_than, keep, None)
        made = _commit(root, db, journal, f"archive purge: {len(removed)} removed")
        return Purged(removed, older_than, keep, made)


def retention_of(db: StateDB) -> timedelta:
    """How long the applied Workspace keeps archives (`spec.archive.retentionDays`)."""
    workspace = applied_workspace(db)
    settings = workspace.spec.archive if workspace is not None else None
    days = settings.retention_days if settings is not None else DEFAULT_RETENTION_DAYS
    return timedelta(days=days)


def applied_workspace(db: StateDB) -> Workspace | None:
    """The applied Workspace, validated (None before the first apply)."""
    found = rows.of_kind(db, "Workspace")
    if not found:
        return None
    row = found[0]
    return applied_model("Workspace", row.name, json.loads(row.state), source=SOURCE)


def connector_names(db: StateDB) -> tuple[str, ...]:
    """The names of the applied Connectors, sorted."""
    return tuple(row.name for row in rows.of_kind(db, "Connector"))


def unknown_names(wanted: tuple[str, ...], known: tuple[str, ...]) -> None:
    """Refuse names that are not applied Connectors, listing those that are."""
    missing = [name for name in wanted if name not in known]
    if missing:
        listed = ", ".join(known) if known else "none"
        raise ClonedError(
            f"no applied Connector named {', '.join(map(repr, missing))} (applied: {listed})",
            hint="`cloned connectors list` shows every connector and its status",
        )


@contextlib.contextmanager
def _state(root: Path, nothing: str) -> Iterator[StateDB]:
    with StateDB.existing(root) as db:
        if db is None:
            raise StateUnavailable(
                f"no state database here, so {nothing}",
                hint="run this where `cloned apply` runs",
            )
        yield db


@contextlib.contextmanager
def _locked(db: StateDB) -> Iterator[Journal]:
    """The workspace lock, and the journal its holder records with (a stale holder taken
    over is audited, as apply does)."""
    with WorkspaceLock(db) as lock:
        journal = journal_of(db)
        if lock.recovered is not None:
            with db.transaction() as connection:
                journal.record(
                    connection,
                    "lock.recovered",
                    "workspace",
                    {"stale_holder": lock.recovered.describe()},
                )
        yield journal


def journal_of(db: StateDB) -> Journal:
    """Who is acting and what is masked, from the applied Workspace and policy packs."""
    workspace = applied_workspace(db)
    redactor = applied_redactor(db)
    if workspace is None:
        return Journal(local_actor({}), redactor)
    return Journal(local_actor(approvers_of(workspace)), redactor)


def applied_redactor(db: StateDB) -> Redactor:
    """The process redactor (every printed line passes it), taught the applied policy's
    redaction patterns: what was installed (an install record quotes the package's manifest)
    is printed masked as the plan that installed it was."""
    redactor = active()
    workspace = applied_workspace(db)
    if workspace is None:
        return redactor
    packs = {row.name: json.loads(row.state) for row in rows.of_kind(db, "PolicyPack")}
    policy = build_policy(workspace.spec.policy_packs, packs, source=SOURCE)
    redactor.add_patterns(policy.redaction_patterns)
    return redactor


def _commit(root: Path, db: StateDB, journal: Journal, what: str) -> AuditCommit:
    """Export the new events and make the audit commit: `cloned: connectors restore ...`."""
    journal.export(db, root)
    return commit_message(root, db, f"cloned: {what}\n", redactor=journal.redactor)


def archives(root: Path) -> tuple[list[retention.Archived], timedelta]:
    """Every archive, oldest first, and how long the applied Workspace keeps them. Listing
    finishes archives an interrupted delete left half-named, so it holds the workspace lock."""
    with StateDB.existing(root) as db:
        if db is None:  # nothing was ever applied here, so no apply can be archiving
            return retention.list_archives(root), timedelta(days=DEFAULT_RETENTION_DAYS)
        with WorkspaceLock(db):
            return retention.list_archives(root), retention_of(db)
