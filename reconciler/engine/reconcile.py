"""The reconcile loop (`cloned reconcile`): apply the committed desired state whenever it moves.

Where it sits: above apply and drift, below the CLI. A *tick* optionally fast-forwards the
branch (`pull`), then takes the `Inputs` of the workspace: HEAD, the uncommitted resource
files and the approval records in the working tree. A *cycle* runs when the inputs changed
since the last one (or on demand): skip a dirty tree unless allowed -> load the desired state
committed at HEAD (the working tree with allow_dirty) -> detect drift under the workspace lock,
and repair it with self_heal -> `apply`, which makes the audit commit -> a `CycleRecord`.

The loop's own audit commit moves HEAD; it is recorded as seen, so it triggers nothing. An
error never ends the loop: the same inputs are retried after an exponential backoff (1 s
doubling up to max_backoff, reset by a success), and new inputs run at once. Drift, which no
file event announces (it lives in the state database), is probed on every idle interval tick
and every RESYNC_SECONDS in watch mode. Every event goes to `emit`; after every cycle the
loop's status is written to `.cloned/state/reconcile.json`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from reconciler import gitrepo
from reconciler.atomic import write_atomic
from reconciler.canonical import parse_json
from reconciler.clock import stamp
from reconciler.engine import auditcommit, preflight, revision
from reconciler.engine.apply import apply
from reconciler.engine.auditcommit import AuditCommit
from reconciler.engine.drift import Drifted, Repair, UnaccountedState, detect, heal, unaccounted
from reconciler.engine.journal import Journal
from reconciler.engine.session import open_session
from reconciler.errors import (
    ClonedError,
    GitError,
    TransientError,
    ValidationFailed,
    write_crash_log,
)
from reconciler.load.files import CLONED_DIR
from reconciler.load.resources import DesiredState
from reconciler.load.workspace import load_desired_state
from reconciler.state.db import StateDB
from reconciler.state.lock import WorkspaceLock, pid_alive

Mode = Literal["once", "watch", "interval"]

STATUS_FILE = Path(CLONED_DIR) / "state" / "reconcile.json"
STATUS_FORMAT_VERSION = 1
FIRST_BACKOFF = 1.0
TICK_MS = 1000
"""watch: how often the loop wakes without file events, for retries and the resync."""
RESYNC_SECONDS = 30.0
"""watch: how often inputs and drift are re-checked without an event (a missed event is caught)."""
STEP_MS = 10
"""watch: a burst of file events ends after this long without a new one."""


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


class StopEvent(Protocol):
    """What ends the loop: the CLI sets it on SIGINT or SIGTERM (`reason`, e.g. "SIGTERM")."""

    reason: str | None

    def is_set(self) -> bool: ...

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, less if set; whether it is set."""
        ...


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


