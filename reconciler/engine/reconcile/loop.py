"""The loop: ticks, cycles and their bookkeeping (backoff, what was seen, the status file)."""

from __future__ import annotations

import contextlib
import math
import os
import socket
import sys
from dataclasses import replace
from typing import Any, Literal, Protocol

from reconciler import gitrepo
from reconciler.clock import stamp
from reconciler.engine import auditcommit
from reconciler.engine.drift import Drifted, UnaccountedState
from reconciler.engine.reconcile.cycle import (
    CycleRecord,
    Emit,
    Inputs,
    LogEvent,
    Settings,
    cycle,
    event,
    inputs,
    probe,
)
from reconciler.engine.reconcile.status import StatusRecord, live_loop, write_status
from reconciler.errors import (
    ClonedError,
    GitError,
    TransientError,
    ValidationFailed,
    write_crash_log,
)

FIRST_BACKOFF = 1.0


class StopEvent(Protocol):
    """What ends the loop: the CLI sets it on SIGINT or SIGTERM (`reason`, e.g. "SIGTERM")."""

    reason: str | None

    def is_set(self) -> bool: ...

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, less if set; whether it is set."""
        ...


class Loop:
    """Ticks, cycles and their bookkeeping: backoff, what was seen, the status file."""

    def __init__(self, settings: Settings, emit: Emit, stopper: StopEvent) -> None:
        self.settings = settings
        self.clock = settings.clock
        self.emit = emit
        self.stopper = stopper
        self.started_at = stamp(self.clock.now())
        self.cycles = 0
        self.errors = 0  # consecutive
        self.backoff = 0.0  # the wait before the retry of a failed cycle
        self.retry_at = 0.0  # clock.monotonic() of that retry
        self.failing_pull = False
        self.seen: Inputs | None = None
        self.drift_seen: tuple[Drifted, ...] = ()
        self.last: CycleRecord | None = None
        self.audit_commits = 0

    def retry_due(self) -> bool:
        return self.errors > 0 and self.clock.monotonic() >= self.retry_at

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
            self.emit(
                self._event("pulled", self.cycles + 1, remote=remote, branch=branch, head=arrived)
            )
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
                    self.emit(self._event("error", self.cycles, error=exc.message, stage="push"))
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
                self._event(
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
        self.emit(self._event("cycle", record.cycle, **details))

    def _failed(self, trigger: str, seen: Inputs | None, exc: Exception) -> int:
        """Any error ends the cycle, never the loop (kopf's temporary errors): it is logged
        and the same inputs are retried after a backoff. What no code expected is a bug: its
        traceback goes to a file, as the CLI's error boundary does."""
        self.errors += 1
        wait = FIRST_BACKOFF * 2 ** (self.errors - 1)
        if isinstance(exc, TransientError):
            wait = exc.retry_after  # it says when a retry is worth it (a held lock, say)
        self.backoff = min(wait, self.settings.max_backoff)
        self.retry_at = self.clock.monotonic() + self.backoff
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
            details["traceback"] = write_crash_log("cloned-reconcile", sys.argv)
        details.update(backoff=self.backoff, consecutive_errors=self.errors)
        head = seen.head if seen is not None else None
        record = CycleRecord(
            stamp(self.clock.now()), self.cycles, trigger, head, error=details["error"], exit_code=1
        )
        self._finish(record)
        self.emit(self._event("error", self.cycles, **details))
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
            self.emit(self._event("drift", self.cycles, items=[i.to_json() for i in found]))
            self.write_status()

    def _finish(self, record: CycleRecord) -> None:
        self.last = record
        self.write_status()

    def start(self) -> None:
        s = self.settings
        self.emit(
            self._event(
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
        self.emit(self._event("stopped", self.cycles, reason=reason, cycles=self.cycles))
        self.write_status(state="stopped")

    def write_status(self, state: Literal["running", "stopped"] = "running") -> None:
        """Write `.cloned/state/reconcile.json`; a failure is logged, never fatal."""
        s = self.settings
        record = StatusRecord(
            pid=os.getpid(),
            host=socket.gethostname(),
            mode=s.mode,
            state="stopped" if s.mode == "once" else state,
            started_at=self.started_at,
            updated_at=stamp(self.clock.now()),
            cycles=self.cycles,
            consecutive_errors=self.errors,
            next_backoff=self.backoff,
            drift=self.drift_seen,
            last=self.last,
        )
        try:
            if s.mode == "once" and live_loop(s.root):
                return  # a running loop's status says more than this one-off run
            write_status(s.root, record)
        except (ClonedError, OSError) as exc:
            message = exc.message if isinstance(exc, ClonedError) else str(exc)
            self.emit(self._event("error", self.cycles, error=f"status file: {message}", backoff=0))

    def _event(self, name: str, number: int, **details: Any) -> LogEvent:
        return event(self.clock, name, number, **details)
