"""One reconcile cycle: the inputs it depends on, what it does, and its record."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from reconciler import gitrepo
from reconciler.clock import SYSTEM, Clock, stamp
from reconciler.engine import revision
from reconciler.engine.apply import apply
from reconciler.engine.auditcommit import AuditCommit
from reconciler.engine.drift import Drifted, Repair, UnaccountedState, detect, heal, unaccounted
from reconciler.engine.journal import Journal
from reconciler.engine.reconcile.fields import Fields
from reconciler.engine.session import open_session
from reconciler.errors import ClonedError
from reconciler.load.files import CLONED_DIR
from reconciler.load.resources import DesiredState
from reconciler.load.workspace import load_desired_state
from reconciler.state.db import StateDB
from reconciler.state.lock import WorkspaceLock

Mode = Literal["once", "watch", "interval"]


@dataclass(frozen=True)
class Settings:
    """How the loop runs; the CLI validates the values."""

    root: Path
    mode: Mode
    interval: float = 0.0  # seconds between ticks (interval mode)
    pull: str | None = None  # remote to fast-forward the checked-out branch from, each tick
    push: bool = False  # with pull: push the loop's audit commits back to that remote
    allow_dirty: bool = False  # apply uncommitted resource files instead of skipping
    self_heal: bool = False  # repair drift before applying
    commit: bool = True  # make the audit commit
    debounce_ms: int = 50  # watch: group file events for at most this long
    max_backoff: float = 300.0
    lock_timeout: float = 0.0
    clock: Clock = SYSTEM  # what the loop waits, stamps and times with (a fake one in tests)
    after_apply: Callable[[Path], list[dict[str, Any]]] | None = None
    """Called after each cycle's apply: executes queued runs (`usecases.runs.execute`), and
    returns each run's JSON for the log (the engine does not execute runs itself)."""


@dataclass(frozen=True)
class LogEvent:
    """One log line: `ts`, `event`, `cycle` (the cycle it belongs to), then its details."""

    ts: str
    event: str
    cycle: int
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"ts": self.ts, "event": self.event, "cycle": self.cycle, **self.details}


Emit = Callable[[LogEvent], None]


FileStamp = tuple[str, int, int]  # path, mtime_ns, size


@dataclass(frozen=True)
class Inputs:
    """What a cycle's result depends on: equal inputs give the same cycle, so none runs."""

    head: str | None
    dirty: tuple[FileStamp, ...]
    approvals: tuple[FileStamp, ...]

    @property
    def dirty_files(self) -> tuple[str, ...]:
        return tuple(rel for rel, _, _ in self.dirty)


def inputs(root: Path) -> Inputs:
    """HEAD, the uncommitted resource files and the working tree's approval records."""
    dirty = tuple(_stat(root, rel) for rel in revision.uncommitted(root))
    approvals: list[FileStamp] = []
    for folder, _, names in os.walk(root / CLONED_DIR / "approvals"):
        approvals.extend(_stat(root, os.path.relpath(Path(folder, n), root)) for n in names)
    return Inputs(gitrepo.head(root).commit, dirty, tuple(sorted(approvals)))


def _stat(root: Path, rel: str) -> FileStamp:
    try:
        found = (root / rel).stat()
    except OSError:
        return (rel, -1, -1)  # deleted
    return (rel, found.st_mtime_ns, found.st_size)


@dataclass(frozen=True)
class CycleRecord:
    """What one cycle did (the status file's `last`)."""

    at: str
    cycle: int
    trigger: str
    head: str | None
    dirty: tuple[str, ...] = ()
    skipped: bool = False  # a dirty tree, not applied
    drift: tuple[Drifted, ...] = ()
    repairs: tuple[Repair, ...] = ()
    outcomes: Mapping[str, int] = field(default_factory=dict)
    exit_code: int | None = None
    audit_commit: AuditCommit | None = None
    error: str | None = None
    duration_ms: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "cycle": self.cycle,
            "trigger": self.trigger,
            "head": self.head,
            "dirty": list(self.dirty),
            "skipped": self.skipped,
            "drift": [item.to_json() for item in self.drift],
            "repairs": [repair.to_json() for repair in self.repairs],
            "outcomes": dict(self.outcomes),
            "exit_code": self.exit_code,
            "audit_commit": self.audit_commit.to_json() if self.audit_commit else None,
            "error": self.error,
            "duration_ms": self.duration_ms,
        }

    @classmethod
    def from_json(cls, data: Any) -> CycleRecord:
        """A record as `to_json` wrote it; ValueError for anything else."""
        fields = Fields(data, "last")
        made = fields.optional_object("audit_commit")
        return cls(
            at=fields.text("at"),
            cycle=fields.integer("cycle"),
            trigger=fields.text("trigger"),
            head=fields.optional_text("head"),
            dirty=tuple(fields.texts("dirty")),
            skipped=fields.boolean("skipped"),
            drift=tuple(Drifted.from_json(item) for item in fields.objects("drift")),
            repairs=tuple(Repair.from_json(item) for item in fields.objects("repairs")),
            outcomes=fields.counts("outcomes"),
            exit_code=fields.optional_integer("exit_code"),
            audit_commit=AuditCommit.from_json(made) if made is not None else None,
            error=fields.optional_text("error"),
            duration_ms=fields.integer("duration_ms"),
        )


