"""The status file, `.cloned/state/reconcile.json`: what the last reconcile process did, as a
typed record that the loop writes and `cloned reconcile --status` reads back."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from reconciler.atomic import write_atomic
from reconciler.canonical import parse_json
from reconciler.engine.drift import Drifted
from reconciler.engine.reconcile.cycle import CycleRecord, Mode
from reconciler.engine.reconcile.fields import Fields
from reconciler.errors import ClonedError
from reconciler.load.files import CLONED_DIR
from reconciler.state.lock import MAX_PID, pid_alive

STATUS_FILE = Path(CLONED_DIR) / "state" / "reconcile.json"
STATUS_FORMAT_VERSION = 1
MODES = ("once", "watch", "interval")
STATES = ("running", "stopped")


@dataclass(frozen=True)
class StatusRecord:
    """What a reconcile process says of itself (specs/state-layout.md)."""

    pid: int
    host: str
    mode: Mode
    state: Literal["running", "stopped"]
    started_at: str
    updated_at: str
    cycles: int
    consecutive_errors: int
    next_backoff: float
    drift: tuple[Drifted, ...]
    last: CycleRecord | None

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": STATUS_FORMAT_VERSION,
            "pid": self.pid,
            "host": self.host,
            "mode": self.mode,
            "state": self.state,
            "started_at": self.started_at,
            "updated_at": self.updated_at,
            "cycles": self.cycles,
            "consecutive_errors": self.consecutive_errors,
            "next_backoff": self.next_backoff,
            "drift": [item.to_json() for item in self.drift],
            "last": self.last.to_json() if self.last is not None else None,
        }

    @classmethod
    def from_json(cls, data: Any) -> StatusRecord:
        """The record `to_json` wrote; ValueError naming the field for anything else."""
        fields = Fields(data, "status")
        if fields.integer("format_version") != STATUS_FORMAT_VERSION:
            raise ValueError(f"format_version is not {STATUS_FORMAT_VERSION}")
        mode, state = fields.text("mode"), fields.text("state")
        if mode not in MODES or state not in STATES:
            raise ValueError("mode or state is not one Cloned writes")
        last = fields.optional_object("last")
        return cls(
            pid=_pid(fields.integer("pid")),
            host=fields.text("host"),
            mode=cast(Mode, mode),
            state=cast(Literal["running", "stopped"], state),
            started_at=fields.text("started_at"),
            updated_at=fields.text("updated_at"),
            cycles=fields.integer("cycles"),
            consecutive_errors=fields.integer("consecutive_errors"),
            next_backoff=fields.number("next_backoff"),
            drift=tuple(Drifted.from_json(item) for item in fields.objects("drift")),
            last=CycleRecord.from_json(last) if last is not None else None,
        )


def _pid(value: int) -> int:
    """A process id as the status file holds it; no process has any other (ValueError)."""
    if not 0 < value <= MAX_PID:
        raise ValueError(f"status.pid: not a process id ({value})")
    return value


@dataclass(frozen=True)
class LoopStatus:
    """The status file as read back, and whether its process still runs."""

    record: StatusRecord
    alive: bool | None  # None: it ran on another host

    @property
    def running(self) -> bool:
        return self.record.state == "running" and self.alive is not False

    def to_json(self) -> dict[str, Any]:
        return {**self.record.to_json(), "alive": self.alive}


def write_status(root: Path, record: StatusRecord) -> None:
    """Replace the status file (under the git-ignored, owner-only `.cloned/state/`; never the
    database: in a fresh clone that would defeat apply's refusal)."""
    text = json.dumps(record.to_json(), indent=2) + "\n"
    write_atomic(root / STATUS_FILE, text, durable=False)


def read_status(root: Path) -> LoopStatus | None:
    """The last status a reconcile process wrote here, or None when there is none."""
    path = root / STATUS_FILE
    try:
        record = StatusRecord.from_json(parse_json(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ClonedError(f"{STATUS_FILE}: cannot be read ({exc})") from None
    alive = pid_alive(record.pid) if record.host == socket.gethostname() else None
    return LoopStatus(record, alive)


def live_loop(root: Path) -> bool:
    """Whether another process's loop is running here (an unreadable status file: no)."""
    try:
        status = read_status(root)
    except ClonedError:
        return False
    return status is not None and status.running and status.record.pid != os.getpid()
