"""Installed connectors: `connectors list|verify|restore`, and what `show` reads too
(connector_detail.py; docs/connectors.md, "Managing installed connectors").

`list` and `show` only read: the state database (or, in a checkout without one, `cloned.lock`)
and the desired state, to name Connectors declared but not applied. `list` never re-hashes, so
it stays fast; `show` re-hashes the one connector it shows but records nothing. `verify` and
`restore` write, under the workspace lock, audited (reconciler/engine/connectors.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from reconciler.errors import ExitCode, ValidationFailed

if TYPE_CHECKING:
    from reconciler.engine.auditcommit import AuditCommit
    from reconciler.engine.connectors import Checked
    from reconciler.packages.retention import Archived
    from reconciler.state.installs import Install

Status = Literal[
    "enabled", "disabled", "damaged", "not installed", "not installed here", "not applied"
]
AppliedFrom = Literal["state", "lock", "empty"]


@dataclass(frozen=True)
class ConnectorRow:
    """One Connector as `connectors list` shows it."""

    name: str
    version: str
    source: Mapping[str, Any]  # `spec.source` as applied (or declared), e.g. {"builtin": "notes"}
    publisher: str
    digest: str | None  # the pinned package's digest (None: not applied)
    status: Status
    verified_at: str | None

    @property
    def source_label(self) -> str:
        """`registry demo`, `pypi mcp-server-time`, `path connectors/x`, `builtin notes`."""
        return source_label(self.source)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "source": dict(self.source),
            "publisher": self.publisher,
            "digest": self.digest,
            "status": self.status,
            "verified_at": self.verified_at,
        }


def source_label(source: Mapping[str, Any]) -> str:
    """A Connector's `spec.source` in two words."""
    for kind, value in source.items():
        if kind == "registry" and isinstance(value, Mapping):
            return f"registry {value.get('name')}"
        if kind == "pypi" and isinstance(value, Mapping):
            return f"pypi {value.get('package')}"
        return f"{kind} {value}"
    return "unknown"


@dataclass(frozen=True)
class ConnectorList:
    """Every applied Connector, then those declared but not applied; `desired_problem` says
    why the declared ones are left out (the desired state does not validate)."""

    connectors: tuple[ConnectorRow, ...]
    applied_from: AppliedFrom
    desired_problem: str | None

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "applied_from": self.applied_from,
            "desired_valid": self.desired_problem is None,
            "connectors": [row.to_json() for row in self.connectors],
        }


@dataclass(frozen=True)
class Applied:
    """What the applied state (and, with a state database, the installs table) holds."""

    states: dict[str, dict[str, Any]]  # name -> {metadata, spec, package}
    installs: dict[str, Install] | None  # name -> record; None: no state database here
    origins: dict[str, tuple[str, str, str]]  # name -> (origin, applied_at, plan_id)
    source: AppliedFrom


def state_root(root: Path) -> Path:
    """`root`, once it is sure git tracks nothing in its `.cloned/state/` (as apply does: a
    database, store entry or archive that arrived in a pull request is not this machine's,
    and verifying, restoring or purging it would make it so)."""
    from reconciler.engine import preflight

    preflight.refuse_tracked_state(root)
    return root


def read_applied(root: Path) -> Applied:
    """The applied Connectors: from the state database, else from `cloned.lock`."""
    from reconciler.engine import actual as actual_state
    from reconciler.engine import connectors as managing
    from reconciler.state import installs
    from reconciler.state import resources as rows
    from reconciler.state.db import StateDB

    with StateDB.existing(root) as db:
        if db is not None:
            managing.applied_redactor(db)  # install records quote manifests, unmasked
            found = rows.of_kind(db, "Connector")
            records = installs.all_installs(db)
            return Applied(
                {row.name: json.loads(row.state) for row in found},
                {row.name: records[row.address] for row in found if row.address in records},
                {row.name: (row.origin, row.applied_at, row.plan_id) for row in found},
                "state",
            )
    actual = actual_state.from_lock(root)
    connectors = [r for r in actual.resources.values() if r.kind == "Connector"]
    return Applied(
        {r.name: r.state for r in connectors},
        None,
        {r.name: (r.origin, "", "") for r in connectors},
        actual.source,
    )