def cycle(
    settings: Settings, seen: Inputs, *, number: int, trigger: str, emit: Emit
) -> CycleRecord:
    """One reconcile of the workspace as `seen`: dirty check, drift, apply. Raises on errors."""
    started = time.perf_counter()
    record = CycleRecord(stamp(), number, trigger, seen.head, seen.dirty_files)
    if seen.dirty and not settings.allow_dirty:
        return replace(record, skipped=True, duration_ms=_since(started))
    desired = _desired(settings, seen)
    found, repairs, unrepaired = _drift(settings, desired)
    if found:
        emit(_event("drift", number, items=[i.to_json() for i in found], healed=bool(repairs)))
    if repairs:
        emit(_event("healed", number, repairs=[r.to_json() for r in repairs]))
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
    counts: dict[str, int] = {}
    for outcome in result.outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return replace(
        record,
        drift=found,
        repairs=repairs,
        outcomes=counts,
        exit_code=int(result.exit_code),
        audit_commit=result.audit_commit,
        duration_ms=_since(started),
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
    db = StateDB.open(root, create=False)
    if db is None:
        return (), (), []  # nothing applied yet
    try:
        with WorkspaceLock(db, timeout=settings.lock_timeout) as lock:
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
    finally:
        db.close()


def probe(root: Path) -> tuple[Drifted, ...]:
    """Drift, read-only and without the lock (as `cloned drift`); none without a database."""
    db = StateDB.open(root, create=False)
    if db is None:
        return ()
    try:
        return detect(root, db).items
    finally:
        db.close()


class Loop:
    """Ticks, cycles and their bookkeeping: backoff, what was seen, the status file."""

    def __init__(self, settings: Settings, emit: Emit, stopper: StopEvent) -> None:
        self.settings = settings
        self.emit = emit
        self.stopper = stopper
        self.started_at = stamp()
        self.cycles = 0
        self.errors = 0  # consecutive
        self.backoff = 0.0  # the wait before the retry of a failed cycle
        self.retry_at = 0.0  # time.monotonic() of that retry
        self.failing_pull = False
        self.seen: Inputs | None = None
        self.drift_seen: tuple[Drifted, ...] = ()
        self.last: CycleRecord | None = None
        self.audit_commits = 0

    def retry_due(self) -> bool:
        return self.errors > 0 and time.monotonic() >= self.retry_at

    def tick(self, trigger: str, *, force: bool = False, probe_drift: bool = False) -> int | None:
        """Pull (if asked), then run a cycle when the inputs changed, a retry is due or `force`;
        otherwise, with `probe_drift`, look for drift. The exit code of the cycle run, if any."""
        try:
            pulling = not self.failing_pull or self.retry_due()
            if self.settings.pull is not None and pulling and self._pull():
                trigger = "pull"
            now = inputs(self.settings.root)
        except Exception as exc:  # noqa: BLE001 - see _failed: the loop outlives any one error
            self.cycles += 1
            self.failing_pull = self.settings.pull is not None
            return self._failed(trigger, None, exc)
        if force or now != self.seen:
            return self.run(trigger, now)
        if self.retry_due():
            return self.run("retry", now)
        if probe_drift:
            self._probe(now)
        return None

    def _pull(self) -> bool:
        """Fast-forward the checked-out branch from the remote; whether a new commit came."""
        remote = self.settings.pull
        assert remote is not None
        branch = gitrepo.head(self.settings.root).branch
        if branch is None:
            raise ClonedError("--pull: HEAD is detached, so there is no branch to follow")
        # The loop's own audit commits, if the remote moved on meanwhile, are replayed on top.
        arrived = gitrepo.fast_forward(self.settings.root, remote, branch, own=auditcommit.PATHS)
        if self.settings.push:
            gitrepo.push(self.settings.root, remote, branch)
        if self.failing_pull:
            self.failing_pull = False
            self.errors = 0
            self.backoff = 0.0
        if arrived is not None:
            self.emit(_event("pulled", self.cycles + 1, remote=remote, branch=branch, head=arrived))
        return arrived is not None

    def run(self, trigger: str, seen: Inputs) -> int:
        """Run one cycle on `seen`; the exit code (apply's, or 1 for an error or a dirty skip)."""
        self.cycles += 1
        self.failing_pull = False
        try:
            record = cycle(self.settings, seen, number=self.cycles, trigger=trigger, emit=self.emit)
        except Exception as exc:  # noqa: BLE001 - see _failed: the loop outlives any one error
            return self._failed(trigger, seen, exc)
        self.errors = 0
        self.backoff = 0.0
        made = record.audit_commit
        if made is not None and made.status == "committed":
            self.audit_commits += 1
            # The loop's own commit moved HEAD: seen, so it triggers no cycle.
            seen = replace(seen, head=made.commit)
            if self.settings.push and self.settings.pull is not None:
                branch = gitrepo.head(self.settings.root).branch
                try:
                    gitrepo.push(self.settings.root, self.settings.pull, branch or "HEAD")
                except GitError as exc:
                    # The audit commit stands locally; the next tick pushes it again.
                    self.emit(_event("error", self.cycles, error=exc.message, stage="push"))
        self.seen = seen
        if not record.skipped:
            # What is still drifted after this cycle: nothing that was repaired.
            self.drift_seen = () if record.repairs else record.drift
        self._finish(record)
        self._report(record)
        return 1 if record.skipped or record.exit_code is None else record.exit_code

    def _report(self, record: CycleRecord) -> None:
        """The cycle's log line (after the status file, so a reader of the line finds both)."""
        if record.skipped:
            self.emit(
                _event(
                    "skipped",
                    record.cycle,
                    trigger=record.trigger,
                    head=record.head,
                    reason="uncommitted changes",
                    files=list(record.dirty),
                    hint="commit them (only committed desired state is applied), "
                    "or run with --allow-dirty",
                )
            )
            return
        made = record.audit_commit
        details: dict[str, Any] = {
            "trigger": record.trigger,
            "head": record.head,
            "outcomes": dict(record.outcomes),
            "exit_code": record.exit_code,
            "audit_commit": (made.commit or made.status) if made is not None else "off",
        }
        if made is not None and made.reason:
            details["audit_commit_reason"] = made.reason
        details.update(
            drift=len(record.drift), repairs=len(record.repairs), duration_ms=record.duration_ms
        )
        self.emit(_event("cycle", record.cycle, **details))

    def _failed(self, trigger: str, seen: Inputs | None, exc: Exception) -> int:
        """Any error ends the cycle, never the loop (kopf's temporary errors): it is logged
        and the same inputs are retried after a backoff. What no code expected is a bug: its
        traceback goes to a file, as the CLI's error boundary does."""
        self.errors += 1
        wait = FIRST_BACKOFF * 2 ** (self.errors - 1)
        if isinstance(exc, TransientError):
            wait = exc.retry_after  # it says when a retry is worth it (a held lock, say)
        self.backoff = min(wait, self.settings.max_backoff)
        self.retry_at = time.monotonic() + self.backoff
        if seen is not None:
            self.seen = seen
        details: dict[str, Any] = {"trigger": trigger}
        if isinstance(exc, UnaccountedState):
            # Permanent: the same inputs fail the same way, so there is no retry (and no
            # repair attempt for the same drift) until a commit, an approval or new drift.
            self.backoff = 0.0
            self.retry_at = math.inf
            with contextlib.suppress(ClonedError, OSError):
                self.drift_seen = probe(self.settings.root)
            details["retry"] = "when the inputs or the drift change"
        if isinstance(exc, ClonedError):
            details["error"] = exc.message
            if isinstance(exc, ValidationFailed):
                details["problems"] = [problem.render() for problem in exc.problems]
            if exc.hint:
                details["hint"] = exc.hint
        elif isinstance(exc, OSError):
            details["error"] = str(exc)
        else:
            details["error"] = f"internal error ({type(exc).__name__}): {exc}"
            details["traceback"] = _save_traceback()
        details.update(backoff=self.backoff, consecutive_errors=self.errors)
        head = seen.head if seen is not None else None
        record = CycleRecord(
            stamp(), self.cycles, trigger, head, error=details["error"], exit_code=1
        )
        self._finish(record)
        self.emit(_event("error", self.cycles, **details))
        return 1

    def _probe(self, seen: Inputs) -> None:
        """Look for drift between cycles: repair it with a cycle (self_heal), or report it once."""
        try:
            found = probe(self.settings.root)
        except (ClonedError, OSError):
            return  # the next cycle reports what is wrong
        if found == self.drift_seen:
            return
        self.drift_seen = found
        if found and self.settings.self_heal:
            self.run("drift", seen)
        elif found:
            self.emit(_event("drift", self.cycles, items=[i.to_json() for i in found]))
            self.write_status()

    def _finish(self, record: CycleRecord) -> None:
        self.last = record
        self.write_status()

    def start(self) -> None:
        s = self.settings
        self.emit(
            _event(
                "started",
                0,
                mode=s.mode,
                root=str(s.root),
                pid=os.getpid(),
                interval=s.interval if s.mode == "interval" else None,
                pull=s.pull,
                allow_dirty=s.allow_dirty,
                self_heal=s.self_heal,
                commit=s.commit,
            )
        )
        self.write_status()

    def stop(self) -> None:
        reason = self.stopper.reason or "interrupted"
        self.emit(_event("stopped", self.cycles, reason=reason, cycles=self.cycles))
        self.write_status(state="stopped")

    def write_status(self, state: str = "running") -> None:
        """Write `.cloned/state/reconcile.json`; a failure is logged, never fatal."""
        s = self.settings
        payload = {
            "format_version": STATUS_FORMAT_VERSION,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "mode": s.mode,
            "state": "stopped" if s.mode == "once" else state,
            "started_at": self.started_at,
            "updated_at": stamp(),
            "cycles": self.cycles,
            "consecutive_errors": self.errors,
            "next_backoff": self.backoff,
            "drift": [item.to_json() for item in self.drift_seen],
            "last": self.last.to_json() if self.last is not None else None,
        }
        try:
            if s.mode == "once" and _live_loop(s.root):
                return  # a running loop's status says more than this one-off run
            write_status(s.root, payload)
        except (ClonedError, OSError) as exc:
            message = exc.message if isinstance(exc, ClonedError) else str(exc)
            self.emit(_event("error", self.cycles, error=f"status file: {message}", backoff=0))


# --- The drivers -----------------------------------------------------------------------------


def run(settings: Settings, *, emit: Emit, stopper: StopEvent) -> int:
    """Run `cloned reconcile`: one cycle (its exit code), or a loop until `stopper` (0)."""
    # A workspace that lost its state database cannot apply: say so once, before any cycle.
    preflight.refuse_lost_state(settings.root)
    loop = Loop(settings, emit, stopper)
    if settings.mode == "once":
        return loop.tick("once", force=True) or 0
    git_dir = gitrepo.git_dir(settings.root)  # outside a git work tree, fail before starting
    loop.start()
    try:
        if settings.mode == "watch":
            _watch(loop, git_dir)
        else:
            _poll(loop)
    finally:
        loop.stop()
    return 0


def _poll(loop: Loop) -> None:
    """Interval mode: a tick now, then one every `interval` seconds."""
    trigger = "start"
    while not loop.stopper.is_set():
        loop.tick(trigger, probe_drift=trigger != "start")
        if loop.stopper.wait(loop.settings.interval):
            return
        trigger = "interval"


def _watch(loop: Loop, git_dir: Path) -> None:
    """Watch mode: a tick now, then one per burst of relevant file events (see `Relevant`)."""
    import watchfiles

    root = loop.settings.root
    relevant = Relevant(root, git_dir)
    loop.tick("start")
    resync_at = time.monotonic()  # the first quiet tick catches what changed before watching
    watching = False
    for changes in watchfiles.watch(
        relevant.cloned,
        relevant.git,
        watch_filter=relevant,
        debounce=loop.settings.debounce_ms,
        step=min(STEP_MS, loop.settings.debounce_ms),
        stop_event=loop.stopper,
        rust_timeout=TICK_MS,
        yield_on_timeout=True,
        raise_interrupt=True,
    ):
        if loop.stopper.is_set():
            return
        if not watching:
            watching = True
            loop.emit(_event("watching", loop.cycles, paths=[relevant.cloned, relevant.git]))
        if changes:
            loop.tick("watch")
        elif time.monotonic() >= resync_at:
            loop.tick("resync", probe_drift=True)
            resync_at = time.monotonic() + RESYNC_SECONDS
        elif loop.retry_due():
            loop.tick("retry")


class Relevant:
    """The watch filter: resource files and approval records under `.cloned/`, and the refs
    that say HEAD moved. Cloned's own writes (state/, audit/, cloned.lock, dot-named temporary
    files) are not inputs; git's object and index writes are not either."""

    def __init__(self, root: Path, git_dir: Path) -> None:
        self.cloned = os.path.join(os.path.realpath(root), CLONED_DIR)
        self.git = os.path.realpath(git_dir)

    def __call__(self, change: object, path: str) -> bool:
        if path.startswith(self.cloned + os.sep):
            parts = path[len(self.cloned) + 1 :].split(os.sep)
            if any(part.startswith(".") for part in parts):
                return False
            return parts[0] not in ("state", "audit") and parts != ["cloned.lock"]
        if path.startswith(self.git + os.sep):
            rel = path[len(self.git) + 1 :].replace(os.sep, "/")
            if rel.endswith(".lock"):
                return False
            return rel in ("HEAD", "packed-refs") or rel.startswith("refs/heads/")
        return False


# --- The status file -------------------------------------------------------------------------


@dataclass(frozen=True)
class LoopStatus:
    """The status file as read back, and whether its process still runs."""

    data: dict[str, Any]
    alive: bool | None  # None: it ran on another host

    @property
    def running(self) -> bool:
        return self.data.get("state") == "running" and self.alive is not False


def write_status(root: Path, payload: dict[str, Any]) -> None:
    """Replace the status file. Creates `.cloned/state/` as the state database does (ignored by
    git), but never the database: in a fresh clone that would defeat apply's refusal."""
    write_atomic(root / STATUS_FILE, json.dumps(payload, indent=2) + "\n", durable=False)


def read_status(root: Path) -> LoopStatus | None:
    """The last status a reconcile process wrote here, or None when there is none."""
    path = root / STATUS_FILE
    try:
        data = parse_json(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ClonedError(f"{STATUS_FILE}: cannot be read ({exc})") from None
    if not isinstance(data, dict):
        raise ClonedError(f"{STATUS_FILE}: not a status object")
    alive = None
    if data.get("host") == socket.gethostname() and isinstance(data.get("pid"), int):
        alive = pid_alive(data["pid"])
    return LoopStatus(data, alive)


def _live_loop(root: Path) -> bool:
    """Whether another process's loop is running here (an unreadable status file: no)."""
    try:
        status = read_status(root)
    except ClonedError:
        return False
    return status is not None and status.running and status.data.get("pid") != os.getpid()


# --- Helpers ---------------------------------------------------------------------------------


def _event(name: str, number: int, **details: Any) -> LogEvent:
    return LogEvent(stamp(), name, number, details)


def _since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _save_traceback() -> str:
    return write_crash_log("cloned-reconcile", sys.argv)
