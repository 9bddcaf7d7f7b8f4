"""The drivers of the loop: one cycle (`--once`), a tick every interval, or a tick per burst
of relevant file events (`--watch`, watchfiles: the only importer of it)."""

from __future__ import annotations

import os
from pathlib import Path

from reconciler import gitrepo
from reconciler.engine import preflight
from reconciler.engine.reconcile.cycle import Emit, Settings
from reconciler.engine.reconcile.loop import Loop, StopEvent
from reconciler.load.files import CLONED_DIR

TICK_MS = 1000
"""watch: how often the loop wakes without file events, for retries and the resync."""
RESYNC_SECONDS = 30.0
"""watch: how often inputs and drift are re-checked without an event (a missed event is caught)."""
STEP_MS = 10
"""watch: a burst of file events ends after this long without a new one."""


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
    resync_at = loop.clock.monotonic()  # the first quiet tick catches what changed before watching
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
            loop.emit(loop._event("watching", loop.cycles, paths=[relevant.cloned, relevant.git]))
        if changes:
            loop.tick("watch")
        elif loop.clock.monotonic() >= resync_at:
            loop.tick("resync", probe_drift=True)
            resync_at = loop.clock.monotonic() + RESYNC_SECONDS
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
