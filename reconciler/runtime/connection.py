"""One run of one connector's server, from spawn to stop, owned by one task of the supervisor.

That task enters and leaves both the transport and the SDK's `ClientSession` (leaving a cancel
scope from another task is the SDK's known failure, python-sdk #79/#577). Callers in other
tasks send their requests over `session` while the run is `ready`; the task meanwhile pings
the server every `ping_interval`, stops it after `idle_after` without calls, and ends when the
process exits, a ping fails, a message is too large, or `stop()` is asked. When it ends,
`failure` says why if that was not asked for, and `on_end` lets the supervisor count it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reconciler.clock import Clock
from reconciler.redact import Redactor
from reconciler.runtime import process as processes
from reconciler.runtime.streams import StderrLog, read_messages, write_messages
from reconciler.runtime.types import Launch, RuntimeFailure, Settings

if TYPE_CHECKING:
    from anyio.abc import Process, TaskGroup
    from mcp.client.session import ClientSession


class Connection:
    """A connector's process, transport and MCP session for one run."""

    def __init__(
        self,
        launch: Launch,
        *,
        settings: Settings,
        redactor: Redactor,
        clock: Clock,
        reaper: processes.Reaper,
        idle_since: Callable[[], float | None],
        on_end: Callable[[Connection], None],
    ) -> None:
        import anyio

        self.launch = launch
        self._settings = settings
        self._redactor = redactor
        self._clock = clock
        self._reaper = reaper
        self._idle_since = idle_since
        self._on_end = on_end
        self.settled = anyio.Event()
        """Set once the run is ready or has ended."""
        self.done = anyio.Event()
        self._wake = anyio.Event()
        self.session: ClientSession | None = None
        self.process: Process | None = None
        self.stderr = StderrLog(launch.log, cap=settings.stderr_log_bytes, redactor=redactor)
        self.fault: RuntimeFailure | None = None
        self.returncode: int | None = None
        self.stopping = False
        self.failure: str | None = None
        """Why the run ended when nobody asked it to (`exited (code 1)`, `did not answer ...`)."""

    @property
    def ready(self) -> bool:
        """Whether requests can be sent now."""
        return self.session is not None and not self.done.is_set() and not self.stopping

    def stop(self) -> None:
        """Ask the run to end (the supervisor awaits `done`)."""
        self.stopping = True
        self._wake.set()

    async def run(self) -> None:
        """The whole run: never raises, always leaves the process group empty."""
        import anyio

        try:
            await self._run()
        except RuntimeFailure as exc:
            self.fault = exc
        except Exception as exc:  # noqa: BLE001  # one connector's surprise must not stop others
            self.fault = RuntimeFailure("protocol", f"connector {self.launch.name}: {exc!r}")
        finally:
            self.session = None
            with anyio.CancelScope(shield=True):
                if self.process is not None:
                    self.returncode = await processes.stop(
                        self.process, grace=self._settings.terminate_grace
                    )
                    self._reaper.untrack(self.process.pid)
            self.failure = self._describe()
            self._on_end(self)
            self.done.set()
            self.settled.set()

    async def _run(self) -> None:
        import anyio

        self.process = await processes.spawn(self.launch)
        self._reaper.track(self.process.pid)
        assert self.process.stdin and self.process.stdout and self.process.stderr
        async with anyio.create_task_group() as group:
            group.start_soon(self.stderr.pump, self.process.stderr)
            try:
                await self._session(group)
            finally:
                self.session = None
                with anyio.CancelScope(shield=True):
                    await processes.stop(self.process, grace=self._settings.terminate_grace)
                group.cancel_scope.cancel()

    async def _session(self, group: TaskGroup) -> None:
        import anyio
        from mcp.client.session import ClientSession
        from mcp.shared.exceptions import MCPError

        assert self.process and self.process.stdin and self.process.stdout
        to_session, read = anyio.create_memory_object_stream[Any](0)
        write, from_session = anyio.create_memory_object_stream[Any](0)
        limit = self._settings.max_message_bytes
        group.start_soon(self._read, self.process.stdout, to_session, limit)
        group.start_soon(write_messages, self.process.stdin, from_session, to_session.close)
        async with read, write, ClientSession(read, write) as session:
            try:
                with anyio.fail_after(self._settings.start_timeout):
                    await session.initialize()
            except TimeoutError:
                self.fault = RuntimeFailure(
                    "unavailable",
                    f"connector {self.launch.name} did not answer initialize within "
                    f"{self._settings.start_timeout:g}s",
                )
                return
            except MCPError:
                return  # it went away while starting: `_describe` says how
            self.session = session
            self.settled.set()
            await self._watch(session)

    async def _read(self, stdout: Any, send: Any, limit: int) -> None:
        await read_messages(stdout, send, limit=limit, too_large=self._too_large)
        self._wake.set()  # stdout ended: the process is gone or going

    def _too_large(self, size: int) -> None:
        self.fault = RuntimeFailure(
            "too-large",
            f"connector {self.launch.name} sent a message over the limit of "
            f"{self._settings.max_message_bytes} bytes; it was stopped",
        )

    async def _watch(self, session: ClientSession) -> None:
        """Ping and watch for idleness until the run must end."""
        import anyio

        settings = self._settings
        last_ping = self._clock.monotonic()
        while not (self.stopping or self._wake.is_set()):
            now = self._clock.monotonic()
            idle = self._idle_since()
            if idle is not None and now - idle >= settings.idle_after:
                self.stopping = True  # asked for by the settings: not a failure
                return
            if now - last_ping >= settings.ping_interval:
                if not await self._ping(session):
                    return
                last_ping = self._clock.monotonic()
            idle_at = idle + settings.idle_after if idle is not None else math.inf
            wait = min(last_ping + settings.ping_interval, idle_at) - self._clock.monotonic()
            with anyio.move_on_after(max(wait, 0.005)):
                await self._wake.wait()

    async def _ping(self, session: ClientSession) -> bool:
        import anyio
        from mcp.shared.exceptions import MCPError

        try:
            with anyio.fail_after(self._settings.ping_timeout):
                await session.send_ping()
            return True
        except (TimeoutError, MCPError) as exc:
            if self._wake.is_set():
                return False  # it exited; `_describe` says so
            reason = "did not answer a ping" if isinstance(exc, TimeoutError) else "failed a ping"
            self.fault = RuntimeFailure(
                "unavailable",
                f"connector {self.launch.name} {reason} within {self._settings.ping_timeout:g}s",
            )
            return False

    def _describe(self) -> str | None:
        """Why this run ended, unless it was asked to."""
        if self.fault is not None:
            return str(self.fault)
        if self.stopping:
            return None
        code = exit_text(self.returncode)
        when = " during start" if not self.settled.is_set() else ""
        last = f": {self.stderr.tail[-1]}" if self.stderr.tail and when else ""
        return f"connector {self.launch.name} exited ({code}){when}{last}"


def exit_text(returncode: int | None) -> str:
    """How a process ended, for people: `code 1`, `killed by SIGKILL`."""
    import signal

    if returncode is None:
        return "still running after SIGKILL"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"code {returncode}"
