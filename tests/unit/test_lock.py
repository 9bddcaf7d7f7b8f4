"""The workspace lock's waits and leases, on a fake clock: no test here waits for real time."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.clock import stamp
from reconciler.errors import LockHeld, TransientError
from reconciler.state.db import StateDB
from reconciler.state.lock import WorkspaceLock
from tests.fakes.clock import FakeClock


@pytest.fixture
def db(tmp_path: Path) -> Iterator[StateDB]:
    opened = StateDB.open(tmp_path)
    assert opened is not None
    yield opened
    opened.close()


def held_by_init(db: StateDB, clock: FakeClock, minutes: int = 10) -> None:
    """The lock as another live process (pid 1) on this host holds it, its lease from now."""
    start = clock.now()
    with db.transaction() as connection:
        connection.execute(
            "INSERT OR REPLACE INTO lock VALUES (1, 'other', 1, ?, ?, ?)",
            (socket.gethostname(), stamp(start), stamp(start.replace(minute=minutes))),
        )


def lease_until(db: StateDB) -> str:
    with db.transaction() as connection:
        return str(connection.execute("SELECT lease_until FROM lock").fetchone()[0])


def test_a_wait_for_a_live_holder_gives_up_at_the_timeout(db: StateDB) -> None:
    clock = FakeClock()
    held_by_init(db, clock)
    with pytest.raises(LockHeld, match=r"locked by other \(pid 1 on ") as raised:
        WorkspaceLock(db, timeout=2.0, clock=clock).acquire()
    assert isinstance(raised.value, TransientError)
    # It looked again every 50 ms of the clock's time, and stopped once 2 s had passed.
    assert set(clock.sleeps) == {0.05}
    assert 2.0 <= sum(clock.sleeps) < 2.0 + 0.05 + 1e-9


def test_a_lease_that_ran_out_is_taken_over_and_its_holder_reported(db: StateDB) -> None:
    clock = FakeClock()
    held_by_init(db, clock, minutes=10)
    clock.advance(9 * 60)
    with pytest.raises(LockHeld):
        WorkspaceLock(db, clock=clock).acquire()
    clock.advance(2 * 60)
    lock = WorkspaceLock(db, clock=clock)
    lock.acquire()
    assert lock.recovered is not None and lock.recovered.pid == 1
    assert lease_until(db) == "2026-01-01T12:21:00Z"  # 10 minutes from the takeover


def test_the_lease_is_renewed_once_a_minute_and_a_takeover_stops_the_holder(db: StateDB) -> None:
    clock = FakeClock()
    lock = WorkspaceLock(db, clock=clock)
    lock.acquire()
    assert lease_until(db) == "2026-01-01T12:10:00Z"
    clock.advance(30)
    lock.renew()
    assert lease_until(db) == "2026-01-01T12:10:00Z"
    clock.advance(31)
    lock.renew()
    assert lease_until(db) == "2026-01-01T12:11:01Z"
    held_by_init(db, clock)
    clock.advance(61)
    with pytest.raises(LockHeld, match="taken over during this apply"):
        lock.renew()