def read_declared(root: Path) -> tuple[dict[str, tuple[dict[str, Any], str]], str | None]:
    """The declared Connectors (name -> (spec, origin)), or none and the reason when the
    desired state does not validate."""
    from reconciler.load.workspace import load_desired_state

    try:
        desired = load_desired_state(root)
    except ValidationFailed as exc:
        return {}, exc.message
    return {r.name: (r.spec, r.origin) for r in desired.resources if r.kind == "Connector"}, None


def list_connectors(*, path: Path) -> ConnectorList:
    """Every Connector of the workspace containing `path`, with its install status; reads
    only (no file is re-hashed)."""
    from reconciler.load.files import find_root

    root = find_root(path)
    applied = read_applied(root)
    declared, problem = read_declared(root)
    listed = [applied_row(name, state, applied) for name, state in sorted(applied.states.items())]
    listed += [
        _declared_row(name, spec)
        for name, (spec, _) in sorted(declared.items())
        if name not in applied.states
    ]
    return ConnectorList(tuple(listed), applied.source, problem)


def applied_row(name: str, state: Mapping[str, Any], applied: Applied) -> ConnectorRow:
    """The `list` row of applied Connector `name`."""
    spec = state.get("spec") or {}
    package = state.get("package") or {}
    record = applied.installs.get(name) if applied.installs is not None else None
    return ConnectorRow(
        name=name,
        version=str(spec.get("version", "")),
        source=spec.get("source") or {},
        publisher=str(spec.get("publisher", "")),
        digest=package.get("digest"),
        status=status_of(spec, applied.installs is not None, record),
        verified_at=record.verified_at if record is not None else None,
    )


def _declared_row(name: str, spec: Mapping[str, Any]) -> ConnectorRow:
    return ConnectorRow(
        name=name,
        version=str(spec.get("version", "")),
        source=spec.get("source") or {},
        publisher=str(spec.get("publisher", "")),
        digest=None,
        status="not applied",
        verified_at=None,
    )


def status_of(spec: Mapping[str, Any], has_state: bool, record: Install | None) -> Status:
    """An applied connector's status from its spec and install record (as last verified)."""
    if not has_state:
        return "not installed here"
    if record is None:
        return "not installed"
    if not record.verified_ok:
        return "damaged"
    return "enabled" if spec.get("enabled", True) else "disabled"


@dataclass(frozen=True)
class VerifyResult:
    """Every connector `verify` checked, when, and the audit commit of a failure."""

    checked: tuple[Checked, ...]
    verified_at: str
    audit_commit: AuditCommit | None

    @property
    def failed(self) -> tuple[Checked, ...]:
        return tuple(c for c in self.checked if not c.ok)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.ERROR if self.failed else ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": not self.failed,
            "verified_at": self.verified_at,
            "connectors": [c.to_json() for c in self.checked],
            "audit_commit": self.audit_commit.to_json() if self.audit_commit else None,
            "exit_code": int(self.exit_code),
        }


def verify(*, path: Path, names: tuple[str, ...]) -> VerifyResult:
    """Re-hash every installed connector (or those named) against its install record and
    record the result; exit 1 on any difference or missing install."""
    from reconciler.engine import connectors
    from reconciler.load.files import find_root

    done = connectors.verify(state_root(find_root(path)), names)
    return VerifyResult(done.checked, done.at, done.audit_commit)


@dataclass(frozen=True)
class RestoreResult:
    """The archive brought back, and whether the Connector is declared and applied now."""

    archived: Archived
    data_folder: Path
    applied: bool
    declared: bool | None  # None: the desired state does not validate
    audit_commit: AuditCommit

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "restored": self.archived.to_json(),
            "data_folder": str(self.data_folder) if self.archived.data else None,
            "applied": self.applied,
            "declared": self.declared,
            "audit_commit": self.audit_commit.to_json(),
        }


def restore(*, path: Path, name: str) -> RestoreResult:
    """Bring back the newest archive of connector `name`: its package into the store and its
    data folder into place. It runs again only once a Connector `name` is declared and applied."""
    from reconciler.engine import connectors
    from reconciler.load.files import find_root
    from reconciler.packages.install import data_folder

    root = state_root(find_root(path))
    done = connectors.restore(root, name)
    declared, problem = read_declared(root)
    return RestoreResult(
        done.archived,
        data_folder(root, name),
        done.applied,
        None if problem is not None else name in declared,
        done.audit_commit,
    )