def cycle(
    settings: Settings, seen: Inputs, *, number: int, trigger: str, emit: Emit
) -> CycleRecord:
    """One reconcile of the workspace as `seen`: dirty check, drift, apply. Raises on errors."""
    clock = settings.clock
    started = clock.monotonic()
    record = CycleRecord(stamp(clock.now()), number, trigger, seen.head, seen.dirty_files)
    if seen.dirty and not settings.allow_dirty:
        return replace(record, skipped=True, duration_ms=since(clock, started))
    desired = _desired(settings, seen)
    found, repairs, unrepaired = _drift(settings, desired)
    if found:
        items = [i.to_json() for i in found]
        emit(event(clock, "drift", number, items=items, healed=bool(repairs)))
    if repairs:
        emit(event(clock, "healed", number, repairs=[r.to_json() for r in repairs]))
    if unrepaired:
        raise UnaccountedState(
            unrepaired,
            doing="self-heal cannot repair them (no version of cloned.lock holds the state the "
            "audit log applied) and nothing was applied",
        )
    result = apply(
        settings.root, lock_timeout=settings.lock_timeout, commit=settings.commit, desired=desired
    )
    if result.error is not None:
        raise ClonedError(
            f"{result.error.describe()} (after the changes: {result.summary()})",
            hint=result.error.hint,
        )
    if settings.after_apply is not None:
        executed = settings.after_apply(settings.root)
        if executed:
            emit(event(clock, "runs", number, runs=executed))
    return replace(
        record,
        drift=found,
        repairs=repairs,
        outcomes=result.counts(),
        exit_code=int(result.exit_code),
        audit_commit=result.audit_commit,
        duration_ms=since(clock, started),
    )


def _desired(settings: Settings, seen: Inputs) -> DesiredState:
    """The desired state committed at HEAD, read from git objects, so an edit made while the
    cycle runs is never half-applied; with allow_dirty and edits, the working tree."""
    if settings.allow_dirty and seen.dirty:
        return load_desired_state(settings.root)
    if seen.head is None:
        raise ClonedError(
            "there is no commit yet, so there is no committed desired state to apply",
            hint="commit .cloned/ first, or run with --allow-dirty",
        )
    return revision.desired_at(settings.root, revision.Revision("HEAD", seen.head))


def _drift(
    settings: Settings, desired: DesiredState
) -> tuple[tuple[Drifted, ...], tuple[Repair, ...], list[Drifted]]:
    """Drift found (under the workspace lock, so no apply is half-way), what was repaired, and
    (with self_heal) the records repair could not account for."""
    root = settings.root
    with StateDB.existing(root) as db:
        if db is None:
            return (), (), []  # nothing applied yet
        with WorkspaceLock(db, timeout=settings.lock_timeout, clock=settings.clock) as lock:
            if lock.recovered is not None:
                session = open_session(root, db, desired=desired)
                with db.transaction() as connection:
                    Journal(session.actor, session.redactor).record(
                        connection,
                        "lock.recovered",
                        "workspace",
                        {"stale_holder": lock.recovered.describe()},
                    )
            report = detect(root, db)
            if not (report.drifted and settings.self_heal):
                return report.items, (), []
            session = open_session(root, db, desired=desired)
            repairs = heal(root, db, report, actor=session.actor, redactor=session.redactor)
            return report.items, tuple(repairs), unaccounted(db)


def probe(root: Path) -> tuple[Drifted, ...]:
    """Drift, read-only and without the lock (as `cloned drift`); none without a database."""
    with StateDB.existing(root) as db:
        return detect(root, db).items if db is not None else ()


def event(clock: Clock, name: str, number: int, **details: Any) -> LogEvent:
    """A log event stamped now."""
    return LogEvent(stamp(clock.now()), name, number, details)


def since(clock: Clock, started: float) -> int:
    """Milliseconds since `started` (a `clock.monotonic()` reading)."""
    return round((clock.monotonic() - started) * 1000)
