"""The running gateway's connector statuses, for `cloned connectors stats`.

The circuit breaker and the process state live in a gateway's memory (its Supervisor). While it
serves, the gateway writes them to `.cloned/state/runtime/status.json` (atomically, 0600) when a
status changes and every few seconds, with its pid and the time; `read` gives them back, or
None when the file is missing, unreadable or its writer is gone. Several gateways over one
workspace (one per MCP client) share the file: the latest write wins.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.atomic import STATE_DIR, write_atomic
from reconciler.runtime.types import ConnectorStatus
from reconciler.state.lock import pid_alive

STATUS_FILE = STATE_DIR / "runtime" / "status.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class GatewayStatus:
    """What a running gateway last wrote."""

    pid: int
    written_at: str
    connectors: tuple[dict[str, Any], ...]
    """`ConnectorStatus.to_json()` of every connector it used, by name."""

    def of(self, name: str) -> dict[str, Any] | None:
        """The status of connector `name`, when the gateway has used it."""
        return next((c for c in self.connectors if c.get("name") == name), None)


def path_of(root: Path) -> Path:
    """The status file of the workspace at `root`."""
    return root / STATUS_FILE


def write(root: Path, statuses: list[ConnectorStatus], *, pid: int, at: str) -> None:
    """Replace the status file with `statuses` (one rename: readers see whole files)."""
    body = {
        "format_version": FORMAT_VERSION,
        "pid": pid,
        "written_at": at,
        "connectors": [status.to_json() for status in statuses],
    }
    # Not fsynced: it is rewritten every few seconds and means nothing after a reboot.
    write_atomic(path_of(root), json.dumps(body, indent=2) + "\n", durable=False)


def remove(root: Path, *, pid: int) -> None:
    """Remove the status file if `pid` wrote it last (another gateway's stays)."""
    found = _load(path_of(root))
    if found is not None and found.pid == pid:
        path_of(root).unlink(missing_ok=True)


def read(root: Path) -> GatewayStatus | None:
    """The last statuses of a gateway that is still running, else None."""
    found = _load(path_of(root))
    if found is None or not pid_alive(found.pid):
        return None
    return found


def _load(path: Path) -> GatewayStatus | None:
    try:
        body = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(body, dict) or not isinstance(body.get("pid"), int):
        return None
    connectors = body.get("connectors")
    if not isinstance(connectors, list):
        return None
    return GatewayStatus(
        body["pid"],
        str(body.get("written_at", "")),
        tuple(c for c in connectors if isinstance(c, dict)),
    )
