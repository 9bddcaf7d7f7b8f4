"""The plain data the runtime hands up and takes in: how to start a connector, a tool's result,
a connector's status, and the runtime's errors. No `mcp` type crosses this boundary; tool
definitions and content blocks are their MCP wire JSON (camelCase keys, as servers send them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from reconciler.errors import ClonedError

BreakerState = Literal["closed", "open", "half-open"]
ProcessState = Literal["stopped", "starting", "running", "backoff"]


@dataclass(frozen=True)
class Launch:
    """How to start one connector over stdio, re-verified just before (packages.startable)."""

    name: str
    command: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str] = field(repr=False)
    """The whole environment the process gets (nothing is inherited beyond it); it may hold
    granted secrets, so it is never part of the repr."""
    log: Path
    """The connector's stderr log (bounded, redacted)."""


@dataclass(frozen=True)
class ToolResult:
    """A tool's answer as the server sent it (wire JSON), before Cloned caps and redacts it."""

    content: tuple[dict[str, Any], ...]
    structured: dict[str, Any] | None = None
    is_error: bool = False

    def size(self) -> int:
        """The result's size in bytes of compact JSON (what the output cap counts)."""
        import json

        body = {"content": list(self.content), "structuredContent": self.structured}
        return len(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())


@dataclass(frozen=True)
class ConnectorStatus:
    """What the supervisor knows of one connector, for `connectors stats` and `show`."""

    name: str
    process: ProcessState
    breaker: BreakerState
    pid: int | None = None
    restarts: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    retry_in: float | None = None
    """Seconds until the next start is allowed (backoff, or the breaker's open period)."""

    def to_json(self) -> dict[str, Any]:
        """The JSON form (`connectors stats --json`)."""
        return {
            "name": self.name,
            "process": self.process,
            "breaker": self.breaker,
            "pid": self.pid,
            "restarts": self.restarts,
            "consecutive_failures": self.consecutive_failures,
            "last_error": self.last_error,
            "retry_in": self.retry_in,
        }


@dataclass(frozen=True)
class Settings:
    """Supervision settings (their defaults are listed in docs/gateway.md, "Supervision");
    tests shorten them."""

    start_timeout: float = 30.0
    ping_interval: float = 30.0
    ping_timeout: float = 5.0
    idle_after: float = 600.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    breaker_failures: int = 3
    breaker_open_for: float = 30.0
    stderr_log_bytes: int = 1024 * 1024
    max_message_bytes: int = 16 * 1024 * 1024
    terminate_grace: float = 2.0


class RuntimeFailure(ClonedError):
    """A connector could not serve a request. `kind` is what callers branch on:
    `unavailable` (cannot start, breaker open, crashed), `timeout` (cancelled after the
    connector's timeout), `protocol` (it answered something that is not MCP), `too-large`."""

    def __init__(self, kind: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.kind = kind
