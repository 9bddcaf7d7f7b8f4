"""The reconcile loop (`cloned reconcile`): apply the committed desired state whenever it moves.

Where it sits: above apply and drift, below the use cases. A *tick* optionally fast-forwards the
branch (`pull`), then takes the `Inputs` of the workspace: HEAD, the uncommitted resource
files and the approval records in the working tree. A *cycle* runs when the inputs changed
since the last one (or on demand): skip a dirty tree unless allowed -> load the desired state
committed at HEAD (the working tree with allow_dirty) -> detect drift under the workspace lock,
and repair it with self_heal -> `apply`, which makes the audit commit -> a `CycleRecord`.

The loop's own audit commit moves HEAD; it is recorded as seen, so it triggers nothing. An
error never ends the loop: the same inputs are retried after an exponential backoff (1 s
doubling up to max_backoff, reset by a success; a transient error's own delay instead), and
new inputs run at once. Drift, which no file event announces (it lives in the state database),
is probed on every idle interval tick and every RESYNC_SECONDS in watch mode. Every event goes
to `emit`; after every cycle the loop's status is written to `.cloned/state/reconcile.json`.

The package follows those concepts: `cycle` (one reconcile and its record), `loop` (ticks,
backoff and bookkeeping, on an injected clock), `drivers` (once, interval and watch) and
`status` (the typed status file).
"""

from reconciler.engine.reconcile.cycle import CycleRecord, Emit, LogEvent, Mode, Settings
from reconciler.engine.reconcile.drivers import run
from reconciler.engine.reconcile.loop import Loop, StopEvent
from reconciler.engine.reconcile.status import STATUS_FILE, LoopStatus, StatusRecord, read_status

__all__ = [
    "STATUS_FILE",
    "CycleRecord",
    "Emit",
    "LogEvent",
    "Loop",
    "LoopStatus",
    "Mode",
    "Settings",
    "StatusRecord",
    "StopEvent",
    "read_status",
    "run",
]
