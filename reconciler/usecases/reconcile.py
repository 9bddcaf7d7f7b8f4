"""`reconcile`: run the reconcile loop, and `reconcile --status`: what the last one did."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler.engine.reconcile import CycleRecord, Emit, LogEvent, LoopStatus, Mode, StopEvent
from reconciler.engine.reconcile.status import STATUS_FILE
from reconciler.errors import ClonedError, ExitCode, UsageError

__all__ = [
    "CycleRecord",
    "Emit",
    "LogEvent",
    "LoopStatus",
    "Mode",
    "Reconciled",
    "StopEvent",
    "reconcile",
    "status",
]


@dataclass(frozen=True)
class Reconciled:
    """How a reconcile run ended: the cycle's exit code for `once`, 0 for a stopped loop."""

    code: int

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode(self.code)

    def to_json(self) -> dict[str, int]:
        return {"exit_code": self.code}


def reconcile(
    *,
    path: Path,
    mode: Mode,
    emit: Emit,
    stopper: StopEvent,
    interval: float | None = None,
    pull: str | None = None,
    push: bool = False,
    allow_dirty: bool = False,
    self_heal: bool = False,
    commit: bool = True,
    debounce_ms: int = 50,
    max_backoff: float = 300.0,
    lock_timeout: float = 0.0,
) -> Reconciled:
    """Reconcile the workspace containing `path` once, or loop until `stopper` is set; every
    event goes to `emit`. A bad setting is refused, naming its flag, before anything runs."""
    from reconciler.engine.reconcile import Settings, run
    from reconciler.load.files import find_root

    _check(mode, interval, pull, push, debounce_ms, max_backoff, lock_timeout)
    settings = Settings(
        root=find_root(path),
        mode=mode,
        interval=interval or 0.0,
        pull=pull,
        push=push,
        allow_dirty=allow_dirty,
        self_heal=self_heal,
        commit=commit,
        debounce_ms=debounce_ms,
        max_backoff=max_backoff,
        lock_timeout=lock_timeout,
        after_apply=_execute_runs,
    )
    return Reconciled(run(settings, emit=emit, stopper=stopper))


def _execute_runs(root: Path) -> list[dict[str, object]]:
    """Execute the runs the cycle's apply queued (and those still waiting): each run's JSON."""
    from reconciler.usecases.runs import execute

    return [row.to_json() for row in execute(root, actor="reconcile").runs]


def _check(
    mode: Mode,
    interval: float | None,
    pull: str | None,
    push: bool,
    debounce_ms: int,
    max_backoff: float,
    lock_timeout: float,
) -> None:
    """Refuse a bad setting; each message names its flag."""
    if push and pull is None:
        raise UsageError("--push: only with --pull REMOTE")
    if mode == "interval" and (interval is None or not interval > 0):
        raise UsageError(f"--interval: must be more than 0 seconds (got {interval or 0:g})")
    if mode == "interval" and interval == float("inf"):
        raise UsageError("--interval: must be a finite number of seconds (got inf)")
    if pull is not None and mode == "watch":
        raise UsageError("--pull: only with --interval or --once (--watch follows local commits)")
    if pull is not None and (not pull or pull.startswith("-")):
        raise UsageError(f"--pull: {pull!r} is not a remote")
    if not 1 <= debounce_ms <= 60_000:
        raise UsageError(f"--debounce-ms: must be 1 to 60000 (got {debounce_ms})")
    if not max_backoff > 0:
        raise UsageError(f"--max-backoff: must be more than 0 seconds (got {max_backoff:g})")
    if not lock_timeout >= 0:
        raise UsageError(f"--lock-timeout: must be 0 or more seconds (got {lock_timeout:g})")


def status(*, path: Path) -> LoopStatus:
    """What the last reconcile process here wrote of itself, and whether it still runs."""
    from reconciler.engine.reconcile import read_status
    from reconciler.load.files import find_root

    found = read_status(find_root(path))
    if found is None:
        raise ClonedError(
            f"no reconcile has run here ({STATUS_FILE} does not exist)",
            hint="start one with `cloned reconcile --watch` or `cloned reconcile --once`",
        )
    return found
