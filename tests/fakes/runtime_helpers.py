"""Helpers for the runtime's tests: a Launch of the fake server, process checks that treat
zombies as gone (PID 1 here may not reap them), a process's children and command line, and
polling with a deadline."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from reconciler.runtime.types import Launch
from tests.fakes.mcp_servers import SERVER


def fake_launch(tmp: Path, name: str, mode: str = "normal", **extra: str) -> Launch:
    """A Launch of tests/fakes/mcp_servers.py in `mode`, with a scrubbed environment."""
    data = tmp / "data" / name
    data.mkdir(parents=True, exist_ok=True)
    marks = tmp / "marks" / name
    marks.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(data),
        "FAKE_MARKS": str(marks),
        **extra,
    }
    return Launch(
        name=name,
        command=(sys.executable, str(SERVER), mode),
        cwd=tmp,
        env=env,
        log=tmp / "logs" / f"{name}.log",
    )


def alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :].split()[0] not in (b"Z", b"X")


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (a started connector would be one)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def cmdline(pid: int) -> bytes:
    """The command line of `pid` (NUL-separated), or nothing when it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def eventually(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Poll `check` until it holds or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
