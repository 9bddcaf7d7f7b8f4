"""`connectors tools NAME`: one applied Connector's pinned tools and what the gateway does with
each, read from the applied state (`governed.applied.read_applied`) and the last tool listing
seen (`state.listings`); it never reads the YAML and never starts the connector.

A tool's status is the first that holds of: `disabled` (the connector is disabled or not
installed), `denied` (the connector's tools.allow/deny or a pack's tools.deny; the rule),
`drifted` (the last listing of the same package differs from the pin: changed, removed, or a
new tool that is not pinned), `needs-approval` (each call, by tools.requireApproval; the
pattern), `flagged` (the pin's flags), `served`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from reconciler.errors import ClonedError, ExitCode
from reconciler.governed.applied import SEPARATOR, AppliedConnector, AppliedView, read_applied
from reconciler.load.files import find_root
from reconciler.state import listings
from reconciler.state.db import StateDB

ToolState = Literal["served", "denied", "needs-approval", "drifted", "flagged", "disabled"]


@dataclass(frozen=True)
class ToolRow:
    """One tool of the connector: its pin and its status."""

    name: str
    public: str
    title: str | None
    digest: str | None  # None: a new tool in the listing, not pinned
    status: ToolState
    rule: str | None  # the rule, pattern or drift kind behind the status
    drift: str | None  # changed | removed | new (the last listing against the pin)
    flags: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "public": self.public,
            "title": self.title,
            "digest": self.digest,
            "pinned": self.digest is not None,
            "status": self.status,
            "rule": self.rule,
            "drift": self.drift,
            "flags": list(self.flags),
        }


@dataclass(frozen=True)
class ConnectorTools:
    """The pinned tools of one applied Connector (`connectors tools NAME`)."""

    connector: str
    enabled: bool
    installed: bool
    tool_set: str | None  # the pinned set digest; None when nothing is pinned yet
    listing_at: str | None  # when the last listing of this package was seen
    listing_by: str | None  # apply | runtime | refresh
    tools: tuple[ToolRow, ...]
    exit_code: ExitCode = ExitCode.OK

    @property
    def pinned(self) -> bool:
        """Whether the connector has pins at all."""
        return self.tool_set is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "connector": self.connector,
            "enabled": self.enabled,
            "installed": self.installed,
            "pinned": self.pinned,
            "set": self.tool_set,
            "listing": None
            if self.listing_at is None
            else {"observed_at": self.listing_at, "observed_by": self.listing_by},
            "tools": [tool.to_json() for tool in self.tools],
        }


def tools(*, path: Path, name: str) -> ConnectorTools:
    """The pinned tools of applied Connector `name` with their status; an unknown name is an
    error naming it."""
    root = find_root(path)
    with StateDB.existing(root) as db:
        if db is None:
            raise ClonedError("nothing is applied yet", hint="run `cloned apply` first")
        view = read_applied(db)
        connector = view.connectors.get(name)
        if connector is None:
            known = ", ".join(view.connectors) or "none"
            raise ClonedError(
                f"no Connector named {name!r} is applied (applied: {known})",
                hint="`cloned connectors list` shows every connector",
            )
        listing = listings.get(db, f"connector.{name}")
    if listing is not None and listing.package_digest != connector.package.get("digest"):
        listing = None  # a listing of another package (a planned upgrade) says nothing here
    live = listing.tools if listing is not None else None
    drift = _drift(connector, live)
    rows = [_row(view, connector, tool, pin, drift.get(tool)) for tool, pin in _pins(connector)]
    rows += [_new(connector, t) for t in live or () if drift.get(str(t.get("name"))) == "new"]
    return ConnectorTools(
        connector=name,
        enabled=connector.spec.enabled,
        installed=connector.install is not None,
        tool_set=(connector.tools or {}).get("set"),
        listing_at=listing.observed_at if listing is not None else None,
        listing_by=listing.observed_by if listing is not None else None,
        tools=tuple(sorted(rows, key=lambda row: row.name)),
    )


def _pins(connector: AppliedConnector) -> list[tuple[str, dict[str, Any]]]:
    return [(str(tool), dict(pin)) for tool, pin in connector.pins().items()]


def _drift(connector: AppliedConnector, live: list[dict[str, Any]] | None) -> dict[str, str]:
    """tool -> changed | removed | new, for a listing of the applied package."""
    from reconciler.runtime.definitions import compare

    if live is None or connector.tools is None:
        return {}
    return {d.name: d.status for d in compare(connector.tools, live) if d.status != "same"}


def _row(
    view: AppliedView,
    connector: AppliedConnector,
    tool: str,
    pin: dict[str, Any],
    drift: str | None,
) -> ToolRow:
    definition = pin.get("definition") or {}
    flags = tuple(str(flag) for flag in pin.get("flags") or ())
    status, rule = _status(view, connector, tool, drift, flags)
    title = definition.get("title")
    return ToolRow(
        name=tool,
        public=f"{connector.name}{SEPARATOR}{tool}",
        title=title if isinstance(title, str) else None,
        digest=str(pin.get("digest")),
        status=status,
        rule=rule,
        drift=drift,
        flags=flags,
    )


def _status(
    view: AppliedView,
    connector: AppliedConnector,
    tool: str,
    drift: str | None,
    flags: tuple[str, ...],
) -> tuple[ToolState, str | None]:
    if not connector.spec.enabled:
        return "disabled", f"connector.{connector.name} enabled"
    if connector.install is None:
        return "disabled", "not installed"
    denied = view.allowed(connector, tool)
    if denied is not None:
        return "denied", denied
    if drift is not None:
        return "drifted", drift
    pattern = view.require_approval(connector.name, tool)
    if pattern is not None:
        return "needs-approval", pattern
    if flags:
        return "flagged", None
    return "served", None


def _new(connector: AppliedConnector, tool: dict[str, Any]) -> ToolRow:
    """A tool of the listing that is not pinned (never served until a plan pins it)."""
    name = str(tool.get("name"))
    title = tool.get("title")
    return ToolRow(
        name=name,
        public=f"{connector.name}{SEPARATOR}{name}",
        title=title if isinstance(title, str) else None,
        digest=None,
        status="drifted",
        rule="new",
        drift="new",
        flags=(),
    )
