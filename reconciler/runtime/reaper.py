"""The reaper: a tiny watchdog process that kills every connector's process group when the
process supervising them dies, even by SIGKILL, so no connector outlives the gateway.

The supervisor starts it once (`python -I -S reaper.py`, standard library only, its own
session so a terminal's Ctrl-C or a kill of the gateway's group does not reach it) and writes
`+PGID` / `-PGID` lines to its stdin as connectors start and stop. Only the supervisor holds
the pipe's write end (it is not inheritable), so the pipe reaches end-of-file exactly when the
supervisor is gone: the reaper then sends SIGTERM to each group still tracked, SIGKILL to what
is left after a short grace, and exits. A parent-death signal would not do: it reaches only
the direct child, never what the server forks, and fires when the spawning *thread* exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

GRACE = 1.0
"""Seconds between SIGTERM and SIGKILL once the supervisor is gone."""


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group `pgid`."""
    try:
        names = os.listdir("/proc")
    except OSError:  # no procfs: ask the kernel whether the group has any member at all
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    members = []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            members.append(int(name))
    return members


def kill_groups(groups: set[int], grace: float = GRACE) -> None:
    """SIGTERM every group, then SIGKILL whatever is still alive after `grace` seconds."""
    _signal(groups, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(group_members(pgid) for pgid in groups):
        time.sleep(0.02)
    _signal({pgid for pgid in groups if group_members(pgid)}, signal.SIGKILL)


def _signal(groups: set[int], signum: int) -> None:
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signum)


def main() -> None:
    """Track groups from stdin until end-of-file, then kill those still tracked."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    groups: set[int] = set()
    for line in sys.stdin.buffer:
        text = line.strip()
        if text[:1] in (b"+", b"-") and text[1:].isdigit():
            pgid = int(text[1:])
            if text[:1] == b"+":
                groups.add(pgid)
            else:
                groups.discard(pgid)
    kill_groups(groups)


if __name__ == "__main__":
    main()
