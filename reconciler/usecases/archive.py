"""Archives of deleted connectors: `archive list` and `archive purge --older-than D`
(docs/connectors.md, "Archives"; reconciler/packages/retention.py keeps them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.errors import ExitCode
from reconciler.usecases.connectors import state_root
from reconciler.usecases.durations import parse_duration

if TYPE_CHECKING:
    from reconciler.engine.auditcommit import AuditCommit
    from reconciler.packages.retention import Archived


@dataclass(frozen=True)
class Kept:
    """One archive, and from when `archive purge` may remove it."""

    archived: Archived
    kept_until: datetime

    def to_json(self) -> dict[str, Any]:
        return {**self.archived.to_json(), "kept_until": _stamp(self.kept_until)}


@dataclass(frozen=True)
class ArchiveList:
    """Every archive, oldest first, under the applied Workspace's retention."""

    archives: tuple[Kept, ...]
    retention: timedelta

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "retention_days": self.retention.days,
            "archives": [kept.to_json() for kept in self.archives],
        }


def list_archives(*, path: Path) -> ArchiveList:
    """The archives of the workspace containing `path`."""
    from reconciler.engine import connectors
    from reconciler.load.files import find_root

    found, keep = connectors.archives(state_root(find_root(path)))
    return ArchiveList(tuple(Kept(a, _parse(a.archived_at) + keep) for a in found), keep)


@dataclass(frozen=True)
class PurgeResult:
    """The archives removed, and the audit commit that records it (None: nothing removed)."""

    removed: tuple[Archived, ...]
    older_than: timedelta
    retention: timedelta
    audit_commit: AuditCommit | None

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "removed": [archived.to_json() for archived in self.removed],
            "older_than_days": self.older_than / timedelta(days=1),
            "retention_days": self.retention.days,
            "audit_commit": self.audit_commit.to_json() if self.audit_commit else None,
        }


def purge(*, path: Path, older_than: str) -> PurgeResult:
    """Remove the archives older than `older_than` (`30d`, `2w`, `36h`); refused, removing
    nothing, while that is shorter than the applied Workspace's retention."""
    from reconciler.engine import connectors
    from reconciler.load.files import find_root

    age = parse_duration(older_than, "--older-than", zero=True)
    done = connectors.purge(state_root(find_root(path)), age)
    return PurgeResult(done.removed, done.older_than, done.retention, done.audit_commit)


def _parse(at: str) -> datetime:
    return datetime.fromisoformat(at.replace("Z", "+00:00"))


def _stamp(moment: datetime) -> str:
    from reconciler.clock import stamp

    return stamp(moment)
