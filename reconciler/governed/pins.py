"""The rug-pull check of the governed call path: the live tool listing against the pins.

A connector's listing is compared with its pinned `tools` block at the first call after it
starts, and again whenever the supervisor restarted it (its pid or restart count changed) or
the pins changed (an apply). A tool whose definition changed, or that is gone, is refused until
a new plan pins it; unchanged tools keep working. Each new difference is reported once: a
`tool.drifted` audit event and the live listing in `tool_listings` for `cloned plan`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.governed.applied import AppliedConnector
from reconciler.runtime.definitions import compare
from reconciler.runtime.types import ConnectorStatus

Key = tuple[int | None, int, str]
"""(pid, restarts, pinned set digest): what must stay the same for a listing to stand."""


@dataclass(frozen=True)
class Observed:
    """The last comparison of one connector's live listing with its pins."""

    key: Key
    drift: Mapping[str, str]
    """tool -> `changed`, `removed` or `new`, for the tools that differ."""


@dataclass
class PinGuard:
    """What each connector's live listing was, per start (see the module)."""

    _seen: dict[str, Observed] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def lock(self, connector: str) -> asyncio.Lock:
        """Held while a connector is listed, so concurrent first calls list it once."""
        return self._locks.setdefault(connector, asyncio.Lock())

    def current(self, connector: AppliedConnector, status: ConnectorStatus) -> Observed | None:
        """The comparison that still stands for this start of the connector, if any."""
        seen = self._seen.get(connector.name)
        if seen is None or status.process != "running":
            return None
        return seen if seen.key == key_of(connector, status) else None

    def observe(
        self,
        connector: AppliedConnector,
        status: ConnectorStatus,
        live: Sequence[Mapping[str, Any]],
    ) -> tuple[Observed, bool]:
        """Compare a live listing with the pins; the result, and whether its differences are
        new since the last comparison (so they are reported once)."""
        drift = {d.name: d.status for d in compare(connector.tools, live) if d.status != "same"}
        before = self._seen.get(connector.name)
        observed = Observed(key_of(connector, status), drift)
        self._seen[connector.name] = observed
        fresh = bool(drift) and (before is None or dict(before.drift) != drift)
        return observed, fresh


def key_of(connector: AppliedConnector, status: ConnectorStatus) -> Key:
    """The key a listing of this connector stands under."""
    return (status.pid, status.restarts, str((connector.tools or {}).get("set", "")))


def refusal(observed: Observed, connector: str, tool: str) -> str | None:
    """Why the live listing refuses `tool`, or None when its definition is the pinned one."""
    status = observed.drift.get(tool)
    if status == "changed":
        return (
            f"rug pull: the definition of {connector}__{tool} changed since it was approved; "
            "run `cloned plan` to review the change"
        )
    if status == "removed":
        return (
            f"the connector no longer lists {connector}__{tool} (removed since it was "
            "approved); run `cloned plan` to review the change"
        )
    return None
