"""A connector's operating-system process: started with exactly its Launch's environment in a
process group of its own, tracked by the reaper (no orphans if the supervisor dies), and
stopped as the MCP lifecycle says: stdin closed, a grace period, SIGTERM to the group, then
SIGKILL, and checked empty.

The SDK's `stdio_client` merges its default environment (HOME, USER, SHELL, ...) over the one
it is given, so the supervisor spawns the process here and hands the SDK only its streams.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.runtime.reaper import group_members
from reconciler.runtime.types import Launch, RuntimeFailure

if TYPE_CHECKING:
    from anyio.abc import Process

KILL_WAIT = 2.0
"""Seconds to wait for the kernel to remove a SIGKILLed group."""


async def spawn(launch: Launch) -> Process:
    """Start `launch` over pipes, in a new session (its own process group), with exactly
    `launch.env`; `RuntimeFailure("unavailable")` when it cannot be started."""
    import anyio

    try:
        return await anyio.open_process(
            list(launch.command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=launch.cwd,
            env=dict(launch.env),
            start_new_session=True,
        )
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise RuntimeFailure(
            "unavailable", f"connector {launch.name} could not start {launch.command[0]}: {reason}"
        ) from None


async def stop(process: Process, *, grace: float) -> int | None:
    """Stop `process` and everything in its group; its exit code (None if it never exited)."""
    import anyio

    pgid = process.pid
    if process.stdin is not None:
        with _quiet():
            await process.stdin.aclose()
    await _wait(lambda: process.returncode is not None, grace)
    for signum, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, KILL_WAIT)):
        if not group_members(pgid) and process.returncode is not None:
            break
        with _quiet():
            os.killpg(pgid, signum)
        await _wait(lambda: not group_members(pgid) and process.returncode is not None, wait)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            with _quiet():
                await stream.aclose()
    # asyncio's subprocess transport stays open (and complains when collected after the loop
    # closed) until closed; nothing public reaches it (the SDK's stdio client does the same).
    close = getattr(getattr(getattr(process, "_process", None), "_transport", None), "close", None)
    if callable(close):
        with _quiet():
            close()
    await anyio.lowlevel.checkpoint()
    return process.returncode


async def _wait(done: Callable[[], bool], seconds: float) -> bool:
    """Poll `done()` until it holds or `seconds` pass (process.wait() would also wait for
    pipe EOF, which a surviving grandchild can hold open)."""
    import anyio

    deadline = anyio.current_time() + seconds
    while not done():
        if anyio.current_time() >= deadline:
            return False
        await anyio.sleep(0.01)
    return True


class _quiet:
    """Suppress what closing an already closed pipe or signalling a gone group raises."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> bool:
        import anyio

        errors = (OSError, anyio.ClosedResourceError, anyio.BrokenResourceError)
        return kind is not None and issubclass(kind, errors)


class Reaper:
    """The supervisor's end of the reaper process (runtime/reaper.py), started on first use."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None

    def track(self, pgid: int) -> None:
        """Kill this group if the supervisor dies."""
        self._send(f"+{pgid}\n")

    def untrack(self, pgid: int) -> None:
        """The group was stopped; forget it (its id may be reused)."""
        if self._process is not None:
            self._send(f"-{pgid}\n")

    def close(self) -> None:
        """End the reaper (every connector is already stopped)."""
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        with _quiet():
            process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _send(self, line: str) -> None:
        if self._process is None:
            script = Path(__file__).with_name("reaper.py")
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-S", str(script)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={"LANG": "C.UTF-8"},
                start_new_session=True,
            )
        assert self._process.stdin is not None
        with _quiet():
            self._process.stdin.write(line.encode())
            self._process.stdin.flush()
