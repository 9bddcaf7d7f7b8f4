"""`connectors stats [--since DURATION]`: per connector and tool, what the audit log's
`tool.called` events say (calls, errors, refusals, approvals asked, latency percentiles), and
each connector's breaker as the running gateway last wrote it (`governed.statusfile`).

Latency percentiles (nearest rank) count the calls that reached the call itself (decisions
`allowed` and `failed`): a refusal answers in microseconds and would hide the connector's
latency. An error is a `failed` call or an allowed one whose tool answered with an error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.errors import ClonedError, ExitCode
from reconciler.governed.statusfile import GatewayStatus

if TYPE_CHECKING:
    from reconciler.state.db import StateDB

EVENT = "tool.called"
PERCENTILES = (50, 95, 99)


@dataclass(frozen=True)
class ToolStats:
    """One tool's calls in the window."""

    connector: str
    tool: str
    calls: int
    errors: int
    refusals: int
    approvals: int  # calls answered with a per-call approval request
    latencies: tuple[float, ...]  # of allowed and failed calls, sorted

    def percentile(self, rank: int) -> float | None:
        """The `rank`th percentile latency in ms (nearest rank), None without calls made."""
        if not self.latencies:
            return None
        index = max(0, math.ceil(rank / 100 * len(self.latencies)) - 1)
        return self.latencies[index]

    def to_json(self) -> dict[str, Any]:
        return {
            "connector": self.connector,
            "tool": self.tool,
            "calls": self.calls,
            "errors": self.errors,
            "refusals": self.refusals,
            "approvals": self.approvals,
            "latency_ms": {f"p{rank}": self.percentile(rank) for rank in PERCENTILES},
        }


@dataclass(frozen=True)
class ConnectorHealth:
    """One connector's breaker and process as the gateway knows them (None: not known)."""

    name: str
    status: dict[str, Any] | None  # ConnectorStatus.to_json(), when the gateway used it

    def to_json(self) -> dict[str, Any]:
        status = self.status or {}
        return {
            "name": self.name,
            "breaker": status.get("breaker"),
            "process": status.get("process"),
            "status": self.status,
        }


@dataclass(frozen=True)
class ConnectorStats:
    """Calls per tool since `since`, and the running gateway's connector statuses."""

    since: datetime | None
    tools: tuple[ToolStats, ...]
    connectors: tuple[ConnectorHealth, ...]
    gateway: GatewayStatus | None  # None: no gateway running
    exit_code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        from reconciler.clock import stamp

        return {
            "since": stamp(self.since) if self.since is not None else None,
            "gateway": None
            if self.gateway is None
            else {"pid": self.gateway.pid, "written_at": self.gateway.written_at},
            "connectors": [c.to_json() for c in self.connectors],
            "tools": [t.to_json() for t in self.tools],
        }


def stats(*, path: Path, since: str | None = None) -> ConnectorStats:
    """The call statistics of the workspace containing `path` (the last `since`, e.g. `1d`)."""
    from reconciler.audit.log import events
    from reconciler.clock import now
    from reconciler.governed import statusfile
    from reconciler.load.files import find_root
    from reconciler.state.db import StateDB
    from reconciler.usecases.durations import parse_duration

    start = now() - parse_duration(since, "--since") if since is not None else None
    root = find_root(path)
    with StateDB.existing(root) as db:
        if db is None:
            raise ClonedError("nothing is applied yet", hint="run `cloned apply` first")
        found = events(db, since=start, type=EVENT)
        applied = _applied_names(db)
    rows = tally([event.payload for event in found if event.type == EVENT])
    gateway = statusfile.read(root)
    names = sorted(set(applied) | {row.connector for row in rows})
    health = tuple(
        ConnectorHealth(name, gateway.of(name) if gateway is not None else None) for name in names
    )
    return ConnectorStats(start, rows, health, gateway)


def _applied_names(db: StateDB) -> list[str]:
    from reconciler.governed.applied import read_applied

    try:
        return list(read_applied(db).connectors)
    except ClonedError:
        return []  # nothing applied: the events still count


def tally(payloads: Sequence[dict[str, Any]]) -> tuple[ToolStats, ...]:
    """Per (connector, tool), the counts and latencies of `tool.called` payloads."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for payload in payloads:
        key = (str(payload.get("connector", "")), str(payload.get("tool", "")))
        grouped.setdefault(key, []).append(payload)
    return tuple(_tool(key[0], key[1], calls) for key, calls in sorted(grouped.items()))


def _tool(connector: str, tool: str, calls: list[dict[str, Any]]) -> ToolStats:
    decisions = [str(call.get("decision")) for call in calls]
    errors = sum(
        1
        for call, decision in zip(calls, decisions, strict=True)
        if decision == "failed" or (decision == "allowed" and call.get("error") is not None)
    )
    latencies = sorted(
        float(call["latency_ms"])
        for call, decision in zip(calls, decisions, strict=True)
        if decision in ("allowed", "failed") and isinstance(call.get("latency_ms"), int | float)
    )
    return ToolStats(
        connector=connector,
        tool=tool,
        calls=len(calls),
        errors=errors,
        refusals=decisions.count("refused"),
        approvals=decisions.count("approval"),
        latencies=tuple(latencies),
    )
