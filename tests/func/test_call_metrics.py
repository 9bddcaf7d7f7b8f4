"""The governed call path's OpenTelemetry metrics (governed.metrics) read back from the SDK's
in-memory reader, the default path that never imports opentelemetry, and the gateway's status
file writer (governed.gateway.write_statuses) that `connectors stats` reads."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from reconciler.governed import metrics, statusfile
from reconciler.governed.calls import CallRequest, GovernedCaller
from reconciler.governed.gateway import write_statuses
from reconciler.runtime.types import ConnectorStatus
from tests.conftest import REPO
from tests.fakes.connectors import FakeConnectors
from tests.func.governed_helpers import applied


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[str, list[Any]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


def test_three_calls_are_counted_by_decision_with_their_latency(tmp_path: Path) -> None:
    ws = applied(tmp_path)
    reader = InMemoryMetricReader()
    recorder = metrics.OtelRecorder(MeterProvider(metric_readers=[reader]))

    async def main() -> None:
        caller = GovernedCaller(
            ws.repo, connectors=FakeConnectors(), actor="test", metrics=recorder
        )
        try:
            await caller.call(CallRequest("notes", "echo", {"text": "one"}))
            await caller.call(CallRequest("notes", "echo", {"text": "two"}))
            await caller.call(CallRequest("notes", "echo", {"text": 3}))  # not a string
        finally:
            await caller.aclose()

    asyncio.run(main())
    points = _points(reader)
    calls = {p.attributes["decision"]: p.value for p in points[metrics.CALLS]}
    assert calls == {"allowed": 2, "refused": 1}
    assert {p.attributes["tool"] for p in points[metrics.CALLS]} == {"echo"}
    latency = {p.attributes["decision"]: p for p in points[metrics.LATENCY]}
    assert latency["allowed"].count == 2 and latency["refused"].count == 1
    assert latency["allowed"].sum > 0


def test_metrics_are_off_and_opentelemetry_not_imported_unless_asked() -> None:
    assert metrics.wanted({}) is None
    assert metrics.wanted({"CLONED_OTEL": "console"}) == "console"
    assert metrics.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}) == "otlp"
    assert metrics.from_environment({}) is metrics.NOOP
    probe = (
        "import sys\n"
        "from reconciler.governed import calls, gateway, metrics\n"
        "assert metrics.from_environment() is metrics.NOOP\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CLONED_OTEL"))}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_cloned_otel_console_prints_the_metrics_to_stderr_at_exit() -> None:
    probe = (
        "from reconciler.governed import metrics\n"
        "recorder = metrics.from_environment()\n"
        "for ms in (1.0, 2.0, 3.0):\n"
        "    recorder.record(connector='notes', tool='read_note', decision='allowed',"
        " latency_ms=ms)\n"
    )
    env = {**os.environ, "CLONED_OTEL": "console"}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # a stdio gateway's stdout is its MCP stream
    exported = json.loads(done.stderr)
    found = {
        metric["name"]: metric["data"]["data_points"][0]
        for resource in exported["resource_metrics"]
        for scope in resource["scope_metrics"]
        for metric in scope["metrics"]
    }
    assert found[metrics.CALLS]["value"] == 3
    assert found[metrics.CALLS]["attributes"]["connector"] == "notes"
    assert found[metrics.LATENCY]["count"] == 3 and found[metrics.LATENCY]["sum"] == 6.0


def test_the_gateway_writes_its_statuses_on_change_and_removes_them(tmp_path: Path) -> None:
    root = tmp_path
    current = [ConnectorStatus("notes", "stopped", "closed")]

    def read() -> dict[str, Any]:
        return json.loads(statusfile.path_of(root).read_text())

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: write_statuses(root, lambda: current, poll=0.01))
            with anyio.fail_after(5):
                while not statusfile.path_of(root).exists():
                    await anyio.sleep(0.01)
            assert read()["connectors"][0]["breaker"] == "closed"
            current[0] = ConnectorStatus("notes", "backoff", "open", consecutive_failures=3)
            with anyio.fail_after(5):
                while read()["connectors"][0]["breaker"] != "open":
                    await anyio.sleep(0.01)
            group.cancel_scope.cancel()

    anyio.run(main)
    written = read()
    assert written["pid"] == os.getpid() and written["written_at"]
    assert statusfile.path_of(root).stat().st_mode & 0o777 == 0o600
    found = statusfile.read(root)
    assert found is not None and found.of("notes") == written["connectors"][0]
    statusfile.remove(root, pid=os.getpid() + 1)  # another gateway's exit leaves it
    assert statusfile.path_of(root).exists()
    statusfile.remove(root, pid=os.getpid())
    assert statusfile.read(root) is None
