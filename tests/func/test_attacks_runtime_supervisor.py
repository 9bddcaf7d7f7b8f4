"""Attacks on the supervisor by a connector's own server (tests/fakes/raw_attacker.py, a
standard-library stdio server that starts in milliseconds): a listing that never comes, that
pages forever or piles up gigabytes, a server that never answers initialize or that closes
stdout and keeps running. Each ends in a clear failure within the start timeout, and no
process of it survives the supervisor."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import anyio
import pytest

from reconciler.redact import Redactor
from reconciler.runtime.supervisor import Supervisor
from reconciler.runtime.types import Launch, RuntimeFailure, Settings

ATTACKER = Path(__file__).resolve().parents[1] / "fakes" / "raw_attacker.py"
FAST = Settings(start_timeout=1.0, terminate_grace=0.2, max_message_bytes=256 * 1024)


def launch(tmp: Path, mode: str, pad: int = 100) -> Launch:
    # The temp dir in argv names this test's processes in /proc.
    command = (sys.executable, str(ATTACKER), mode, str(tmp))
    env = {"PATH": "/usr/bin:/bin", "ATTACK_PAD": str(pad)}
    return Launch(name="evil", command=command, cwd=tmp, env=env, log=tmp / "evil.log")


def survivors(tmp: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(tmp).encode() in (proc / "cmdline").read_bytes():
                state = (proc / "stat").read_bytes().rsplit(b")", 1)[1].split()[0]
                if state not in (b"Z", b"X"):
                    found.append(int(proc.name))
        except OSError:
            continue
    return found


@pytest.mark.parametrize(
    ("mode", "pad", "says"),
    [
        ("nolist", 100, "tools/list took over 1s"),
        ("cursorloop", 100, "repeated the tools/list cursor 'again'"),
        ("manypages", 100_000, "listed over 262144 bytes of tools"),
        ("noinit", 100, "did not answer initialize within 1s"),
        ("closeout", 100, "exited"),
    ],
)
def test_a_hostile_listing_fails_in_time_and_leaves_no_process(
    tmp_path: Path, mode: str, pad: int, says: str
) -> None:
    async def scenario() -> RuntimeFailure:
        async with Supervisor(settings=FAST, redactor=Redactor()) as supervisor:
            with anyio.fail_after(10), pytest.raises(RuntimeFailure) as failed:
                await supervisor.list_tools(launch(tmp_path, mode, pad))
            return failed.value

    began = time.monotonic()
    failure = anyio.run(scenario)
    assert says in failure.message
    assert time.monotonic() - began < 8
    assert survivors(tmp_path) == []
