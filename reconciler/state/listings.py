"""Rows of the `tool_listings` table: the last tool listing Cloned saw from each connector, and
of which package. Apply writes one when it lists a new install; the runtime writes one when a
live listing differs from the pins (a rug pull, or a new tool); `plan --refresh` when it looks
again. A plan pins the listing of the package it plans (the Connector provider), so a listing
here is what the next plan shows for review; it is never served until applied.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from reconciler.canonical import parse_json
from reconciler.errors import StateUnavailable
from reconciler.state.db import DB_FILE, Connection, StateDB


@dataclass(frozen=True)
class Listing:
    """One connector's last seen listing."""

    address: str
    package_digest: str
    tools: list[dict[str, Any]]
    observed_at: str
    observed_by: str  # apply | runtime | refresh


def put(connection: Connection, listing: Listing) -> None:
    """Record a listing (inside the caller's transaction), replacing the previous one."""
    connection.execute(
        "INSERT OR REPLACE INTO tool_listings "
        "(address, package_digest, listing, observed_at, observed_by) VALUES (?, ?, ?, ?, ?)",
        (
            listing.address,
            listing.package_digest,
            json.dumps(listing.tools, sort_keys=True, ensure_ascii=False),
            listing.observed_at,
            listing.observed_by,
        ),
    )


def get(db: StateDB, address: str) -> Listing | None:
    """The last listing seen for `address`, if any."""
    row = db.reader.execute(
        "SELECT address, package_digest, listing, observed_at, observed_by FROM tool_listings "
        "WHERE address = ?",
        (address,),
    ).fetchone()
    return _listing(row) if row is not None else None


def all_listings(db: StateDB) -> dict[str, Listing]:
    """Every connector's last seen listing, by address."""
    rows = db.reader.execute(
        "SELECT address, package_digest, listing, observed_at, observed_by FROM tool_listings "
        "ORDER BY address"
    ).fetchall()
    return {row[0]: _listing(row) for row in rows}


def _listing(row: tuple[Any, ...]) -> Listing:
    address, package_digest, text, observed_at, observed_by = row
    try:
        tools = parse_json(text)
    except ValueError:
        tools = None
    if not isinstance(tools, list) or not all(isinstance(tool, dict) for tool in tools):
        raise StateUnavailable(f"{DB_FILE}: the tool listing of {address} is not a list of tools")
    return Listing(address, package_digest, tools, observed_at, observed_by)
