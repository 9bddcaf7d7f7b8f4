"""The workspace lock: one apply (or reconcile) at a time, with an owner and a lease.

The lock is a row in the state database. A holder that died (same host, process gone) or whose
lease ran out is stale and is taken over, and the taker is told so it can audit it. A live
holder makes the caller wait up to its timeout and then fail with a message naming the holder.
"""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from reconciler.clock import SYSTEM, Clock, stamp
from reconciler.errors import LockHeld
from reconciler.state.db import StateDB

DEFAULT_LEASE = timedelta(minutes=10)
POLL_SECONDS = 0.05  # how often a waiting apply looks at the lock again
RENEW_SECONDS = 60.0  # a holder extends its lease at most this often


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) the lock."""

    owner: str
    pid: int
    host: str
    acquired_at: str
    lease_until: str

    def describe(self) -> str:
        """`alice (pid 4242 on build-7) since 2026-...`"""
        return f"{self.owner} (pid {self.pid} on {self.host}) since {self.acquired_at}"


def me() -> Holder:
    """This process as a lock holder (times are filled in when acquiring)."""
    try:
        owner = getpass.getuser()
    except (KeyError, OSError):
        owner = "unknown"
    return Holder(owner, os.getpid(), socket.gethostname(), "", "")


class WorkspaceLock:
    """Acquire with `acquire()`, give back with `release()`; also a context manager."""

    def __init__(
        self,
        db: StateDB,
        *,
        timeout: float = 0.0,
        lease: timedelta = DEFAULT_LEASE,
        clock: Clock = SYSTEM,
    ):
        self._db = db
        self._timeout = timeout
        self._lease = lease
        self._clock = clock
        self._me = me()
        self._renewed = clock.monotonic()
        self.recovered: Holder | None = None

    def acquire(self) -> None:
        """Take the lock, waiting up to the timeout for a live holder; raise `LockHeld`."""
        deadline = self._clock.monotonic() + self._timeout
        while True:
            holder = self._try()
            if holder is None:
                return
            if self._clock.monotonic() >= deadline:
                raise LockHeld(
                    f"the workspace is locked by {holder.describe()}",
                    hint="wait for it to finish, or pass --lock-timeout SECONDS to wait longer",
                )
            self._clock.sleep(POLL_SECONDS)

    def _try(self) -> Holder | None:
        moment = self._clock.now()
        with self._db.transaction() as connection:
            row = connection.execute(
                "SELECT owner, pid, host, acquired_at, lease_until FROM lock WHERE id = 1"
            ).fetchone()
            if row is not None:
                holder = Holder(*row)
                if not _stale(holder, moment):
                    return holder
                self.recovered = holder
            connection.execute(
                "INSERT OR REPLACE INTO lock (id, owner, pid, host, acquired_at, lease_until) "
                "VALUES (1, ?, ?, ?, ?, ?)",
                (
                    self._me.owner,
                    self._me.pid,
                    self._me.host,
                    stamp(moment),
                    stamp(moment + self._lease),
                ),
            )
        return None

    def renew(self) -> None:
        """Extend the lease, at most once a minute; long applies call this between steps so a
        second apply never mistakes a live holder for a stale one."""
        if self._clock.monotonic() - self._renewed < RENEW_SECONDS:
            return
        moment = self._clock.now()
        with self._db.transaction() as connection:
            updated = connection.execute(
                "UPDATE lock SET lease_until = ? WHERE id = 1 AND pid = ? AND host = ?",
                (stamp(moment + self._lease), self._me.pid, self._me.host),
            ).rowcount
        if updated != 1:
            raise LockHeld("the workspace lock was taken over during this apply; stopping")
        self._renewed = self._clock.monotonic()

    def release(self) -> None:
        """Give the lock back (only if this process still holds it)."""
        with self._db.transaction() as connection:
            connection.execute(
                "DELETE FROM lock WHERE id = 1 AND pid = ? AND host = ?",
                (self._me.pid, self._me.host),
            )

    def __enter__(self) -> WorkspaceLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _stale(holder: Holder, moment: datetime) -> bool:
    if holder.host == socket.gethostname() and not pid_alive(holder.pid):
        return True
    try:
        lease_until = datetime.fromisoformat(holder.lease_until.replace("Z", "+00:00"))
    except ValueError:
        return True
    return moment > lease_until


MAX_PID = 2**31 - 1
"""The largest process id a system can have (pid_t is a C int)."""


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (one we may not signal counts). An id
    no process can have (0, negative: a process group; past the C range) is no live process."""
    if not 0 < pid <= MAX_PID:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
