"""The supervisor against real MCP servers over stdio (tests/fakes/mcp_servers.py): start,
list, call, multiplexing, exact environment, timeouts the server hears about, crashes and
recovery, the breaker, bounded and redacted stderr, oversized stdout, idle stop, pings, an
upgrade, clean shutdown and no orphans after a SIGKILL. Each scenario reuses one server where
it can: a server costs about half a second to start.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest

from reconciler.redact import MASK, Redactor
from reconciler.runtime.discovery import discover
from reconciler.runtime.supervisor import Supervisor
from reconciler.runtime.types import Launch, RuntimeFailure, Settings
from tests.fakes.runtime_helpers import alive, eventually, fake_launch

REPO = Path(__file__).resolve().parents[2]
FAST = Settings(
    start_timeout=10.0,
    backoff_initial=0.01,
    backoff_max=0.05,
    terminate_grace=0.2,
    stderr_log_bytes=64 * 1024,
    max_message_bytes=1024 * 1024,
)


def text(result: Any) -> str:
    return str(result.content[0]["text"])


async def pid_of(supervisor: Supervisor, launch: Launch) -> int:
    return int(text(await supervisor.call_tool(launch, "pid", {}, timeout=5)))


def test_one_server_serves_concurrent_calls_with_exactly_its_environment(tmp_path: Path) -> None:
    launch = fake_launch(tmp_path, "notes")

    async def scenario() -> None:
        async with Supervisor(settings=FAST, redactor=Redactor()) as supervisor:
            tools = await supervisor.list_tools(launch)
            assert [tool["name"] for tool in tools][:2] == ["echo", "add"]
            assert tools[0]["inputSchema"]["required"] == ["text"]  # wire JSON, camelCase
            added = await supervisor.call_tool(launch, "add", {"a": 2, "b": 3}, timeout=5)
            assert added.structured == {"sum": 5} and not added.is_error
            pid = await pid_of(supervisor, launch)
            results: list[str] = []

            async def echo(word: str) -> None:
                results.append(
                    text(await supervisor.call_tool(launch, "echo", {"text": word}, timeout=5))
                )

            async with anyio.create_task_group() as group:
                group.start_soon(
                    partial(supervisor.call_tool, timeout=5), launch, "slow", {"seconds": 0.3}
                )
                for word in ("a", "b", "c", "d"):
                    group.start_soon(echo, word)
            assert sorted(results) == ["a", "b", "c", "d"]
            assert await pid_of(supervisor, launch) == pid  # one process, one session
            env = json.loads(text(await supervisor.call_tool(launch, "env", {}, timeout=5)))
            assert env == dict(launch.env)  # nothing of ours: no user HOME, no CLONED_HOME
            status = supervisor.status("notes")
            assert (status.process, status.breaker, status.pid) == ("running", "closed", pid)
            grandchild = int(text(await supervisor.call_tool(launch, "spawn_child", {}, timeout=5)))
        assert not alive(pid) and not alive(grandchild)  # aclose left nothing behind
        assert supervisor.status("notes").process == "stopped"

    anyio.run(scenario)


def test_a_timeout_cancels_the_call_and_tells_the_server(tmp_path: Path) -> None:
    launch = fake_launch(tmp_path, "slowpoke")
    marks = Path(launch.env["FAKE_MARKS"])

    async def scenario() -> None:
        async with Supervisor(settings=FAST, redactor=Redactor()) as supervisor:
            with pytest.raises(RuntimeFailure) as caught:
                await supervisor.call_tool(launch, "slow", {"seconds": 30}, timeout=0.3)
            assert caught.value.kind == "timeout"
            assert "timed out after 0.3s" in str(caught.value)
            with anyio.fail_after(5):
                while not (marks / "cancelled").exists():  # notifications/cancelled arrived
                    await anyio.sleep(0.02)
            with pytest.raises(RuntimeFailure, match="timed out"):
                await supervisor.call_tool(launch, "hang", {"seconds": 30}, timeout=0.2)
            assert (marks / "hung").exists()
            # The server ignores that cancellation and keeps the handler: later calls still work.
            answer = await supervisor.call_tool(launch, "echo", {"text": "still here"}, timeout=5)
            assert text(answer) == "still here"
            assert supervisor.status("slowpoke").consecutive_failures == 0

    anyio.run(scenario)


def test_a_crash_mid_call_fails_that_call_and_the_next_one_restarts_it(tmp_path: Path) -> None:
    launch = fake_launch(tmp_path, "fragile")

    async def scenario() -> None:
        async with Supervisor(settings=FAST, redactor=Redactor()) as supervisor:
            before = await pid_of(supervisor, launch)
            # A server's own error with code -32000 (the SDK's code for a closed connection
            # too): that call fails, the connector goes on.
            with pytest.raises(RuntimeFailure) as caught:
                await supervisor.call_tool(launch, "server_error", {}, timeout=5)
            assert caught.value.kind == "protocol"
            assert "quota exhausted upstream (-32000)" in str(caught.value)
            assert await pid_of(supervisor, launch) == before
            with pytest.raises(RuntimeFailure) as caught:
                await supervisor.call_tool(launch, "crash_now", {"code": 5}, timeout=5)
            assert caught.value.kind == "unavailable"
            assert str(caught.value) == "connector fragile exited (code 5) during the call"
            status = supervisor.status("fragile")
            assert (status.consecutive_failures, status.pid) == (1, None)
            assert status.last_error == "connector fragile exited (code 5)"
            after = await pid_of(supervisor, launch)
            assert after != before and not alive(before)
            status = supervisor.status("fragile")
            assert (status.process, status.restarts, status.consecutive_failures) == (
                "running",
                1,
                0,
            )
            # One huge stdout line: refused without reading it all, the connector failed.
            with pytest.raises(RuntimeFailure) as caught:
                await supervisor.call_tool(
                    launch, "flood_stdout", {"n_bytes": 8_000_000}, timeout=5
                )
            assert caught.value.kind == "too-large"
            assert "over the limit of 1048576 bytes" in str(caught.value)
            assert not alive(after)
            big = await supervisor.call_tool(launch, "big_result", {"n_bytes": 500_000}, timeout=5)
            assert len(text(big)) == 500_000  # under the limit: served, by a fresh process

    anyio.run(scenario)


def test_repeated_failed_starts_open_the_breaker_and_calls_fail_at_once(tmp_path: Path) -> None:
    broken = fake_launch(tmp_path, "broken", "exit")
    slow = fake_launch(tmp_path, "sluggish", "slowstart", FAKE_SLOWSTART="30")
    settings = Settings(
        start_timeout=0.3,
        backoff_initial=0.01,
        backoff_max=0.02,
        breaker_failures=2,
        breaker_open_for=60.0,
        terminate_grace=0.2,
    )

    async def scenario() -> None:
        async with Supervisor(settings=settings, redactor=Redactor()) as supervisor:
            for _ in range(2):
                with pytest.raises(RuntimeFailure) as caught:
                    await supervisor.list_tools(broken)
                assert "exited (code 3) during start: fake server: refusing to start" in str(
                    caught.value
                )
            status = supervisor.status("broken")
            assert (status.breaker, status.consecutive_failures) == ("open", 2)
            assert status.retry_in is not None and 59 < status.retry_in <= 60
            with anyio.fail_after(0.1), pytest.raises(RuntimeFailure) as caught:
                await supervisor.call_tool(broken, "echo", {"text": "x"}, timeout=5)
            assert caught.value.kind == "unavailable"
            assert "circuit breaker is open" in str(caught.value)
            assert "refusing to start" in str(caught.value) and "retries in" in str(caught.value)
            with pytest.raises(RuntimeFailure, match=r"did not answer initialize within 0\.3s"):
                await supervisor.list_tools(slow)
            assert supervisor.status("sluggish").process in ("stopped", "backoff")
        assert (tmp_path / "logs" / "broken.log").read_text().count("refusing to start") == 2

    anyio.run(scenario)


def test_stderr_is_drained_bounded_and_redacted(tmp_path: Path) -> None:
    launch = fake_launch(tmp_path, "chatty")
    redactor = Redactor()
    redactor.register("hunter2-secret")

    async def scenario() -> None:
        async with Supervisor(settings=FAST, redactor=redactor) as supervisor:
            with anyio.fail_after(10):  # megabytes of stderr do not block the server
                await supervisor.call_tool(
                    launch,
                    "print_stderr",
                    {"n_bytes": 3_000_000, "text": "token hunter2-secret"},
                    timeout=10,
                )
            await supervisor.call_tool(launch, "echo", {"text": "after"}, timeout=5)

    anyio.run(scenario)
    log, rotated = launch.log, launch.log.with_name("chatty.log.1")
    assert log.stat().st_size <= FAST.stderr_log_bytes
    assert rotated.stat().st_size <= FAST.stderr_log_bytes
    tail = log.read_text().splitlines()
    assert tail[-1].startswith(f"token {MASK} xxx")
    assert "hunter2" not in log.read_text() + rotated.read_text()


def test_idle_connectors_stop_and_a_frozen_one_fails_its_ping(tmp_path: Path) -> None:
    idle = fake_launch(tmp_path, "idle")
    frozen = fake_launch(tmp_path, "frozen")
    settings = Settings(
        idle_after=0.5,
        ping_interval=0.2,
        ping_timeout=0.3,
        backoff_initial=0.01,
        terminate_grace=0.2,
    )

    async def scenario() -> None:
        async with Supervisor(settings=settings, redactor=Redactor()) as supervisor:
            async with anyio.create_task_group() as group:
                group.start_soon(pid_of, supervisor, idle)
                group.start_soon(pid_of, supervisor, frozen)
            idle_pid = supervisor.status("idle").pid
            assert idle_pid is not None
            with pytest.raises(RuntimeFailure):
                await supervisor.call_tool(frozen, "freeze", {"seconds": 30}, timeout=3)
            frozen_status = supervisor.status("frozen")
            assert "did not answer a ping within 0.3s" in str(frozen_status.last_error)
            with anyio.fail_after(5):
                while supervisor.status("idle").process != "stopped":
                    await anyio.sleep(0.02)
            status = supervisor.status("idle")
            assert (status.consecutive_failures, status.last_error) == (0, None)  # not a failure
            assert eventually(lambda: not alive(idle_pid), 2)

    anyio.run(scenario)


def test_a_changed_launch_restarts_the_connector(tmp_path: Path) -> None:
    counter = tmp_path / "starts"
    first = fake_launch(tmp_path, "rug", "rugpull", FAKE_COUNTER=str(counter))
    upgraded = fake_launch(tmp_path, "rug", "rugpull", FAKE_COUNTER=str(counter), VERSION="2")

    async def scenario() -> None:
        async with Supervisor(settings=FAST, redactor=Redactor()) as supervisor:
            before = await supervisor.list_tools(first)
            old_pid = supervisor.status("rug").pid
            assert before[0]["description"] == "Echo the text back (start 1)"
            assert (await supervisor.list_tools(first)) == before  # same Launch: same process
            after = await supervisor.list_tools(upgraded)
            assert after[0]["description"] == "Echo the text back (start 2)"
            assert old_pid is not None and not alive(old_pid)
            assert supervisor.status("rug").pid != old_pid

    anyio.run(scenario)


def test_discover_lists_every_page_and_leaves_nothing_running(tmp_path: Path) -> None:
    launch = fake_launch(tmp_path, "paged", "pages")
    tools = discover(launch, settings=FAST, redactor=Redactor())
    assert len(tools) == 14 and tools[-1]["name"] == "server_error"
    with pytest.raises(RuntimeFailure, match="exited \\(code 3\\) during start"):
        discover(fake_launch(tmp_path, "gone", "exit"), settings=FAST, redactor=Redactor())


def test_no_connector_survives_a_sigkill_of_its_supervisor(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.supervised", str(tmp_path)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        pids = json.loads(process.stdout.readline())
        assert len(pids) == 3 and all(alive(pid) for pid in pids)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert eventually(lambda: not any(alive(pid) for pid in pids), 5), [
        pid for pid in pids if alive(pid)
    ]
