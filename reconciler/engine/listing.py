"""After apply installs a connector: list its tools and propose pinning them.

A plan cannot know a new package's tool definitions without running it, and a plan never starts
a connector. So once a Connector change is applied (the package approved and installed), apply
starts the connector once, reads its `tools/list`, records the listing (`tool_listings`), and
proposes the change from the pins it had to the pins of that listing. Policy judges that change
like any other (`connector-tools`: new or changed tools need approval after bootstrap); it is the
same change the next `cloned plan` shows, with the same hash, so an approval of it counts there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.clock import stamp
from reconciler.engine.planner import propose_update
from reconciler.errors import ClonedError
from reconciler.plan.types import Change
from reconciler.policy.engine import ActivePolicy, decide
from reconciler.redact import Redactor
from reconciler.state import installs, listings
from reconciler.state.db import StateDB
from reconciler.state.listings import Listing


@dataclass(frozen=True)
class Listed:
    """What listing one installed connector found."""

    listing: Listing | None
    error: str | None = None


def needs_listing(db: StateDB, address: str, after: dict[str, Any]) -> bool:
    """Whether the applied connector's package was never listed (an enabled connector only)."""
    if (after.get("spec") or {}).get("enabled") is False:
        return False
    package = after.get("package") or {}
    known = listings.get(db, address)
    return known is None or known.package_digest != package.get("digest")


def list_installed(
    root: Path, db: StateDB, address: str, after: dict[str, Any], redactor: Redactor
) -> Listed:
    """Start the installed connector, read its tools, stop it (the caller records them)."""
    from reconciler.providers.grants import read_applied_grants
    from reconciler.providers.starting import sandbox_of, start_of
    from reconciler.runtime.definitions import check_listing
    from reconciler.runtime.discovery import discover

    name = address.split(".", 1)[1]
    package = after.get("package") or {}
    record = installs.of(db.reader, address)
    if record is None:
        return Listed(None, "it is not installed")
    try:
        # Its granted secrets too: a server may need its token to start at all. Its network
        # it does not get (no egress proxy): its tools are not approved yet.
        grants = read_applied_grants(root, db, name, after)
        start = start_of(
            root, name, package, record.record, sandbox_of(after.get("spec")), grants=grants
        )
        tools = discover(start.launch, redactor=redactor)
        check_listing(tools, where=address)
    except ClonedError as exc:
        return Listed(None, exc.message)
    return Listed(Listing(address, str(package.get("digest")), tools, stamp(), "apply"))


def pin_change(
    change: Change, listing: Listing, *, policy: ActivePolicy, bootstrap: bool
) -> Change | None:
    """The change from the pins `change` applied to those of `listing`, judged by `policy`;
    None when they are the same."""
    from reconciler.runtime.definitions import tools_block

    after = change.proposed.after
    assert after is not None
    block = tools_block(listing.tools, where=change.address)
    if block == after.get("tools"):
        return None
    proposed = propose_update(
        change.proposed.kind,
        change.proposed.name,
        after,
        {**after, "tools": block},
        change.proposed.origin,
        bootstrap,
    )
    return Change(proposed, decide(policy, proposed))


def refresh_listings(root: Path, db: StateDB, redactor: Redactor) -> dict[str, Listing]:
    """`plan --refresh`: list every enabled, installed connector's tools again (starting each
    one), record the listings that differ from the pins, and return every listing known."""
    import json

    from reconciler.runtime.definitions import ListingRefused, tools_block
    from reconciler.state import resources as rows

    for row in rows.of_kind(db, "Connector"):
        state = json.loads(row.state)
        if (state.get("spec") or {}).get("enabled") is False:
            continue
        listed = list_installed(root, db, row.address, state, redactor)
        if listed.listing is None:
            continue  # not startable: the plan's repair of the install says why
        try:
            block = tools_block(listed.listing.tools, where=row.address)
        except ListingRefused:
            continue
        if block != state.get("tools"):
            refreshed = Listing(**{**listed.listing.__dict__, "observed_by": "refresh"})
            with db.transaction() as connection:
                listings.put(connection, refreshed)
    return listings.all_listings(db)
