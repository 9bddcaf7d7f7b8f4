"""`audit log` and `audit verify`: show and check the tamper-evident audit log.

Both read the state database when there is one and the committed segments under
`.cloned/audit/` otherwise (a fresh clone); each result says which it read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.audit.chain import Finding
from reconciler.audit.event import Event
from reconciler.audit.verify import VerifyReport
from reconciler.errors import ExitCode

__all__ = ["AuditLog", "AuditVerified", "Event", "Finding", "log", "verify"]


@dataclass(frozen=True)
class AuditLog:
    """The matching events, oldest first, and whether they came from the state database
    (`database`) or the committed segments."""

    root: Path
    events: tuple[Event, ...]
    database: bool

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    def to_json(self) -> list[dict[str, Any]]:
        """Every event with every field, the hash included."""
        return [event.to_json() for event in self.events]

    def lines(self) -> tuple[str, ...]:
        """Each event as its canonical JSON line, exactly as a segment holds it."""
        return tuple(event.line() for event in self.events)


@dataclass(frozen=True)
class AuditVerified:
    """The verdict on the whole log of the workspace at `root` (see `VerifyReport`)."""

    root: Path
    report: VerifyReport

    @property
    def ok(self) -> bool:
        return self.report.ok

    @property
    def problems(self) -> tuple[Finding, ...]:
        """What is wrong, the earliest bad event first."""
        return self.report.problems

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.ok else ExitCode.ERROR

    def to_json(self) -> dict[str, Any]:
        return {"root": str(self.root), **self.report.to_json()}


def log(
    *,
    path: Path,
    since: str | None = None,
    type: str | None = None,  # the event field it filters on, as --type
    subject: str | None = None,
) -> AuditLog:
    """The events of the workspace containing `path` that match every filter: `since` an event
    number or an ISO date or time (a bad one is a `ClonedError`), `type` a type or a dotted
    prefix, `subject` an address."""
    from reconciler.audit.log import parse_since
    from reconciler.audit.read import read_events
    from reconciler.load.files import find_root

    root = find_root(path)
    start = parse_since(since) if since else None
    found = read_events(root, since=start, type=type, subject=subject)
    return AuditLog(root, tuple(found.events), found.database)


def verify(*, path: Path) -> AuditVerified:
    """Check the database chain, the committed segments and the signed checkpoints of the
    workspace containing `path` against each other."""
    from reconciler.audit.verify import verify as verify_log
    from reconciler.load.files import find_root
    from reconciler.state.db import StateDB

    root = find_root(path)
    with StateDB.existing(root) as db:
        return AuditVerified(root, verify_log(root, db))
